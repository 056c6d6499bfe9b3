package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Group-state records: the messages of a topic's group-state log (FORMAT.md,
// "Group-state log"). Each is one message of a plain record batch.
const (
	recState     = 1 // a group's whole durable state (create)
	recAck       = 2 // ranges done
	recDelete    = 3 // group deleted
	recEpoch     = 4 // epoch bumped (exclusive takeover)
	recSnapBegin = 5 // a snapshot starts: the state records up to recSnapEnd replace everything
	recSnapEnd   = 6
)

const ackDeadLettered = 1 // recAck flag: the ranges were dead-lettered

var errBadRecord = errors.New("engine: malformed group-state record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRanges(b []byte, rs []OffsetRange) []byte {
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = binary.AppendUvarint(b, r.First)
		b = binary.AppendUvarint(b, r.Next-r.First)
	}
	return b
}

func encodeState(b []byte, g *cgroup) []byte { return encodeStateAs(b, recState, g) }

func encodeStateAs(b []byte, typ byte, g *cgroup) []byte {
	b = append(b, typ)
	b = appendString(b, g.name)
	var flags byte
	if g.cfg.Exclusive {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(g.cfg.AckWait))
	b = binary.AppendUvarint(b, uint64(g.cfg.MaxDeliveries))
	b = appendString(b, g.cfg.DeadLetterTopic)
	b = append(b, byte(g.cfg.Start.Kind))
	b = binary.AppendUvarint(b, g.cfg.Start.Offset)
	var tm int64
	if !g.cfg.Start.Time.IsZero() {
		tm = g.cfg.Start.Time.UnixNano()
	}
	b = binary.AppendVarint(b, tm)
	b = binary.AppendUvarint(b, g.committed)
	b = binary.AppendUvarint(b, g.epoch)
	b = binary.AppendUvarint(b, g.dead)
	b = binary.AppendUvarint(b, g.skipped)
	return appendRanges(b, g.acked)
}

func encodeAck(b []byte, name string, flags byte, rs []OffsetRange) []byte {
	b = append(b, recAck)
	b = appendString(b, name)
	b = append(b, flags)
	return appendRanges(b, rs)
}

func encodeDelete(b []byte, name string) []byte {
	b = append(b, recDelete)
	return appendString(b, name)
}

func encodeEpoch(b []byte, name string, epoch uint64) []byte {
	b = append(b, recEpoch)
	b = appendString(b, name)
	return binary.AppendUvarint(b, epoch)
}

// recDecoder reads one record; the first error sticks.
type recDecoder struct {
	b   []byte
	err error
}

func (d *recDecoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *recDecoder) ranges() []OffsetRange {
	n := d.uvarint()
	// Each range takes at least two bytes: bound n before allocating.
	if d.err != nil || n > uint64(len(d.b))/2 {
		d.fail()
		return nil
	}
	rs := make([]OffsetRange, 0, n)
	for i := uint64(0); i < n; i++ {
		first, l := d.uvarint(), d.uvarint()
		if d.err != nil || l == 0 || first+l < first {
			d.fail()
			return nil
		}
		rs = append(rs, OffsetRange{First: first, Next: first + l})
	}
	return rs
}

func (d *recDecoder) fail() {
	if d.err == nil {
		d.err = errBadRecord
	}
}

// groupRecord is one decoded record.
type groupRecord struct {
	typ    byte
	name   string
	state  *cgroup // recState
	flags  byte    // recAck
	ranges []OffsetRange
	epoch  uint64 // recEpoch, recSeek; recSkip: the start offset
	offset uint64 // recSeek
}

func decodeGroupRecord(b []byte) (groupRecord, error) {
	d := &recDecoder{b: b}
	r := groupRecord{typ: d.byte()}
	switch r.typ {
	case recSnapBegin, recSnapEnd:
	case recState, recSnapState:
		r.name = d.string()
		var cfg GroupConfig
		cfg.Exclusive = d.byte()&1 != 0
		cfg.AckWait = time.Duration(d.uvarint())
		cfg.MaxDeliveries = int(min(d.uvarint(), 1<<31))
		cfg.DeadLetterTopic = d.string()
		cfg.Start.Kind = StartKind(d.byte())
		cfg.Start.Offset = d.uvarint()
		if tm := d.varint(); tm != 0 {
			cfg.Start.Time = time.Unix(0, tm)
		}
		g := newGroup(r.name, cfg, d.uvarint())
		g.epoch, g.dead, g.skipped = d.uvarint(), d.uvarint(), d.uvarint()
		for _, a := range d.ranges() {
			g.acked = g.acked.add(a)
		}
		g.advance()
		g.ready = true
		r.state = g
	case recAck:
		r.name = d.string()
		r.flags = d.byte()
		r.ranges = d.ranges()
	case recDelete:
		r.name = d.string()
	case recSkip:
		r.name = d.string()
		r.epoch = d.uvarint() // the start offset
	case recSeek:
		r.name = d.string()
		r.offset = d.uvarint()
		r.epoch = d.uvarint()
	case recEpoch:
		r.name = d.string()
		r.epoch = d.uvarint()
	case recLogIndex:
		r.offset = d.uvarint()
	default:
		d.fail()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return r, fmt.Errorf("%w (type %d)", d.err, r.typ)
	}
	return r, nil
}

const (
	// recSnapState is recState inside a snapshot: taken only between
	// recSnapBegin and recSnapEnd, so that a snapshot cut short (a failed
	// compaction) never swallows a later group's creation.
	recSnapState = 9
	recSkip      = 7 // retention passed the group: move to the topic's start, count what was not done
	recSeek      = 8 // admin seek: committed set, acks above forgotten, epoch set
	// recLogIndex leads a replicated batch of records (and sits in a
	// snapshot): the index of the replicated log's entry that carried
	// them, so that a restart applies only the entries after it.
	recLogIndex = 10
)

func encodeLogIndex(b []byte, index uint64) []byte {
	b = append(b, recLogIndex)
	return binary.AppendUvarint(b, index)
}

func encodeSkip(b []byte, name string, start uint64) []byte {
	b = append(b, recSkip)
	b = appendString(b, name)
	return binary.AppendUvarint(b, start)
}

func encodeSeek(b []byte, name string, committed, epoch uint64) []byte {
	b = append(b, recSeek)
	b = appendString(b, name)
	b = binary.AppendUvarint(b, committed)
	return binary.AppendUvarint(b, epoch)
}
