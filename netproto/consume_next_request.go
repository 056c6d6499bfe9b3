package netproto

// ConsumeNextRequest (OpConsumeNext) is a consume whose offset is not
// known when it is sent: it reads on from where the server's answer to an
// earlier consume of the same topic on the same connection ended. After is
// that request's id. A consumer at the end of a topic keeps one of these
// behind its long poll, so that the server holds the next long poll while
// the answer to the current one travels and is read: a message that comes
// meanwhile goes out at once instead of waiting for the consumer's next
// request. Limit, MaxBytes and MaxWaitMillis mean what they mean in a
// ConsumeRequest; the answer is a ConsumeResponse. Decode allocates
// nothing: Topic aliases the source.
//
//	u64 After | u32 Limit | u32 MaxBytes | u32 MaxWaitMillis | u16 len + Topic
type ConsumeNextRequest struct {
	Topic         []byte
	After         uint64
	Limit         uint32
	MaxBytes      uint32
	MaxWaitMillis uint32
}

// AppendTo appends the body to dst.
func (m *ConsumeNextRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.After)
	dst = appendU32(dst, m.Limit)
	dst = appendU32(dst, m.MaxBytes)
	dst = appendU32(dst, m.MaxWaitMillis)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *ConsumeNextRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "consume-next request"}
	m.After = d.u64()
	m.Limit = d.u32()
	m.MaxBytes = d.u32()
	m.MaxWaitMillis = d.u32()
	m.Topic = d.str()
	return d.done()
}

// NextOffset returns where the answer to a consume from offset, trimmed to
// limit messages (0: no limit), ends when its last batch ends at batchEnd
// (0 when it holds no batch): the offset a ConsumeNextRequest following it
// reads from.
func NextOffset(offset uint64, limit uint32, batchEnd uint64) uint64 {
	if batchEnd <= offset {
		return offset
	}
	if limit > 0 && batchEnd-offset > uint64(limit) {
		return offset + uint64(limit)
	}
	return batchEnd
}
