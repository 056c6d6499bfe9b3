package netproto

// Flags of a GroupJoinRequest.
const (
	// JoinExclusive asks for an exclusive group: one member at a time
	// holds it and gets its messages in order; the others wait as hot
	// standbys.
	JoinExclusive uint8 = 0x01
	// JoinCreate creates the group when it does not exist, with the
	// request's configuration and start. Without it an unknown group is
	// CodeGroupNotFound.
	JoinCreate uint8 = 0x02
)

// Flags of a GroupJoinResponse.
const (
	JoinedExclusive uint8 = 0x01 // the group is exclusive
	JoinedCreated   uint8 = 0x02 // this join created the group
	JoinedHolder    uint8 = 0x04 // exclusive: this member holds the group now (else it is a standby)
)

// GroupJoinRequest creates a consumer group on a topic (with JoinCreate)
// and joins it as a new member. The configuration fields are the group's
// when it is created; when it exists, every non-zero field (and the
// exclusive flag, always) must equal the group's, or the join fails with
// CodeGroupConfigMismatch. Start and StartValue place a new group (see
// StartEarliest...). MemberName is free text for describe (host, pid).
// Decode aliases the strings to the source.
//
//	i64 StartValue | u32 AckWaitMillis | u32 MaxDeliveries | u8 StartKind | u8 Flags |
//	u16 len + Group | u16 len + Topic | u16 len + DeadLetter | u16 len + MemberName
type GroupJoinRequest struct {
	Group, Topic  []byte
	DeadLetter    []byte // topic that takes messages past MaxDeliveries; empty: none / the group's
	MemberName    []byte
	StartValue    int64 // an offset (StartOffset) or unix nanoseconds (StartTime); else 0
	AckWaitMillis uint32
	MaxDeliveries uint32 // 0: unlimited when creating, the group's when joining
	StartKind     uint8
	Flags         uint8 // JoinExclusive | JoinCreate
}

// AppendTo appends the body to dst.
func (m *GroupJoinRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, uint64(m.StartValue))
	dst = appendU32(dst, m.AckWaitMillis)
	dst = appendU32(dst, m.MaxDeliveries)
	dst = append(dst, m.StartKind, m.Flags)
	dst = appendStr(dst, m.Group)
	dst = appendStr(dst, m.Topic)
	dst = appendStr(dst, m.DeadLetter)
	return appendStr(dst, m.MemberName)
}

// Decode decodes a body; the strings alias src.
func (m *GroupJoinRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group join request"}
	m.StartValue = int64(d.u64())
	m.AckWaitMillis = d.u32()
	m.MaxDeliveries = d.u32()
	m.StartKind = d.startKind()
	m.Flags = d.flags(JoinExclusive | JoinCreate)
	m.Group = d.str()
	m.Topic = d.str()
	m.DeadLetter = d.str()
	m.MemberName = d.str()
	return d.done()
}

// GroupJoinResponse gives the new member its id and epoch, which every
// later request of the member carries, and the group's configuration and
// committed offset (every message below it is done). Decode aliases
// DeadLetter to the source.
//
//	u64 MemberID | u64 MemberEpoch | u64 Committed | u32 AckWaitMillis | u32 MaxDeliveries |
//	u8 Flags | u16 len + DeadLetter
type GroupJoinResponse struct {
	MemberID      uint64
	MemberEpoch   uint64
	Committed     uint64
	AckWaitMillis uint32
	MaxDeliveries uint32
	Flags         uint8 // JoinedExclusive | JoinedCreated | JoinedHolder
	DeadLetter    []byte
}

// AppendTo appends the body to dst.
func (m *GroupJoinResponse) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.MemberID)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendU64(dst, m.Committed)
	dst = appendU32(dst, m.AckWaitMillis)
	dst = appendU32(dst, m.MaxDeliveries)
	dst = append(dst, m.Flags)
	return appendStr(dst, m.DeadLetter)
}

// Decode decodes a body; DeadLetter aliases src.
func (m *GroupJoinResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group join response"}
	m.MemberID = d.u64()
	m.MemberEpoch = d.u64()
	m.Committed = d.u64()
	m.AckWaitMillis = d.u32()
	m.MaxDeliveries = d.u32()
	m.Flags = d.flags(JoinedExclusive | JoinedCreated | JoinedHolder)
	m.DeadLetter = d.str()
	return d.done()
}

// GroupLeaveRequest ends a membership: the member's leases are released at
// once (deliverable again to the others, not counted as a failed
// delivery). The response body is empty (GroupLeaveResponse).
//
//	u64 MemberID | u64 MemberEpoch | u16 len + Group | u16 len + Topic
type GroupLeaveRequest struct {
	MemberID    uint64
	MemberEpoch uint64
	Group       []byte
	Topic       []byte
}

// AppendTo appends the body to dst.
func (m *GroupLeaveRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.MemberID)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupLeaveRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group leave request"}
	m.MemberID = d.u64()
	m.MemberEpoch = d.u64()
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupLeaveResponse is the empty answer to GroupLeave.
type GroupLeaveResponse struct{}

// AppendTo appends nothing.
func (m *GroupLeaveResponse) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *GroupLeaveResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group leave response"}
	return d.done()
}
