package segment

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// TestRollbackSurvivesCrash protects the promise that a batch the caller
// was told failed never comes back after a crash: a rollback cuts the
// written (here even synced) batch off the log durably, so a crash right
// after it recovers only the committed batches.
func TestRollbackSurvivesCrash(t *testing.T) {
	e := memEnv(t)
	s := mustCreate(t, e, 0, testOpts)
	defer s.Close()
	m := newModel(0)
	fill(t, s, m, 4)
	b := mkBatch(t, m.next(), 2, 40, 9)
	if err := s.Write([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	// The write reached the disk on this mirror (another mirror failed, so
	// the engine rolls this one back too).
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	c := e.mem.Crash()
	s2, rep, err := Open(c, e.dir, 0, testOpts, false, true)
	if err != nil {
		t.Fatalf("Open after crash: %v (%+v)", err, rep)
	}
	defer s2.Close()
	checkSegment(t, s2, m)
}

// TestFailedSyncSticky protects the promise that a failed fsync is never
// retried as if it had succeeded: once a sync fails while committed bytes
// were unsynced, the segment refuses every later sync, write and seal, so
// it can never be sealed (and trusted at open) without them. A failed sync
// of uncommitted bytes alone (every committed byte synced before) is not
// sticky: those bytes are rolled back and writing goes on.
func TestFailedSyncSticky(t *testing.T) {
	boom := errors.New("EIO (injected)")
	t.Run("committed unsynced", func(t *testing.T) {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		defer s.Close()
		m := newModel(0)
		fill(t, s, m, 3)
		b := mkBatch(t, m.next(), 2, 40, 9)
		if err := s.Write([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		s.Commit() // acknowledged before its sync (fsync=interval)
		e.mem.SetFault(failOn(vfs.OpSync, e.path(LogName(0)), boom))
		if err := s.Sync(); !errors.Is(err, ErrSyncLost) || !errors.Is(err, boom) {
			t.Fatalf("Sync = %v, want ErrSyncLost wrapping the injected error", err)
		}
		e.mem.SetFault(nil)
		if err := s.Sync(); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("retried Sync = %v, want the sticky ErrSyncLost", err)
		}
		if err := s.Seal(); !errors.Is(err, ErrSyncLost) || s.Sealed() || e.fileSize(t, SealName(0)) >= 0 {
			t.Fatalf("Seal after a failed sync = %v (sealed %v)", err, s.Sealed())
		}
		if err := s.Write([][]byte{mkBatch(t, m.next()+2, 1, 10, 10)}); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("Write after a failed sync = %v, want ErrSyncLost", err)
		}
		if err := s.Rollback(); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("Rollback after a failed sync = %v, want ErrSyncLost", err)
		}
		if err := s.Close(); !errors.Is(err, ErrSyncLost) {
			t.Fatalf("Close after a failed sync = %v, want ErrSyncLost", err)
		}
	})
	t.Run("only uncommitted unsynced", func(t *testing.T) {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		defer s.Close()
		m := newModel(0)
		fill(t, s, m, 3)
		if err := s.Write([][]byte{mkBatch(t, m.next(), 2, 40, 9)}); err != nil {
			t.Fatal(err)
		}
		e.mem.SetFault(failOn(vfs.OpSync, e.path(LogName(0)), boom))
		if err := s.Sync(); err == nil || errors.Is(err, ErrSyncLost) {
			t.Fatalf("Sync = %v, want a plain failure", err)
		}
		e.mem.SetFault(nil)
		if err := s.Rollback(); err != nil {
			t.Fatal(err)
		}
		fill(t, s, m, 2)
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
		checkSegment(t, s, m)
	})
}

// embeddingBatch returns a stamped batch of k messages at base whose last
// message carries, 8-byte aligned and ending exactly at the end of the
// payload, a valid batch of k-1 messages at offset base+1: a payload that
// looks like batches continuing the log's offsets exactly.
func embeddingBatch(t *testing.T, base uint64, k int, at int64) (b []byte, innerPos int64) {
	t.Helper()
	inner := mkBatch(t, base+1, k-1, 24, 5)
	msgs := make([][]byte, k)
	prefix := 0
	for i := range k - 1 {
		msgs[i] = msg(base+uint64(i), 9) // 1-byte length + 9 bytes
		prefix += 10
	}
	pad := (8 - (record.HeaderSize+prefix+2)%8) % 8 // 2-byte length of the last message
	msgs[k-1] = append(make([]byte, pad), inner...)
	if l := len(msgs[k-1]); l < 128 || l >= 1<<14 {
		t.Fatalf("embedded message of %d bytes: its length is not a 2-byte varint", l)
	}
	b, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	record.Stamp(b, base, at)
	innerPos = int64(record.HeaderSize + prefix + 2 + pad)
	if got := record.FindValid(b, 1); int64(got) != innerPos || len(b) != int(innerPos)+len(inner) {
		t.Fatalf("embedded batch found at %d of %d bytes, want %d ending the batch", got, len(b), innerPos)
	}
	return b, innerPos
}

// tornImage writes batches 0..5 to segment 0 (batch 3 embedding a batch in
// its payload when embed is set) and closes it as lastSegment does.
func tornImage(t *testing.T, e *fsEnv, embed bool) *model {
	t.Helper()
	s := mustCreate(t, e, 0, testOpts)
	m := newModel(0)
	fill(t, s, m, 3)
	b3 := mkBatch(t, m.next(), 4, 300, 7)
	if embed {
		b3, _ = embeddingBatch(t, m.next(), 4, 7)
	}
	appendBatches(t, s, m, b3)
	appendBatches(t, s, m, mkBatch(t, m.next(), 2, 50, 8), mkBatch(t, m.next()+2, 3, 20, 9))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTornHoleBeforeValidPages protects the promise that a crash never
// makes a topic read-only for data nobody was told was stored: a power cut
// during one multi-page write can leave an early block a hole (zeros)
// while later pages of the same write made it. Past the synced offset that
// is a torn tail, cut at the hole and counted, whatever valid batches
// follow it; a message payload that looks like a batch continuing the
// offsets changes nothing.
func TestTornHoleBeforeValidPages(t *testing.T) {
	holes := []struct {
		name     string
		from, to func(m *model) int64
	}{
		{"header of batch 3", func(m *model) int64 { return m.pos[3] }, func(m *model) int64 { return m.pos[3] + 64 }},
		{"start of batch 3", func(m *model) int64 { return m.pos[3] }, func(m *model) int64 { return m.pos[3] + 200 }},
		{"inside batch 3", func(m *model) int64 { return m.pos[3] + 72 }, func(m *model) int64 { return m.pos[3] + 136 }},
		{"batch 3 and part of 4", func(m *model) int64 { return m.pos[3] }, func(m *model) int64 { return m.pos[4] + 70 }},
	}
	for _, embed := range []bool{false, true} {
		for _, h := range holes {
			forEachFS(t, func(t *testing.T, e *fsEnv) {
				m := tornImage(t, e, embed)
				from, to := h.from(m), h.to(m)
				e.mutate(t, LogName(0), func(b []byte) []byte { clear(b[from:to]); return b })
				if record.FindValid(e.readFile(t, LogName(0)), int(to)) < 0 {
					t.Fatalf("%s: no valid batch after the hole: the image tests nothing", h.name)
				}
				for _, synced := range []uint64{0, m.first[3]} {
					opts := testOpts
					opts.Synced = synced
					restore := snapshot(t, e)
					expectTornOpts(t, e, opts, false, m.truncated(3), m.size()-m.pos[3])
					restore()
				}
			})
		}
	}
}

// TestDamageBelowSyncedWithEmbeddedBatch protects the promise that
// acknowledged data is never cut and never replaced by look-alikes: below
// the synced offset damage followed by valid batches is corruption, and a
// damaged batch whose payload holds a valid-looking batch continuing the
// offsets gives the same result as one without: every offset of the
// damaged batch fails to read, none is served from the embedded bytes.
func TestDamageBelowSyncedWithEmbeddedBatch(t *testing.T) {
	for _, embed := range []bool{false, true} {
		e := memEnv(t)
		m := tornImage(t, e, embed)
		e.mutate(t, LogName(0), flip(m.pos[3]+64+1, 2)) // the first message, not the embedded batch
		opts := testOpts
		opts.Synced = m.next()
		s, rep, err := Open(e.fs, e.dir, 0, opts, false, true)
		ce := asCorrupt(t, err)
		if ce.Pos != m.pos[3] || ce.Offset != m.first[3] || rep.TornBytes != 0 {
			t.Fatalf("embed=%v: %v, report %+v", embed, ce, rep)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("embed=%v: log cut to %d bytes, want %d", embed, got, m.size())
		}
		checkAroundDamage(t, s, m, 3)
		if !s.Acquire() {
			t.Fatal("Acquire failed")
		}
		for off := m.first[3]; off < m.first[4]; off++ {
			r, err := s.Find(off, 1, 1)
			if err != nil || r.Pos != m.pos[3] {
				t.Fatalf("embed=%v: Find(%d) = %+v, %v; want the damaged batch at %d", embed, off, r, err, m.pos[3])
			}
		}
		s.Release()
		s.Close()
	}
}

// zeroBatch returns a batch at base of n empty messages in a zstd frame of
// RLE blocks (n raw bytes, a few KiB stored): a big message count cheaply.
func zeroBatch(base uint64, n int) []byte {
	le := binary.LittleEndian
	p := le.AppendUint32(nil, 0xFD2FB528)
	p = append(p, 3<<6|1<<5) // 8-byte content size, single segment
	p = le.AppendUint64(p, uint64(n))
	for left := n; left > 0; {
		size := min(left, 128<<10)
		left -= size
		hdr := uint32(size)<<3 | 1<<1 // RLE block
		if left == 0 {
			hdr |= 1
		}
		p = append(p, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	b := make([]byte, record.SizeFor(len(p)))
	copy(b, "HRQB")
	le.PutUint16(b[4:], record.Version)
	le.PutUint16(b[6:], uint16(record.CodecZstd))
	le.PutUint32(b[8:], uint32(len(p)))
	le.PutUint32(b[12:], uint32(n))
	le.PutUint32(b[44:], uint32(n))
	le.PutUint64(b[48:], xxhash.Sum64(p))
	copy(b[record.HeaderSize:], p)
	record.Stamp(b, base, 1)
	return b
}

// TestOffsetSpan protects the promise that a segment's 32-bit relative
// offsets never wrap: Write refuses a batch whose offsets would pass
// MaxOffsetSpan (the engine rolls first), and a log holding such a batch
// anyway (written by an older version, or crafted) opens as corruption at
// that batch, with everything before it readable and nothing cut.
func TestOffsetSpan(t *testing.T) {
	e := memEnv(t)
	opts := Options{MaxBytes: 1 << 20, MaxEntries: 64}
	s := mustCreate(t, e, 0, opts)
	m := newModel(0)
	appendBatches(t, s, m, mkBatch(t, 0, 1, 10, 1))
	for range 3 {
		appendBatches(t, s, m, zeroBatch(m.next(), 1<<30))
	}
	if !s.SpanFits(1<<30-2) || s.SpanFits(1<<30-1) { // next is 1+3·2^30
		t.Fatalf("SpanFits at next %d: wrong answer", m.next())
	}
	over := zeroBatch(m.next(), 1<<30) // its next offset is 2^32 + 1
	if err := s.Write([][]byte{over}); !errors.Is(err, ErrFull) {
		t.Fatalf("Write past the offset span = %v, want ErrFull", err)
	}
	if err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	checkBatches(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	e.mutate(t, LogName(0), func(b []byte) []byte { return append(b, over...) })
	for _, synced := range []uint64{0, m.next() + 1<<30} {
		o := opts
		o.Synced = synced
		s, rep, err := Open(e.fs, e.dir, 0, o, false, true)
		ce := asCorrupt(t, err)
		if ce.Pos != m.size() || ce.Offset != m.next() || rep.TornBytes != 0 {
			t.Fatalf("synced %d: %v, report %+v; want corruption at byte %d, offset %d", synced, err, rep, m.size(), m.next())
		}
		if got := e.fileSize(t, LogName(0)); got != m.size()+int64(len(over)) {
			t.Fatalf("log cut to %d bytes", got)
		}
		checkBatches(t, s, m)
		s.Close()
	}
}

// checkBatches checks that s holds exactly m's batches, finding each by its
// first and last offset (checkSegment visits every offset: too many here).
func checkBatches(t *testing.T, s *Segment, m *model) {
	t.Helper()
	if s.Next() != m.next() || s.Entries() != int64(len(m.batches)) {
		t.Fatalf("segment ends at %d with %d batches, want %d, %d", s.Next(), s.Entries(), m.next(), len(m.batches))
	}
	if !s.Acquire() {
		t.Fatal("Acquire failed")
	}
	defer s.Release()
	for i, b := range m.batches {
		for _, off := range []uint64{m.first[i], m.first[i] + uint64(record.CountOf(b)) - 1} {
			r, err := s.Find(off, 1, 1)
			if err != nil || r.Pos != m.pos[i] || r.First != m.first[i] || string(s.Bytes(r)) != string(b) {
				t.Fatalf("Find(%d) = %+v, %v; want batch %d at %d", off, r, err, i, m.pos[i])
			}
		}
	}
	if _, err := s.Find(m.next(), 1, 1); err == nil {
		t.Fatalf("Find(%d) past the end succeeded", m.next())
	}
}

// TestSyncedWritesDamageNotTorn protects the promise that an acknowledged
// message is never cut as a torn write: damage followed by batches from a
// later write group is corruption, reported, never truncated. Under
// SyncedWrites (fsync=always) only the last write can be torn: batches
// after the damage that end more than MaxWriteBytes past it, or that carry
// different append times (one write stamps one time), came from later
// writes, so the damaged batch was synced. Batches within one write of the
// damage, all of one time, remain a torn tail.
func TestSyncedWritesDamageNotTorn(t *testing.T) {
	cases := []struct {
		name     string
		t4, t5   int64 // append times of the batches after the damage
		maxWrite func(m *model) int64
		torn     bool
	}{
		{"one write", 7, 7, func(*model) int64 { return 0 }, true},
		{"one write, within the bound", 7, 7, func(m *model) int64 { return m.size() - m.pos[3] }, true},
		{"past the write bound", 7, 7, func(m *model) int64 { return m.pos[4] + 1 - m.pos[3] }, false},
		{"two append times", 8, 9, func(*model) int64 { return 0 }, false},
	}
	for _, c := range cases {
		e := memEnv(t)
		s := mustCreate(t, e, 0, testOpts)
		m := newModel(0)
		fill(t, s, m, 3)
		appendBatches(t, s, m, mkBatch(t, m.next(), 4, 300, 7))
		appendBatches(t, s, m, mkBatch(t, m.next(), 2, 50, c.t4), mkBatch(t, m.next()+2, 3, 20, c.t5))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		e.mutate(t, LogName(0), func(b []byte) []byte { clear(b[m.pos[3] : m.pos[3]+64]); return b })
		opts := testOpts
		opts.SyncedWrites, opts.MaxWriteBytes = true, c.maxWrite(m)
		if c.torn {
			expectTornOpts(t, e, opts, false, m.truncated(3), m.size()-m.pos[3])
			continue
		}
		s2, rep, err := Open(e.fs, e.dir, 0, opts, false, true)
		ce := asCorrupt(t, err)
		if ce.Pos != m.pos[3] || rep.TornBytes != 0 {
			t.Fatalf("%s: %v, report %+v", c.name, ce, rep)
		}
		if got := e.fileSize(t, LogName(0)); got != m.size() {
			t.Fatalf("%s: log cut to %d bytes, want %d", c.name, got, m.size())
		}
		checkAroundDamage(t, s2, m, 3)
		s2.Close()
	}
}
