package netproto

// OffsetsRequest asks for a topic's valid offset range and, when Time is not
// 0, for the first offset appended at or after Time (unix nanoseconds).
// Decode aliases Topic to the source.
//
//	i64 Time | u16 len + Topic
type OffsetsRequest struct {
	Topic []byte
	Time  int64
}

// AppendTo appends the body to dst.
func (m *OffsetsRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, uint64(m.Time))
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *OffsetsRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "offsets request"}
	m.Time = int64(d.u64())
	m.Topic = d.str()
	return d.done()
}
