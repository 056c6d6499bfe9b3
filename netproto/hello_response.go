package netproto

// HelloResponse answers a HelloRequest: the version both sides speak from now
// on, the largest frame body the server accepts and sends, and an opaque
// server identity. Decode aliases ServerID to the source.
//
//	u16 Version | u32 MaxBody | u16 len + ServerID
type HelloResponse struct {
	Version  uint16
	MaxBody  uint32
	ServerID []byte
}

// AppendTo appends the body to dst.
func (m *HelloResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, m.Version)
	dst = appendU32(dst, m.MaxBody)
	return appendStr(dst, m.ServerID)
}

// Decode decodes a body; ServerID aliases src.
func (m *HelloResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "hello response"}
	m.Version = d.u16()
	m.MaxBody = d.u32()
	m.ServerID = d.str()
	return d.done()
}
