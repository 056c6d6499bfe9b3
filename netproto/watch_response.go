package netproto

// WatchResponse acknowledges a WatchRequest: every topic is registered and
// WatchEvent frames follow. Its body is empty.
type WatchResponse struct{}

// AppendTo appends nothing.
func (m *WatchResponse) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *WatchResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "watch response"}
	return d.done()
}
