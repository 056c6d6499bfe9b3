package netproto

// WatchRequest subscribes to offset changes of Topics. The server answers
// with a WatchResponse, then pushes WatchEvent frames on the same request id
// until the connection closes. Decode aliases every topic to the source and
// reuses the Topics slice when it is large enough; the count is checked
// against the body before the slice is sized by it.
//
//	u32 Count | Count × (u16 len + Topic)
type WatchRequest struct {
	Topics [][]byte
}

// AppendTo appends the body to dst.
func (m *WatchRequest) AppendTo(dst []byte) []byte { return appendStrs(dst, m.Topics) }

// Decode decodes a body; the topics alias src.
func (m *WatchRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "watch request"}
	m.Topics = d.strs(m.Topics)
	return d.done()
}
