package netproto

// TopicsRequest lists topics whose names start with Prefix and, when Regexp
// is not empty, match it (RE2 syntax, unanchored). Decode aliases both
// fields to the source.
//
//	u16 len + Prefix | u16 len + Regexp
type TopicsRequest struct {
	Prefix []byte
	Regexp []byte
}

// AppendTo appends the body to dst.
func (m *TopicsRequest) AppendTo(dst []byte) []byte {
	dst = appendStr(dst, m.Prefix)
	return appendStr(dst, m.Regexp)
}

// Decode decodes a body; Prefix and Regexp alias src.
func (m *TopicsRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "topics request"}
	m.Prefix = d.str()
	m.Regexp = d.str()
	return d.done()
}
