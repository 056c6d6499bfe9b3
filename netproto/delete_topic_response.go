package netproto

// DeleteTopicResponse acknowledges a DeleteTopicRequest. Its body is empty.
type DeleteTopicResponse struct{}

// AppendTo appends nothing.
func (m *DeleteTopicResponse) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *DeleteTopicResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "delete-topic response"}
	return d.done()
}
