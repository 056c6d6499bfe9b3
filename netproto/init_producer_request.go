package netproto

// InitProducerRequest asks for a producer id for idempotent produce
// (PROTOCOL.md, InitProducer). Its body is empty.
type InitProducerRequest struct{}

// AppendTo appends nothing.
func (m *InitProducerRequest) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *InitProducerRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "init-producer request"}
	return d.done()
}
