package netproto

// TruncateResponse gives the topic's start offset after a truncation. Only
// whole segments are removed, so Start may lie below the requested cut.
//
//	u64 Start
type TruncateResponse struct {
	Start uint64
}

// AppendTo appends the body to dst.
func (m *TruncateResponse) AppendTo(dst []byte) []byte { return appendU64(dst, m.Start) }

// Decode decodes a body.
func (m *TruncateResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "truncate response"}
	m.Start = d.u64()
	return d.done()
}
