package netproto

import "github.com/haraqa/haraqa/record"

// ProduceRequest appends one record batch to a topic. The batch fills the
// rest of the body. Decode allocates nothing: Topic and Batch alias the
// source, which must stay unchanged while they are in use. Decode checks only
// that Batch can hold a batch header; the broker calls record.Verify.
//
//	u16 len + Topic | Batch (the rest of the body, >= 64 bytes)
type ProduceRequest struct {
	Topic []byte
	Batch []byte
}

// AppendTo appends the body to dst.
func (m *ProduceRequest) AppendTo(dst []byte) []byte {
	dst = appendStr(dst, m.Topic)
	return append(dst, m.Batch...)
}

// Decode decodes a body; Topic and Batch alias src.
func (m *ProduceRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "produce request"}
	m.Topic = d.str()
	m.Batch = d.rest()
	if len(m.Batch) < record.HeaderSize {
		d.fail("batch shorter than a batch header")
	}
	return d.done()
}
