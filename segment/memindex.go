package segment

import "fmt"

// The index of an unsealed segment lives in memory: a growing buffer of
// fixed-size entries, so that an active segment costs one descriptor (its
// log, kept open for writes) and one mapping (the log's, for reads). The
// .idx file is written from it when the segment is sealed, when a clean
// shutdown closes it, and when the segment lets its files go with a large
// index (the buffer is then dropped and read back at the next load). After
// a crash the file is stale, and Open rebuilds it from the log anyway: an
// unsealed segment's index is trusted only after a clean shutdown.

// memIndex is an in-memory index: len(b) is its capacity in bytes, and
// entries [0, Entries) are valid. Readers load the pointer after the entry
// count (see Commit), so the buffer they see holds every entry they may
// read; the writer only writes entries at or past the committed count, and
// a grown buffer is a new one (the old one is never written again).
type memIndex struct{ b []byte }

// memKeep is the largest in-memory index kept while the segment's files
// are let go; a larger one is written to the .idx file and dropped.
const memKeep = 4 << 10

// index returns the entries readers search: the in-memory index of an
// unsealed segment (or of one sealed since it was loaded), else the mapped
// .idx file of a sealed segment.
func (s *Segment) index() []byte {
	if m := s.mem.Load(); m != nil {
		return m.b
	}
	return s.idxMap
}

// stageIndex copies entries (whole EntrySize records) after the pending
// ones, growing the buffer when needed. Writer only.
func (s *Segment) stageIndex(entries []byte) {
	at := int(s.pendEntries) * EntrySize
	m := s.mem.Load()
	if m == nil || len(m.b) < at+len(entries) {
		n := max(at+len(entries), 16*EntrySize)
		if m != nil {
			n = max(n, 2*len(m.b))
		}
		nb := make([]byte, n)
		if m != nil {
			copy(nb, m.b[:at])
		}
		m = &memIndex{b: nb}
		s.mem.Store(m)
	}
	copy(m.b[at:], entries)
	s.idxSynced = false
}

// readIndex loads the committed entries of an unsealed segment from its
// .idx file, which holds them (Open wrote or checked it, or writeIndex
// wrote it before the buffer was dropped). Called with mu held.
func (s *Segment) readIndex() error {
	n := s.entries.Load()
	b := make([]byte, max(2*n, 16)*EntrySize)
	if n > 0 {
		f, err := s.fs.Open(s.path(IndexName(s.base)))
		if err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		defer f.Close()
		size, err := f.Size()
		if err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		if size < n*EntrySize {
			return &CorruptError{File: s.path(IndexName(s.base)), Pos: size, Offset: s.base,
				Err: fmt.Errorf("index is %d bytes, %d entries committed", size, n)}
		}
		if _, err := f.ReadAt(b[:n*EntrySize], 0); err != nil {
			return fmt.Errorf("segment: read index %d: %w", s.base, err)
		}
	}
	s.idxFlushed = n
	s.mem.Store(&memIndex{b: b})
	return nil
}

// writeIndex writes the committed entries the .idx file lacks from the
// in-memory index, trims the file to the committed entries and, with
// sync, syncs it. It opens the file for the time it needs unless Open holds
// it; it never creates it (a removed segment's file must stay removed).
func (s *Segment) writeIndex(sync bool) error {
	n := s.entries.Load()
	f := s.idx
	if f == nil {
		var err error
		if f, err = s.fs.Open(s.path(IndexName(s.base))); err != nil {
			return fmt.Errorf("segment: write index %d: %w", s.base, err)
		}
		defer f.Close()
	}
	if m := s.mem.Load(); m != nil && s.idxFlushed < n {
		from := s.idxFlushed * EntrySize
		if _, err := f.WriteAt([][]byte{m.b[from : n*EntrySize]}, from); err != nil {
			return fmt.Errorf("segment: write index %d: %w", s.base, err)
		}
	}
	if err := f.Truncate(n * EntrySize); err != nil {
		return fmt.Errorf("segment: trim index %d: %w", s.base, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("segment: sync index %d: %w", s.base, err)
		}
	}
	s.idxFlushed, s.idxSynced = n, sync
	return nil
}

// releaseActive prepares an unsealed segment to let its files go: it
// refuses while the writer has bytes in flight, syncs what was written
// since the last sync (whoever releases: the writer must find it durable
// once the descriptor is gone; a failed sync is sticky, see Sync), and
// writes a large in-memory index to the file so the buffer can be
// dropped. The caller holds the releasing pin state.
func (s *Segment) releaseActive() bool {
	if s.inFlight || s.pendSize != s.size.Load() || s.pendEntries != s.entries.Load() {
		return false // the writer has uncommitted bytes in flight
	}
	// The zeros written ahead go, so that Close need not reopen an idle
	// segment to cut them (the cut is not synced: see cutZeros); the next
	// small write after a reload writes new ones.
	if err := s.cutZeros(false); err != nil {
		return false
	}
	if s.dirty {
		if err := s.log.Sync(); err != nil {
			// Every byte written is committed (or cut): as in Sync, a
			// failed sync of them is sticky.
			s.syncErr = fmt.Errorf("%w: segment: sync %s: %w", ErrSyncLost, s.path(LogName(s.base)), err)
			return false
		}
		s.syncedSize, s.dirty = s.pendSize, false
	}
	if m := s.mem.Load(); m != nil && len(m.b) > memKeep {
		if s.writeIndex(false) == nil {
			s.mem.Store(nil)
		}
		// Else (out of descriptors, say) the buffer stays: it is the index.
	}
	return true
}
