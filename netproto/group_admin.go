package netproto

// GroupRequest names one group: the request of GroupDescribe and
// GroupDelete. Decode aliases the strings to the source.
//
//	u16 len + Group | u16 len + Topic
type GroupRequest struct {
	Group, Topic []byte
}

// AppendTo appends the body to dst.
func (m *GroupRequest) AppendTo(dst []byte) []byte {
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group request"}
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupDeleteResponse is the empty answer to GroupDelete.
type GroupDeleteResponse struct{}

// AppendTo appends nothing.
func (m *GroupDeleteResponse) AppendTo(dst []byte) []byte { return dst }

// Decode accepts only an empty body.
func (m *GroupDeleteResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group delete response"}
	return d.done()
}

// GroupMember is one member in a GroupDescribeResponse.
//
//	u64 ID | u64 InFlight | i64 LastSeen | u8 Holder | u16 len + Name
type GroupMember struct {
	ID       uint64
	InFlight uint64 // messages leased to it now
	LastSeen int64  // unix nanoseconds of its last call
	Holder   bool   // it holds the exclusive group (the others are standbys)
	Name     []byte // given at join
}

// groupMemberMinSize is the size of a GroupMember with an empty name.
const groupMemberMinSize = 8 + 8 + 8 + 1 + 2

// GroupDescribeResponse tells a group's state. Committed is the offset
// below which every message is done; Acked messages at or above it are
// acknowledged too (not contiguous yet); Lag = End - Committed - Acked, the
// messages not done yet, InFlight of them leased now. Delivered: every
// message below it was delivered at least once. Redeliveries and Expired
// (lapsed leases) count since the broker started; DeadLettered and Skipped
// (messages retention removed before they were done) since the group was
// created. Decode aliases the strings to the source and reuses the Members
// slice.
//
//	u64 Committed | u64 Start | u64 End | u64 Lag | u64 InFlight | u64 Acked |
//	u64 Delivered | u64 Redeliveries | u64 Expired | u64 DeadLettered | u64 Skipped |
//	u64 Epoch | u32 AckWaitMillis | u32 MaxDeliveries | u8 Exclusive |
//	u16 len + DeadLetter | u32 MemberCount | MemberCount × GroupMember
type GroupDescribeResponse struct {
	Committed     uint64
	Start, End    uint64 // the topic's valid range
	Lag           uint64
	InFlight      uint64
	Acked         uint64
	Delivered     uint64
	Redeliveries  uint64
	Expired       uint64
	DeadLettered  uint64
	Skipped       uint64
	Epoch         uint64 // the group's current epoch
	AckWaitMillis uint32
	MaxDeliveries uint32 // 0: unlimited
	Exclusive     bool
	DeadLetter    []byte
	Members       []GroupMember
}

// counters lists the u64 fields in wire order.
func (m *GroupDescribeResponse) counters() [12]*uint64 {
	return [...]*uint64{&m.Committed, &m.Start, &m.End, &m.Lag, &m.InFlight, &m.Acked,
		&m.Delivered, &m.Redeliveries, &m.Expired, &m.DeadLettered, &m.Skipped, &m.Epoch}
}

// AppendTo appends the body to dst.
func (m *GroupDescribeResponse) AppendTo(dst []byte) []byte {
	for _, p := range m.counters() {
		dst = appendU64(dst, *p)
	}
	dst = appendU32(dst, m.AckWaitMillis)
	dst = appendU32(dst, m.MaxDeliveries)
	dst = appendFlag(dst, m.Exclusive)
	dst = appendStr(dst, m.DeadLetter)
	dst = appendU32(dst, uint32(len(m.Members)))
	for _, mb := range m.Members {
		dst = appendU64(dst, mb.ID)
		dst = appendU64(dst, mb.InFlight)
		dst = appendU64(dst, uint64(mb.LastSeen))
		dst = appendFlag(dst, mb.Holder)
		dst = appendStr(dst, mb.Name)
	}
	return dst
}

// Decode decodes a body; the strings alias src.
func (m *GroupDescribeResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group describe response"}
	for _, p := range m.counters() {
		*p = d.u64()
	}
	m.AckWaitMillis = d.u32()
	m.MaxDeliveries = d.u32()
	m.Exclusive = d.flag()
	m.DeadLetter = d.str()
	n := d.count(groupMemberMinSize)
	m.Members = m.Members[:0]
	if d.why == "" && cap(m.Members) < n {
		m.Members = make([]GroupMember, 0, n)
	}
	for range n {
		if d.why != "" {
			break
		}
		var mb GroupMember
		mb.ID = d.u64()
		mb.InFlight = d.u64()
		mb.LastSeen = int64(d.u64())
		mb.Holder = d.flag()
		mb.Name = d.str()
		m.Members = append(m.Members, mb)
	}
	return d.done()
}

// GroupListRequest lists the groups of Topic, or of every topic when Topic
// is empty. Decode aliases Topic to the source.
//
//	u16 len + Topic
type GroupListRequest struct {
	Topic []byte
}

// AppendTo appends the body to dst.
func (m *GroupListRequest) AppendTo(dst []byte) []byte { return appendStr(dst, m.Topic) }

// Decode decodes a body; Topic aliases src.
func (m *GroupListRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group list request"}
	m.Topic = d.str()
	return d.done()
}

// GroupInfo is one group in a GroupListResponse.
//
//	u64 Committed | u64 Lag | u32 Members | u16 len + Topic | u16 len + Group
type GroupInfo struct {
	Committed    uint64
	Lag          uint64
	Members      uint32
	Topic, Group []byte
}

const groupInfoMinSize = 8 + 8 + 4 + 2 + 2

// GroupListResponse answers a GroupListRequest, sorted by topic, then
// group. Decode aliases the strings to the source and reuses the Groups
// slice.
//
//	u32 Count | Count × GroupInfo
type GroupListResponse struct {
	Groups []GroupInfo
}

// AppendTo appends the body to dst.
func (m *GroupListResponse) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Groups)))
	for _, g := range m.Groups {
		dst = appendU64(dst, g.Committed)
		dst = appendU64(dst, g.Lag)
		dst = appendU32(dst, g.Members)
		dst = appendStr(dst, g.Topic)
		dst = appendStr(dst, g.Group)
	}
	return dst
}

// Decode decodes a body; the strings alias src.
func (m *GroupListResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group list response"}
	n := d.count(groupInfoMinSize)
	m.Groups = m.Groups[:0]
	if d.why == "" && cap(m.Groups) < n {
		m.Groups = make([]GroupInfo, 0, n)
	}
	for range n {
		if d.why != "" {
			break
		}
		var g GroupInfo
		g.Committed = d.u64()
		g.Lag = d.u64()
		g.Members = d.u32()
		g.Topic = d.str()
		g.Group = d.str()
		m.Groups = append(m.Groups, g)
	}
	return d.done()
}

// GroupSeekRequest moves a group's committed offset (an admin operation):
// to the topic's start, its end, an offset or the first offset appended at
// or after a time (see StartEarliest...). Leases and acknowledgements
// above the old position are dropped; members go on from the new one.
// Decode aliases the strings to the source.
//
//	i64 Value | u8 Kind | u16 len + Group | u16 len + Topic
type GroupSeekRequest struct {
	Value        int64
	Kind         uint8
	Group, Topic []byte
}

// AppendTo appends the body to dst.
func (m *GroupSeekRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, uint64(m.Value))
	dst = append(dst, m.Kind)
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupSeekRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group seek request"}
	m.Value = int64(d.u64())
	m.Kind = d.startKind()
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupSeekResponse gives the group's committed offset after a seek.
//
//	u64 Committed
type GroupSeekResponse struct {
	Committed uint64
}

// AppendTo appends the body to dst.
func (m *GroupSeekResponse) AppendTo(dst []byte) []byte { return appendU64(dst, m.Committed) }

// Decode decodes a body.
func (m *GroupSeekResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group seek response"}
	m.Committed = d.u64()
	return d.done()
}
