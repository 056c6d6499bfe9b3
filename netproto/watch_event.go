package netproto

// WatchEvent is pushed by the server, with opcode OpWatchEvent, the response
// flag and the request id of the Watch it belongs to: the topic's valid
// offset range [Start, End) now. The first event per topic gives the range
// at registration; events may coalesce, the latest range wins. Decode
// aliases Topic to the source.
//
//	u64 Start | u64 End | u16 len + Topic
type WatchEvent struct {
	Topic []byte
	Start uint64
	End   uint64
}

// AppendTo appends the body to dst.
func (m *WatchEvent) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.Start)
	dst = appendU64(dst, m.End)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; Topic aliases src.
func (m *WatchEvent) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "watch event"}
	m.Start = d.u64()
	m.End = d.u64()
	m.Topic = d.str()
	return d.done()
}
