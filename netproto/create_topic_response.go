package netproto

// CreateTopicResponse acknowledges a CreateTopicRequest. Its body is empty.
type CreateTopicResponse struct{}

// AppendTo appends nothing.
func (m *CreateTopicResponse) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *CreateTopicResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "create-topic response"}
	return d.done()
}
