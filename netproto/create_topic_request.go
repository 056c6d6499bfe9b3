package netproto

// CreateTopicRequest creates a topic. Decode aliases Topic to the source.
//
//	u16 len + Topic
type CreateTopicRequest struct {
	Topic []byte
}

// AppendTo appends the body to dst.
func (m *CreateTopicRequest) AppendTo(dst []byte) []byte {
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *CreateTopicRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "create-topic request"}
	m.Topic = d.str()
	return d.done()
}
