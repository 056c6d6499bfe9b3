package segment

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/haraqa/haraqa/record"
)

// Fits reports whether n more bytes in k more batches fit the segment on
// top of what was written: within MaxBytes and MaxEntries, which the
// segment's mappings cover exactly. Write refuses what does not fit with
// ErrFull, even for an empty segment (the engine caps batches below
// MaxBytes). A sealed segment fits nothing.
func (s *Segment) Fits(n, k int) bool {
	if s.sealed.Load() {
		return false
	}
	return s.pendSize+int64(n) <= s.opts.MaxBytes && s.pendEntries+int64(k) <= s.opts.MaxEntries
}

// SpanFits reports whether msgs more messages fit the segment's offset span
// on top of what was written: the next offset after them is at most
// MaxOffsetSpan above the base. Write refuses what does not with ErrFull.
func (s *Segment) SpanFits(msgs uint64) bool {
	return msgs <= MaxOffsetSpan && s.pendNext-s.base <= MaxOffsetSpan-msgs
}

// FirstTime returns the append time of the segment's first batch, 0 if none.
func (s *Segment) FirstTime() int64 { return s.firstTime }

// Write appends stamped, verified batches whose offsets continue the
// segment, with one vectored write to the log; their index entries go to
// the in-memory index. Nothing becomes visible to readers before Commit;
// after an error the caller must Rollback.
func (s *Segment) Write(batches [][]byte) error {
	if s.sealed.Load() {
		return ErrSealed
	}
	if s.damaged != nil {
		return s.damaged
	}
	// Pinned while it uses the files and the writer state ReleaseIdle
	// (anyone's) reads and sets: ReleaseIdle waits (see pinWriter).
	if !s.Acquire() {
		if s.syncErr != nil {
			return s.syncErr
		}
		return ErrClosed
	}
	defer s.Release()
	if s.syncErr != nil {
		return s.syncErr
	}
	if len(batches) == 0 {
		return nil
	}
	if err := s.load(); err != nil {
		return err
	}
	if err := s.readyDigest(); err != nil {
		return err
	}
	s.recent.Store(true)
	s.idxBuf = s.idxBuf[:0]
	pos, next, t := s.pendSize, s.pendNext, s.pendTime
	for _, b := range batches {
		// Cheap framing checks (the caller verified the batch): a wrong
		// length here would misframe every later batch of the log.
		if len(b) < record.HeaderSize || record.SizeFor(int(record.PayloadLenOf(b))) != len(b) || record.CountOf(b) == 0 {
			return fmt.Errorf("segment: write of a malformed batch (%d bytes) at offset %d", len(b), next)
		}
		base := record.BaseOffsetOf(b)
		if base != next {
			return fmt.Errorf("segment: batch offset %d, want %d", base, next)
		}
		if n := uint64(record.CountOf(b)); base-s.base > MaxOffsetSpan-n {
			return fmt.Errorf("%w: batch of %d messages at offset %d passes the offset span of segment %d", ErrFull, n, base, s.base)
		}
		t = record.AppendTimeOf(b)
		s.idxBuf = putEntry(s.idxBuf, uint32(base-s.base), uint32(pos), t)
		pos += int64(len(b))
		next = base + uint64(record.CountOf(b))
	}
	if pos > s.opts.MaxBytes || s.pendEntries+int64(len(batches)) > s.opts.MaxEntries {
		return fmt.Errorf("%w: %d batches end at byte %d of %d, entry %d of %d", ErrFull,
			len(batches), pos, s.opts.MaxBytes, s.pendEntries+int64(len(batches)), s.opts.MaxEntries)
	}
	s.stageIndex(s.idxBuf)
	s.inFlight, s.dirty = true, true
	bufs, end := batches, pos
	if z := s.zerosFor(pos - s.pendSize); z > 0 && pos > s.fileEnd {
		if to := min(pos+z, s.opts.MaxBytes); to > pos {
			s.iov = append(append(s.iov[:0], batches...), zeroBytes()[:to-pos])
			bufs, end = s.iov, to
		}
	}
	_, err := s.log.WriteAt(bufs, s.pendSize)
	if len(bufs) > len(batches) {
		clear(s.iov) // keep no caller's batch alive
		if err != nil && noRoom(err) {
			// No room for the zeros (a nearly full disk): write the
			// batches alone. The failed write may have left zeros past
			// them: Seal and Close cut whatever follows the log. Any
			// other error is the volume failing: never retried (the
			// caller rolls back; a retry could succeed over pages an
			// I/O error dropped, and be acknowledged).
			s.fileEnd = s.opts.MaxBytes
			_, err = s.log.WriteAt(batches, s.pendSize)
		}
	}
	if err != nil {
		return fmt.Errorf("segment: write %s: %w", s.path(LogName(s.base)), err)
	}
	s.fileEnd = max(s.fileEnd, end)
	for _, b := range batches {
		s.digest.Write(b)
	}
	if s.pendEntries == 0 {
		s.firstTime = record.AppendTimeOf(batches[0])
	}
	s.pendEntries += int64(len(batches))
	s.pendSize, s.pendNext, s.pendTime = pos, next, t
	return nil
}

// Sync makes the written log bytes durable. The index is derived data and
// is synced only when the segment is sealed or closed.
//
// A failed sync while committed bytes were not yet known durable (written
// since the last successful Sync: fsync=interval or never, or bytes found
// at a scanning open) is sticky: the kernel may have dropped those pages
// and marked them clean, so a retried sync could succeed without them
// (fsyncgate). Every later Sync, Write, Seal, Close and Rollback returns
// the same ErrSyncLost error: the segment is never sealed as if good. A
// failed sync that covered only uncommitted bytes (fsync=always) is not
// sticky: the caller rolls those bytes back.
func (s *Segment) Sync() error {
	if !s.Acquire() {
		return s.syncErr // closed: its owner synced it
	}
	defer s.Release()
	if s.syncErr != nil {
		return s.syncErr
	}
	if !s.dirty {
		return nil // nothing written since the last sync
	}
	// Cold and dirty: bytes a scanning Open found, never synced by this
	// process (a segment let go while in use was synced first).
	if err := s.load(); err != nil {
		return err
	}
	if err := s.log.Sync(); err != nil {
		err = fmt.Errorf("segment: sync %s: %w", s.path(LogName(s.base)), err)
		if s.syncedSize < s.size.Load() {
			s.syncErr = fmt.Errorf("%w: %w", ErrSyncLost, err)
			return s.syncErr
		}
		return err
	}
	s.syncedSize = s.pendSize
	s.dirty = false
	return nil
}

// Commit publishes everything written so far to readers.
func (s *Segment) Commit() {
	if s.pinWriter() {
		defer s.Release()
	}
	s.size.Store(s.pendSize)
	s.lastTime.Store(s.pendTime)
	s.entries.Store(s.pendEntries) // Find loads entries first, then size
	s.next.Store(s.pendNext)       // last: a reader that saw Next finds it
	s.saved = s.digest
	s.inFlight = false
}

// Rollback forgets what was written since the last Commit and cuts it off
// the log, so that no partial batch survives, and syncs the cut: the
// written bytes may be on disk already (synced on this mirror while
// another failed, or written back by the kernel), and a batch the caller
// was told failed must not come back after a crash. A failed truncate is
// returned (the segment is then unusable for writes; the engine makes it
// sticky), and so is a sticky sync error (see Sync). A failed sync of the
// cut alone is not: the next successful Sync makes the cut durable.
func (s *Segment) Rollback() error {
	if s.pinWriter() {
		defer s.Release()
	}
	if err := s.Undo(); err != nil || s.sealed.Load() || s.damaged != nil || !s.loaded.Load() {
		return err
	}
	if err := s.Sync(); err != nil && s.syncErr != nil {
		return s.syncErr
	}
	return nil
}

// Undo is Rollback without the sync of the cut, for a copy that is taken
// out of service at once (its volume fenced) and is reconciled with the
// other mirrors before it serves again.
func (s *Segment) Undo() error {
	pinned := s.pinWriter()
	if pinned {
		defer s.Release()
	}
	s.pendSize, s.pendNext, s.pendTime = s.size.Load(), s.next.Load(), s.lastTime.Load()
	s.pendEntries = s.entries.Load()
	s.syncedSize = min(s.syncedSize, s.pendSize)
	if s.inFlight {
		// What a write left past the log is its batches, not zeros: only
		// a successful cut below makes the file end at the log again, and
		// cutZeros must never cut what a failed one left (Seal refuses
		// it). A write refused before writing left the zeros as they were.
		s.fileEnd = s.pendSize
	}
	if s.pendEntries == 0 {
		s.firstTime = 0
	}
	s.digest = s.saved
	if !pinned {
		return nil
	}
	if s.sealed.Load() || s.damaged != nil || !s.loaded.Load() {
		// Write refused before writing anything; a damaged log keeps the
		// bytes after its damage for repair, and a sealed or cold one may
		// be unopened (and has nothing written since Open: a segment with
		// bytes in flight is never let go).
		s.inFlight = false
		return nil
	}
	if err := s.log.Truncate(s.pendSize); err != nil {
		return fmt.Errorf("segment: rollback %s: %w", s.path(LogName(s.base)), err)
	}
	s.fileEnd = s.pendSize // the zeros, if any, went with the cut
	// The cut is to be synced, by Rollback or by whoever lets the files go.
	s.inFlight, s.dirty = false, true
	return nil
}

// readyDigest hashes the committed log once after a trusted (unscanned)
// open, so the running whole-file hash is right when the segment is sealed.
func (s *Segment) readyDigest() (err error) {
	if s.digestReady {
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err) // see fault.go
	if err := s.load(); err != nil {
		return err
	}
	s.digest.Reset()
	s.digest.Write(s.logMap[:s.size.Load()])
	s.saved = s.digest
	s.digestReady = true
	return nil
}

// pinWriter pins the segment for a writer step that touches the state
// releaseActive reads and sets (inFlight, pendSize, pendEntries, dirty,
// syncedSize, syncErr) without necessarily using the files. The pin is
// what keeps ReleaseIdle out: it starts only by swapping a count of 1 (the
// owner's pin alone) for releasing, and the pin count's atomic updates
// order the writer's steps before or after its whole run. It reports
// false once the segment was closed for good (no pins left): no
// ReleaseIdle can start on it any more, so the step may go on unpinned.
func (s *Segment) pinWriter() bool { return s.Acquire() }

// MaxZeroAhead bounds Options.ZeroAhead.
const MaxZeroAhead = 1 << 20

// zeroAheadWrite: only a write of at most this many bytes carries zeros
// ahead. Larger writes are fewer per second, and each pays the file-size
// commit as before.
const zeroAheadWrite = 4 << 10

// A write of w bytes carries zeroAheadRatio × w zeros, at least
// zeroAheadMin and at most Options.ZeroAhead: the one write in about 256
// that pays for them (their copy to the page cache, and to the disk at its
// sync) stays past the 99th percentile, and a topic of small messages
// keeps 64 KiB of zeros on disk, not a megabyte (10,000 such topics: 640
// MiB per volume).
const (
	zeroAheadRatio = 256
	zeroAheadMin   = 64 << 10
)

// zerosFor returns how many zeros a write of w bytes that grows the file
// carries (0: none).
func (s *Segment) zerosFor(w int64) int64 {
	z := min(s.opts.ZeroAhead, MaxZeroAhead)
	if z <= 0 || w > zeroAheadWrite {
		return 0
	}
	return min(z, max(zeroAheadMin, zeroAheadRatio*w))
}

// zeroBytes is MaxZeroAhead zero bytes, allocated on first use. Never
// written, its pages are the kernel's shared zero page.
var zeroBytes = sync.OnceValue(func() []byte { return make([]byte, MaxZeroAhead) })

// noRoom reports whether a write failed for lack of space (ENOSPC,
// EDQUOT): refused, not an I/O error of the volume.
func noRoom(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// cutZeros cuts the zeros written ahead of the committed log (see
// Options.ZeroAhead) before a seal or a close, which want the file's
// length to be the log's: with durable the cut is synced by the caller's
// Sync. Without, the cut need not survive a crash (zeros after the log
// are read as its end and cut at the next open, and a clean open trusts
// an index only when the log file ends at its last batch), so it costs
// no sync: ReleaseIdle's cut, which may run for many idle segments at
// once on a writer's path (the descriptor budget's sweep).
func (s *Segment) cutZeros(durable bool) error {
	if s.fileEnd <= s.pendSize || s.pendSize != s.size.Load() {
		return nil
	}
	if err := s.load(); err != nil { // let go while idle (ReleaseIdle)
		return err
	}
	if err := s.log.Truncate(s.pendSize); err != nil {
		return fmt.Errorf("segment: cut the zeros after %s: %w", s.path(LogName(s.base)), err)
	}
	s.fileEnd = s.pendSize
	s.dirty = s.dirty || durable
	return nil
}
