package netproto

import "github.com/haraqa/haraqa/record"

// GroupFetchRequest asks the group for messages to work on: up to
// MaxMessages (0: the broker's default), waiting up to MaxWaitMillis when
// none is deliverable (0: answer at once). MaxBytes is advisory: the
// broker sends every leased message that fits in its MaxBody. Decode aliases the strings to the source.
//
//	u64 MemberID | u64 MemberEpoch | u32 MaxMessages | u32 MaxBytes | u32 MaxWaitMillis |
//	u16 len + Group | u16 len + Topic
type GroupFetchRequest struct {
	MemberID      uint64
	MemberEpoch   uint64
	MaxMessages   uint32
	MaxBytes      uint32
	MaxWaitMillis uint32
	Group, Topic  []byte
}

// AppendTo appends the body to dst.
func (m *GroupFetchRequest) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.MemberID)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendU32(dst, m.MaxMessages)
	dst = appendU32(dst, m.MaxBytes)
	dst = appendU32(dst, m.MaxWaitMillis)
	dst = appendStr(dst, m.Group)
	return appendStr(dst, m.Topic)
}

// Decode decodes a body; the strings alias src.
func (m *GroupFetchRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group fetch request"}
	m.MemberID = d.u64()
	m.MemberEpoch = d.u64()
	m.MaxMessages = d.u32()
	m.MaxBytes = d.u32()
	m.MaxWaitMillis = d.u32()
	m.Group = d.str()
	m.Topic = d.str()
	return d.done()
}

// GroupFetchResponseFixedSize is the size of the fixed part of a
// GroupFetchResponse body, before its ranges. With the 16-byte frame header
// and 16 bytes per range the batches start 8-byte aligned in the frame.
const GroupFetchResponseFixedSize = 32

// GroupFetchResponse answers a GroupFetchRequest: the ranges of offsets
// now leased to the member (ascending, not overlapping, each with its
// delivery count) and BatchBytes bytes of whole record batches, back to
// back in offset order, that hold every leased message. Batches may hold
// offsets outside the ranges (a batch is sent whole, and the broker skips
// no batch between two ranges that share one): the client keeps only the
// leased offsets. Ranges in different batches may have batches between
// them left out. No range and no batch means nothing was deliverable
// within the wait. MemberEpoch is the epoch the leases were granted under
// (an exclusive member that took over gets a new one); acks carry it.
// Decode aliases Batches to the source and reuses the Ranges slice.
//
//	u64 Start | u64 End | u64 MemberEpoch | u32 RangeCount | u32 BatchBytes |
//	RangeCount × LeasedRange | Batches
type GroupFetchResponse struct {
	Start, End  uint64 // the topic's valid range at the fetch
	MemberEpoch uint64
	Ranges      []LeasedRange
	BatchBytes  uint32
	Batches     []byte
}

// AppendTo appends the body: the fixed part declaring BatchBytes, the
// ranges, then Batches. A server that sends the batch bytes itself leaves
// Batches nil; otherwise BatchBytes must equal len(Batches).
func (m *GroupFetchResponse) AppendTo(dst []byte) []byte {
	dst = m.appendFixed(dst)
	dst = appendLeasedRanges(dst, m.Ranges)
	return append(dst, m.Batches...)
}

func (m *GroupFetchResponse) appendFixed(dst []byte) []byte {
	dst = appendU64(dst, m.Start)
	dst = appendU64(dst, m.End)
	dst = appendU64(dst, m.MemberEpoch)
	dst = appendU32(dst, uint32(len(m.Ranges)))
	return appendU32(dst, m.BatchBytes)
}

// HeadSize returns the bytes of a whole response frame before its batches.
func (m *GroupFetchResponse) HeadSize() int {
	return HeaderSize + GroupFetchResponseFixedSize + LeasedRangeSize*len(m.Ranges)
}

// AppendHead appends a whole response frame except its batch bytes: the
// frame header for request reqID, the fixed part and the ranges. The
// server writes these bytes, then exactly BatchBytes bytes of batches
// (from the segment files, with sendfile where it can).
func (m *GroupFetchResponse) AppendHead(dst []byte, reqID uint64) []byte {
	h := Header{
		BodyLen:   uint32(m.HeadSize()-HeaderSize) + m.BatchBytes,
		Opcode:    OpGroupFetch,
		Flags:     FlagResponse,
		RequestID: reqID,
	}
	dst = h.AppendTo(dst)
	dst = m.appendFixed(dst)
	return appendLeasedRanges(dst, m.Ranges)
}

// Decode decodes a whole body; Batches aliases src.
func (m *GroupFetchResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "group fetch response"}
	m.Start = d.u64()
	m.End = d.u64()
	m.MemberEpoch = d.u64()
	n := d.u32()
	m.BatchBytes = d.u32()
	if d.why == "" && uint64(n)*LeasedRangeSize > uint64(len(d.b)) {
		d.fail("range count exceeds body")
	}
	m.Ranges = d.leasedRanges(m.Ranges, int(n))
	m.Batches = d.rest()
	switch {
	case d.why != "":
	case uint64(len(m.Batches)) != uint64(m.BatchBytes):
		d.fail("batch bytes do not match the body")
	case m.BatchBytes%record.Align != 0:
		d.fail("batch bytes not a multiple of 8")
	case (n == 0) != (m.BatchBytes == 0):
		d.fail("ranges without batches, or batches without ranges")
	}
	return d.done()
}
