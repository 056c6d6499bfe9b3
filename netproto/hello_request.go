package netproto

// HelloRequest opens a session: the client's highest protocol version and
// an optional authentication token. Decode aliases Token to the source.
//
//	u16 Version | u16 len + Token
type HelloRequest struct {
	Version uint16
	Token   []byte
}

// AppendTo appends the body to dst.
func (m *HelloRequest) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, m.Version)
	return appendStr(dst, m.Token)
}

// Decode decodes a body; Token aliases src.
func (m *HelloRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "hello request"}
	m.Version = d.u16()
	m.Token = d.str()
	return d.done()
}
