package netproto

// ConsumeRequest reads whole batches covering [Offset, Offset+Limit) from a
// topic, at most about MaxBytes of them, waiting up to MaxWaitMillis for
// data when none is there yet (0 = answer at once). Decode allocates
// nothing: Topic aliases the source.
//
//	u64 Offset | u32 Limit | u32 MaxBytes | u32 MaxWaitMillis | u16 len + Topic
type ConsumeRequest struct {
	Topic         []byte
	Offset        uint64
	Limit         uint32
	MaxBytes      uint32
	MaxWaitMillis uint32
}

// AppendTo appends the body to dst.
func (m *ConsumeRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.Offset)
	dst = appendU32(dst, m.Limit)
	dst = appendU32(dst, m.MaxBytes)
	dst = appendU32(dst, m.MaxWaitMillis)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *ConsumeRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "consume request"}
	m.Offset = d.u64()
	m.Limit = d.u32()
	m.MaxBytes = d.u32()
	m.MaxWaitMillis = d.u32()
	m.Topic = d.str()
	return d.done()
}
