package netproto

// OffsetsResponse gives a topic's valid offset range [Start, End) and, for a
// time lookup, AtTime: the first offset appended at or after the requested
// time, End when there is none. AtTime is 0 when the request's Time was 0.
//
//	u64 Start | u64 End | u64 AtTime
type OffsetsResponse struct {
	Start  uint64
	End    uint64
	AtTime uint64
}

// AppendTo appends the body to dst.
func (m *OffsetsResponse) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.Start)
	dst = appendU64(dst, m.End)
	return appendU64(dst, m.AtTime)
}

// Decode decodes a body.
func (m *OffsetsResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "offsets response"}
	m.Start = d.u64()
	m.End = d.u64()
	m.AtTime = d.u64()
	return d.done()
}
