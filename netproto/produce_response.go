package netproto

// ProduceResponse acknowledges a ProduceRequest under the broker's fsync
// policy: the offset given to the batch's first message and the number of
// messages appended.
//
//	u64 BaseOffset | u32 Count
type ProduceResponse struct {
	BaseOffset uint64
	Count      uint32
}

// AppendTo appends the body to dst.
func (m *ProduceResponse) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.BaseOffset)
	return appendU32(dst, m.Count)
}

// Decode decodes a body.
func (m *ProduceResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "produce response"}
	m.BaseOffset = d.u64()
	m.Count = d.u32()
	return d.done()
}
