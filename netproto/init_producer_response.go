package netproto

// InitProducerResponse gives a fresh producer id; the producer stamps it and
// a per-batch sequence into its batches (record.SetProducer).
//
//	u64 ProducerID
type InitProducerResponse struct {
	ProducerID uint64
}

// AppendTo appends the body to dst.
func (m *InitProducerResponse) AppendTo(dst []byte) []byte { return appendU64(dst, m.ProducerID) }

// Decode decodes a body.
func (m *InitProducerResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "init-producer response"}
	m.ProducerID = d.u64()
	return d.done()
}
