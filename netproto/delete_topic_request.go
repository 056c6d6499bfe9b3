package netproto

// DeleteTopicRequest deletes a topic and all its data. Decode aliases Topic to the source.
//
//	u16 len + Topic
type DeleteTopicRequest struct {
	Topic []byte
}

// AppendTo appends the body to dst.
func (m *DeleteTopicRequest) AppendTo(dst []byte) []byte {
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *DeleteTopicRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "delete-topic request"}
	m.Topic = d.str()
	return d.done()
}
