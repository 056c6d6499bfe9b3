package netproto

// TruncateRequest removes old data from the front of a topic: every whole
// segment whose messages all lie below BeforeOffset, or (when BeforeTime is
// not 0) were all appended before BeforeTime, unix nanoseconds. Each of the
// two names a cut; the later cut wins. Decode aliases Topic to the source.
//
//	u64 BeforeOffset | i64 BeforeTime | u16 len + Topic
type TruncateRequest struct {
	Topic        []byte
	BeforeOffset uint64
	BeforeTime   int64
}

// AppendTo appends the body to dst.
func (m *TruncateRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.BeforeOffset)
	dst = appendU64(dst, uint64(m.BeforeTime))
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *TruncateRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "truncate request"}
	m.BeforeOffset = d.u64()
	m.BeforeTime = int64(d.u64())
	m.Topic = d.str()
	return d.done()
}
