package netproto

// GroupAckRequest acknowledges (opcode GroupAck) the offsets in Ranges,
// which must be leased to the member (or acked already): they are done,
// durably, once the response arrives. No ranges: nothing. With opcode GroupExtend the same body extends the
// member's leases on Ranges (no ranges: every lease it holds) by the
// group's ack-wait from now: the work is in progress. Ranges are
// ascending and do not overlap. Decode aliases the strings to the source
// and reuses the Ranges slice.
//
//	u64 MemberID | u64 MemberEpoch | u32 RangeCount | RangeCount × AckRange |
//	u16 len + Group | u16 len + Topic
type GroupAckRequest struct {
	MemberID     uint64
	MemberEpoch  uint64
	Ranges       []AckRange
	Group, Topic []byte
}

// AppendTo appends the body to dst.
func (m *GroupAckRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.MemberID)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendAckRanges(dst, m.Ranges)
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupAckRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group ack request"}
	m.MemberID = d.u64()
	m.MemberEpoch = d.u64()
	m.Ranges = d.ackRanges(m.Ranges)
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupNackRequest gives back the offsets in Ranges (no ranges: every lease
// of the member), leased to the member, unprocessed: they become
// deliverable again, to any member, after DelayMillis (0: at once). Decode aliases the strings to the source and
// reuses the Ranges slice.
//
//	u64 MemberID | u64 MemberEpoch | u32 DelayMillis | u32 RangeCount | RangeCount × AckRange |
//	u16 len + Group | u16 len + Topic
type GroupNackRequest struct {
	MemberID     uint64
	MemberEpoch  uint64
	DelayMillis  uint32
	Ranges       []AckRange
	Group, Topic []byte
}

// AppendTo appends the body to dst.
func (m *GroupNackRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.MemberID)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendU32(dst, m.DelayMillis)
	dst = appendAckRanges(dst, m.Ranges)
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupNackRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group nack request"}
	m.MemberID = d.u64()
	m.MemberEpoch = d.u64()
	m.DelayMillis = d.u32()
	m.Ranges = d.ackRanges(m.Ranges)
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupCommitRequest acknowledges every message below Offset that is
// leased to the member ("everything up to N"); in an exclusive group, where
// the active member holds every delivered message, that is all of them.
// Decode aliases the strings to the source.
//
//	u64 MemberID | u64 MemberEpoch | u64 Offset | u16 len + Group | u16 len + Topic
type GroupCommitRequest struct {
	MemberID     uint64
	MemberEpoch  uint64
	Offset       uint64
	Group, Topic []byte
}

// AppendTo appends the body to dst.
func (m *GroupCommitRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.MemberID)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendU64(dst, m.Offset)
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupCommitRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group commit request"}
	m.MemberID = d.u64()
	m.MemberEpoch = d.u64()
	m.Offset = d.u64()
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupAckResponse is the empty answer to GroupAck, GroupNack, GroupExtend
// and GroupCommit. An ack or commit is durable on every volume (per the
// broker's fsync policy) before it is answered.
type GroupAckResponse struct{}

// AppendTo appends nothing.
func (m *GroupAckResponse) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *GroupAckResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group ack response"}
	return d.done()
}
