package netproto

import "strconv"

// AckRange names the offsets [First, First+Count) of a group's topic in an
// ack, nack or extend. Count is at least 1.
//
//	u64 First | u32 Count
type AckRange struct {
	First uint64
	Count uint32
}

// End returns the offset after the range.
func (r AckRange) End() uint64 { return r.First + uint64(r.Count) }

// LeasedRange is a range of offsets a group fetch leased to the member, all
// delivered the same number of times (Deliveries, 1 on a first delivery).
//
//	u64 First | u32 Count | u32 Deliveries
type LeasedRange struct {
	First      uint64
	Count      uint32
	Deliveries uint32
}

// End returns the offset after the range.
func (r LeasedRange) End() uint64 { return r.First + uint64(r.Count) }

// Sizes of one encoded range.
const (
	AckRangeSize    = 12
	LeasedRangeSize = 16
)

// Start kinds: where a group created by GroupJoin begins, and where
// GroupSeek moves one.
const (
	StartEarliest uint8 = 0 // the topic's first valid offset
	StartLatest   uint8 = 1 // the topic's end: only messages produced from now on
	StartOffset   uint8 = 2 // the offset given
	StartTime     uint8 = 3 // the first offset appended at or after the time given (unix ns)
)

// checkRange holds the rules every encoded range keeps: Count at least 1,
// no offset past 2^64-1, and ascending, non-overlapping order (prev is the
// end of the range before, 0 for the first).
func (d *bodyDecoder) checkRange(i int, first uint64, count uint32, prev uint64) uint64 {
	end := first + uint64(count)
	switch {
	case d.why != "":
	case count == 0:
		d.fail("range " + strconv.Itoa(i) + " is empty")
	case end < first:
		d.fail("range " + strconv.Itoa(i) + " runs past the largest offset")
	case i > 0 && first < prev:
		d.fail("range " + strconv.Itoa(i) + " is out of order or overlaps the one before")
	}
	return end
}

// ackRanges reads a u32 count and that many AckRanges into buf[:0], growing
// it only when the count, bounded by the body, does not fit.
func (d *bodyDecoder) ackRanges(buf []AckRange) []AckRange {
	n := d.count(AckRangeSize)
	if d.why != "" {
		return buf[:0]
	}
	if cap(buf) < n {
		buf = make([]AckRange, 0, n)
	}
	buf = buf[:0]
	var prev uint64
	for i := range n {
		r := AckRange{First: d.u64(), Count: d.u32()}
		prev = d.checkRange(i, r.First, r.Count, prev)
		buf = append(buf, r)
	}
	return buf
}

func appendAckRanges(dst []byte, rs []AckRange) []byte {
	dst = appendU32(dst, uint32(len(rs)))
	for _, r := range rs {
		dst = appendU64(dst, r.First)
		dst = appendU32(dst, r.Count)
	}
	return dst
}

// leasedRanges reads n LeasedRanges (the count was read and checked
// before) into buf[:0]; Deliveries is at least 1.
func (d *bodyDecoder) leasedRanges(buf []LeasedRange, n int) []LeasedRange {
	if d.why != "" {
		return buf[:0]
	}
	if cap(buf) < n {
		buf = make([]LeasedRange, 0, n)
	}
	buf = buf[:0]
	var prev uint64
	for i := range n {
		r := LeasedRange{First: d.u64(), Count: d.u32(), Deliveries: d.u32()}
		prev = d.checkRange(i, r.First, r.Count, prev)
		if r.Deliveries == 0 {
			d.fail("range " + strconv.Itoa(i) + " delivered 0 times")
		}
		buf = append(buf, r)
	}
	return buf
}

func appendLeasedRanges(dst []byte, rs []LeasedRange) []byte {
	for _, r := range rs {
		dst = appendU64(dst, r.First)
		dst = appendU32(dst, r.Count)
		dst = appendU32(dst, r.Deliveries)
	}
	return dst
}

// startKind reads a u8 start kind; unknown kinds are malformed.
func (d *bodyDecoder) startKind() uint8 {
	k := d.u8()
	if k > StartTime && d.why == "" {
		d.why = "start kind " + strconv.Itoa(int(k))
	}
	return k
}

// flags reads a u8 of flag bits; a bit outside known is malformed.
func (d *bodyDecoder) flags(known uint8) uint8 {
	f := d.u8()
	if f&^known != 0 && d.why == "" {
		d.why = "unknown flag bits " + strconv.Itoa(int(f&^known))
	}
	return f
}
