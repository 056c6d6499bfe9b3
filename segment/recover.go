package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime/debug"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

func joinPath(dir, name string) string { return filepath.Join(dir, name) }

// Report says what Open found and did.
type Report struct {
	TornBytes    int64 // bytes cut from a torn tail of the last segment
	ZeroBytes    int64 // zero bytes cut from the end of the last segment (see Options.ZeroAhead): not counted as torn
	IndexRebuilt bool  // the index was missing or inconsistent and was rebuilt
	Resealed     bool  // a seal file was missing or bad and was rewritten
	Scanned      bool  // the log was deep-scanned
	// ShortZeros: the last segment's log ends in zeros alone below
	// Options.Synced. Open returns ErrCorrupt and cuts nothing (the
	// synced messages after them are not in this copy), but the copy may
	// simply have been left behind with zeros written ahead (its volume
	// fenced): the caller may call it short, not damaged, when another
	// copy holds the messages after it.
	ShortZeros bool
}

// Open opens an existing segment.
//
// A sealed segment (valid seal file) is checked cheaply: its log must have
// the sealed length and its index the sealed entry count, else the index is
// rebuilt and a wrong log length is corruption. It is mapped lazily.
//
// An unsealed segment is trusted without a scan only when clean is set (the
// engine found a clean-shutdown marker) and its index is consistent with
// its log. Otherwise the log is scanned batch by batch. Damage in the last
// segment (last set) at or past Options.Synced is a torn write and is cut
// off together with everything after it (under Options.SyncedWrites only
// when no batch of a later write follows it); any other damage is
// corruption: Open then returns the segment,
// readable up to the damage, together with a *CorruptError. Such a segment
// refuses Write and Seal, and Rollback never cuts it: the bytes after the
// damage stay for repair. A damaged sealed segment is not returned.
func Open(fs vfs.FS, dir string, base uint64, opts Options, clean, last bool) (*Segment, Report, error) {
	s := &Segment{fs: fs, dir: dir, base: base, opts: opts.withDefaults()}
	s.refs.Store(1)
	var rep Report
	var err error
	if s.log, err = fs.Open(s.path(LogName(base))); err != nil {
		return nil, rep, fmt.Errorf("segment: open: %w", err)
	}
	if s.idx, err = fs.Open(s.path(IndexName(base))); err != nil {
		if !isNotExist(err) {
			s.closeFiles()
			return nil, rep, fmt.Errorf("segment: open: %w", err)
		}
		if s.idx, err = fs.Create(s.path(IndexName(base))); err != nil {
			s.closeFiles()
			return nil, rep, fmt.Errorf("segment: open: %w", err)
		}
	}
	logSize, err := s.log.Size()
	if err != nil {
		s.closeFiles()
		return nil, rep, fmt.Errorf("segment: open: %w", err)
	}
	// A scan maps the log's capacity: it must cover the file, whatever the
	// options say now (they may have shrunk since the file was written).
	s.opts.MaxBytes = min(max(s.opts.MaxBytes, logSize), MaxSegmentBytes)
	if seal, serr := ReadSeal(fs, dir, base); serr == nil {
		err = s.openSealed(seal, logSize, &rep)
	} else {
		err = s.openUnsealed(logSize, clean, last, &rep)
	}
	if err != nil && s.closed {
		return nil, rep, err
	}
	return s, rep, err
}

func (s *Segment) openSealed(seal Seal, logSize int64, rep *Report) error {
	s.seal = seal
	if logSize != seal.LogSize {
		s.closeFiles()
		return &CorruptError{File: s.path(LogName(s.base)), Pos: min(logSize, seal.LogSize), Offset: s.base,
			Err: fmt.Errorf("sealed log is %d bytes, seal says %d", logSize, seal.LogSize)}
	}
	s.setCommitted(seal.LogSize, seal.Entries, seal.Next, seal.LastTime)
	s.syncedSize = seal.LogSize // synced when it was sealed
	s.sealed.Store(true)
	s.digestReady = true
	if !s.indexConsistent(seal.Entries, seal.LogSize) {
		if err := s.rebuild(seal.LogSize, false, rep); err != nil {
			s.closeFiles()
			return err
		}
		if s.next.Load() != seal.Next || s.digest.Sum64() != seal.LogHash {
			s.closeFiles()
			return &CorruptError{File: s.path(LogName(s.base)), Pos: 0, Offset: s.base,
				Err: fmt.Errorf("sealed log does not match its seal")}
		}
	}
	// Sealed segments are mapped on first read; keep no files open, and
	// release the mapping a rebuild made.
	s.unload()
	return nil
}

// unload (the reverse of load) releases the files and mappings Open or a
// read used, leaving the segment usable: a segment holds no
// descriptor and no mapping until a read or a write needs them, so that
// opening many topics costs neither (vm.max_map_count, the fd limit).
func (s *Segment) unload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.unmap {
		u()
	}
	if s.log != nil {
		s.log.Close()
	}
	if s.idx != nil {
		s.idx.Close()
	}
	s.log, s.idx, s.logMap, s.idxMap, s.unmap = nil, nil, nil, nil, nil
	s.loaded.Store(false)
	s.account(0, 0)
	if s.sealed.Load() {
		s.mem.Store(nil) // the .idx file holds every entry since Seal
	}
}

func (s *Segment) openUnsealed(logSize int64, clean, last bool, rep *Report) error {
	if logSize > MaxSegmentBytes {
		s.closeFiles()
		return &CorruptError{File: s.path(LogName(s.base)), Pos: MaxSegmentBytes, Offset: s.base,
			Err: fmt.Errorf("log of %d bytes exceeds the segment limit", logSize)}
	}
	if clean {
		if idxSize, err := s.idx.Size(); err == nil && idxSize%EntrySize == 0 && s.indexConsistent(idxSize/EntrySize, logSize) {
			n := idxSize / EntrySize
			s.opts.MaxEntries = max(s.opts.MaxEntries, n) // the index mapping must cover it
			var next uint64 = s.base
			var t int64
			if n > 0 {
				h, err := s.headerAt(s.lastEntryPos(n))
				if err == nil {
					next, t = h.NextOffset(), h.AppendTime
				}
			}
			s.setCommitted(logSize, n, next, t)
			s.syncedSize = logSize // the clean shutdown synced it
			if n > 0 {
				var e [EntrySize]byte
				if _, err := s.idx.ReadAt(e[:], 0); err == nil {
					s.firstTime = int64(binary.LittleEndian.Uint64(e[8:]))
				}
			}
			s.unload()
			return nil
		}
	}
	// The scanned bytes may never have been synced (a crash of the
	// process that wrote them): the first Sync syncs them.
	s.dirty = true
	if err := s.rebuild(logSize, last, rep); err != nil {
		s.unload()
		return err
	}
	if !last {
		if err := s.Seal(); err != nil {
			s.closeFiles()
			return err
		}
		rep.Resealed = true
	}
	s.unload()
	return nil
}

func (s *Segment) setCommitted(size, entries int64, next uint64, t int64) {
	s.size.Store(size)
	s.next.Store(next)
	s.lastTime.Store(t)
	s.entries.Store(entries)
	s.pendSize, s.pendEntries, s.pendNext, s.pendTime = size, entries, next, t
	s.fileEnd = size
	s.idxFlushed = entries // Open found or wrote them in the .idx file
	s.idxSynced = true     // synced by the rebuild, or by the clean shutdown
}

// rebuild scans the log, rewrites the index from it, and recomputes the
// whole-file hash. Damage at the tail of the last segment is cut off as a
// torn write; other damage is returned as a *CorruptError with the segment
// committed up to it (still readable there).
func (s *Segment) rebuild(logSize int64, last bool, rep *Report) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { // a log cut under the scan's mapping: see fault.go
		if p := recover(); p != nil {
			err = s.faultErr(p)
			s.closeFiles()
		}
	}()
	rep.Scanned = true
	sealed := s.sealed.Load()
	s.sealed.Store(false) // map the whole capacity for the scan
	if err := s.mapFiles(); err != nil {
		s.closeFiles()
		return err
	}
	s.sealed.Store(sealed)
	if testHookScan != nil {
		testHookScan(s.path(LogName(s.base)))
	}
	data := s.logMap[:logSize]
	sc := record.NewScanner(data)
	s.digest.Reset()
	s.idxBuf = s.idxBuf[:0]
	res, scanErr := s.scanInto(&sc, -1, s.base)
	size := res.end // not sc.End(): a batch with a wrong offset is not accepted
	// Only a batch the scanner rejected can be torn; a whole valid batch
	// with the wrong offset is corruption wherever it is. Nor can a batch
	// below the synced offset: that was acknowledged.
	//
	// Past the synced offset, valid-looking batches after the damage do
	// not make it corruption: a power cut during one multi-page write can
	// leave an early block a hole while later pages made it, and a message
	// payload may itself look like a batch. Any genuine batch after the
	// damage holds offsets above it, so none of them is known synced
	// either: the whole tail from the damage on is unacknowledged.
	//
	// Under SyncedWrites only the last write can be unsynced: damage
	// followed by a batch of a later write was synced (acknowledged).
	// Read before any cut: the mapping past the file's end is gone then.
	// written is where the tail's last nonzero byte ends. Under ZeroAhead
	// the zeros after it (written ahead, up to a megabyte) are reported as
	// zeros, not as torn bytes; otherwise a tail of zeros alone is.
	written := int64(len(data))
	if scanErr != nil && (s.opts.ZeroAhead > 0 || record.IsZero(data[size:])) {
		written = size + int64(len(bytes.TrimRight(data[size:], "\x00")))
	}
	zeros := scanErr != nil && written == size
	if scanErr != nil && sc.Err() != nil && last && !sealed && res.next >= s.opts.Synced &&
		!(s.opts.SyncedWrites && s.laterWrite(data, max(int64(sc.Pos()), size), res.next)) {
		// A torn tail. Cut it off.
		if err := s.log.Truncate(size); err != nil {
			s.closeFiles()
			return fmt.Errorf("segment: cut torn tail of %d: %w", s.base, err)
		}
		if err := s.log.Sync(); err != nil {
			s.closeFiles()
			return fmt.Errorf("segment: cut torn tail of %d: %w", s.base, err)
		}
		// Zeros after the torn bytes (or alone): written ahead
		// (Options.ZeroAhead), or a write whose data never reached the disk.
		rep.TornBytes, rep.ZeroBytes = written-size, logSize-written
		s.syncedSize = size
		scanErr = nil
	}
	if scanErr != nil && sc.Err() != nil && last && !sealed && zeros {
		rep.ShortZeros = true // below Synced: damage, unless another copy holds more
	}
	if scanErr != nil {
		// Corruption: index the valid batches after the damage too, so that
		// only the damaged offsets fail to read (with ErrCorrupt naming
		// them) and a mirror can repair the segment.
		res, size = s.skipDamage(data, &sc, res, size)
	}
	if err := s.writeRebuilt(res.entries); err != nil {
		if sealed {
			s.closeFiles()
			return err
		}
		// An unsealed segment's index lives in memory anyway (a full
		// disk, say): keep it there; the file is written at the next
		// seal, release or close.
		s.mem.Store(&memIndex{b: append([]byte(nil), s.idxBuf...)})
		defer func() { s.idxFlushed, s.idxSynced = 0, false }()
	}
	if res.entries > s.opts.MaxEntries && !sealed {
		// More batches than the options allow now: they must still fit.
		s.opts.MaxEntries = res.entries
	}
	rep.IndexRebuilt = true
	s.setCommitted(size, res.entries, res.next, res.lastTime)
	s.firstTime = res.firstTime
	s.saved = s.digest
	s.digestReady = true
	if scanErr != nil {
		// Keep the bytes after the damage for repair: no write may land
		// on them and no Rollback may cut them.
		s.damaged = scanErr
	}
	return scanErr
}

// writeRebuilt writes the index rebuilt in s.idxBuf to the .idx file,
// trims and syncs it: a sealed segment's index is trusted on the next open
// after a check of its first and last entries only.
func (s *Segment) writeRebuilt(entries int64) error {
	s.idxBufs[0] = s.idxBuf
	if _, err := s.idx.WriteAt(s.idxBufs[:], 0); err != nil {
		return fmt.Errorf("segment: rebuild index %d: %w", s.base, err)
	}
	if err := s.idx.Truncate(entries * EntrySize); err != nil {
		return fmt.Errorf("segment: rebuild index %d: %w", s.base, err)
	}
	if err := s.idx.Sync(); err != nil {
		return fmt.Errorf("segment: rebuild index %d: %w", s.base, err)
	}
	return nil
}

type scanResult struct {
	entries             int64
	end                 int64 // log position after the last accepted batch
	next                uint64
	firstTime, lastTime int64
}

// scanInto walks sc from its start, checking offsets continue from the
// segment's base, appending index entries to s.idxBuf and hashing into
// s.digest. It stops at the first damage and returns it as a *CorruptError,
// or after limit batches when limit >= 0.
func (s *Segment) scanInto(sc *record.Scanner, limit int64, from uint64) (scanResult, error) {
	r := scanResult{next: from}
	for (limit < 0 || r.entries < limit) && sc.Next() {
		h := sc.Header()
		if h.BaseOffset != r.next {
			return r, &CorruptError{File: s.path(LogName(s.base)), Pos: int64(sc.Pos()), Offset: r.next,
				Err: fmt.Errorf("batch offset %d, want %d", h.BaseOffset, r.next)}
		}
		if !s.inSpan(h) {
			// Never written by Write: its relative offsets would wrap.
			return r, &CorruptError{File: s.path(LogName(s.base)), Pos: int64(sc.Pos()), Offset: r.next,
				Err: fmt.Errorf("batch of offsets %d..%d passes the offset span of the segment", h.BaseOffset, h.LastOffset())}
		}
		if r.entries == 0 {
			r.firstTime = h.AppendTime
		}
		s.idxBuf = putEntry(s.idxBuf, uint32(h.BaseOffset-s.base), uint32(sc.Pos()), h.AppendTime)
		s.digest.Write(sc.Batch())
		r.entries++
		r.end, r.next, r.lastTime = int64(sc.End()), h.NextOffset(), h.AppendTime
	}
	if err := sc.Err(); err != nil {
		return r, &CorruptError{File: s.path(LogName(s.base)), Pos: int64(sc.Pos()), Offset: r.next, Err: err}
	}
	return r, nil
}

// verifyLog verifies the first n committed batches of the log in sc
// without touching the segment's state: hashes, offsets, the index entries
// and, for a sealed segment, the seal's length, next offset and hash. Bytes
// past the n-th batch (commits made since n was loaded) are not looked at.
func (s *Segment) verifyLog(sc *record.Scanner, n int64, seal Seal, sealed bool) error {
	t := &Segment{fs: s.fs, dir: s.dir, base: s.base}
	t.digest.Reset()
	r, err := t.scanInto(sc, n, s.base)
	if err != nil {
		return err
	}
	if r.entries != n {
		return &CorruptError{File: s.path(LogName(s.base)), Pos: r.end, Offset: r.next,
			Err: fmt.Errorf("log ends at offset %d after %d batches, index has %d", r.next, r.entries, n)}
	}
	ix := s.index()
	for i := int64(0); i < n; i++ {
		want := t.idxBuf[i*EntrySize : (i+1)*EntrySize]
		if got := ix[i*EntrySize : (i+1)*EntrySize]; string(got) != string(want) {
			return &CorruptError{File: s.path(IndexName(s.base)), Pos: i * EntrySize,
				Offset: s.base + uint64(binary.LittleEndian.Uint32(want)),
				Err:    fmt.Errorf("index entry %d is %x, the log says %x", i, got, want)}
		}
	}
	if sealed {
		if r.end != seal.LogSize || r.next != seal.Next {
			return &CorruptError{File: s.path(LogName(s.base)), Pos: r.end, Offset: r.next,
				Err: fmt.Errorf("log ends at byte %d, offset %d; seal says %d, %d", r.end, r.next, seal.LogSize, seal.Next)}
		}
		if t.digest.Sum64() != seal.LogHash {
			return &CorruptError{File: s.path(LogName(s.base)), Pos: 0, Offset: s.base,
				Err: fmt.Errorf("whole-file hash %#x, seal says %#x", t.digest.Sum64(), seal.LogHash)}
		}
	}
	return nil
}

func (s *Segment) lastEntryPos(n int64) int64 {
	var e [EntrySize]byte
	if _, err := s.idx.ReadAt(e[:], (n-1)*EntrySize); err != nil {
		return -1
	}
	return int64(binary.LittleEndian.Uint32(e[4:]))
}

func (s *Segment) headerAt(pos int64) (record.Header, error) {
	var b [record.HeaderSize]byte
	if pos < 0 {
		return record.Header{}, ErrOffset
	}
	if _, err := s.log.ReadAt(b[:], pos); err != nil {
		return record.Header{}, err
	}
	return record.ParseHeader(b[:])
}

// indexConsistent is the cheap check of an index against its log: the
// file holds exactly n entries, the first is (0, 0), and the last points at
// a valid header whose batch ends exactly at the log's end.
func (s *Segment) indexConsistent(n, logSize int64) bool {
	idxSize, err := s.idx.Size()
	if err != nil || idxSize != n*EntrySize {
		return false
	}
	if n == 0 {
		return logSize == 0
	}
	var e [EntrySize]byte
	if _, err := s.idx.ReadAt(e[:], 0); err != nil || binary.LittleEndian.Uint64(e[:8]) != 0 {
		return false
	}
	if _, err := s.idx.ReadAt(e[:], (n-1)*EntrySize); err != nil {
		return false
	}
	rel, pos := binary.LittleEndian.Uint32(e[:]), int64(binary.LittleEndian.Uint32(e[4:]))
	h, err := s.headerAt(pos)
	return err == nil && h.BaseOffset == s.base+uint64(rel) && pos+int64(h.Size()) == logSize
}

// skipDamage continues an index rebuild past damage. Each damaged region
// gets one index entry (so that reads of its offsets fail verification and
// name them) and scanning resumes at the next valid batch whose offset
// continues the log. Damage with no such batch after it ends the scan.
func (s *Segment) skipDamage(data []byte, sc *record.Scanner, res scanResult, size int64) (scanResult, int64) {
	for {
		p := int64(sc.Pos())
		if p < size {
			p = size // a wrong-offset batch: the damage starts where it does
		}
		from := int(p) + 1
		if h, err := record.ParseHeader(data[p:]); err == nil && h.BaseOffset == res.next && int64(h.Size()) <= int64(len(data))-p {
			// The damaged batch's header is intact, so it says where the
			// batch ends: nothing inside it (a message may look like a
			// batch) is taken for data after the damage.
			from = int(p) + h.Size()
		}
		q := record.FindValid(data, from)
		for q >= 0 {
			if h, err := record.ParseHeader(data[q:]); err == nil && h.BaseOffset > res.next && s.inSpan(&h) {
				break
			}
			q = record.FindValid(data, q+1)
		}
		if q < 0 {
			return res, size
		}
		h, _ := record.ParseHeader(data[q:])
		s.idxBuf = putEntry(s.idxBuf, uint32(res.next-s.base), uint32(p), res.lastTime)
		res.entries++
		res.next = h.BaseOffset
		sc.Reset(data, q)
		more, err := s.scanInto(sc, -1, h.BaseOffset)
		res.entries += more.entries
		if more.entries > 0 {
			res.next, res.lastTime, res.end = more.next, more.lastTime, more.end
		}
		size = max(res.end, int64(q))
		if err == nil {
			return res, size
		}
	}
}

// laterWrite reports whether a valid batch continuing the offsets past
// next, after the damage at p, cannot belong to the write that held the
// damaged batch: it ends more than MaxWriteBytes past p, or its append
// time differs from that of another such batch or of the damaged batch
// (when its header is intact). All batches of one write share one time.
func (s *Segment) laterWrite(data []byte, p int64, next uint64) bool {
	from := int(p) + 1
	var t int64
	haveT := false
	if h, err := record.ParseHeader(data[p:]); err == nil && h.BaseOffset == next && int64(h.Size()) <= int64(len(data))-p {
		from = int(p) + h.Size()
		t, haveT = h.AppendTime, true
	}
	for q := record.FindValid(data, from); q >= 0; q = record.FindValid(data, q+1) {
		h, err := record.ParseHeader(data[q:])
		if err != nil || h.BaseOffset <= next || !s.inSpan(&h) {
			continue
		}
		if s.opts.MaxWriteBytes > 0 && int64(q+h.Size())-p > s.opts.MaxWriteBytes {
			return true
		}
		if haveT && h.AppendTime != t {
			return true
		}
		t, haveT = h.AppendTime, true
	}
	return false
}

// inSpan reports whether the batch h describes lies within the segment's
// offset span (MaxOffsetSpan): its relative offsets fit the index.
func (s *Segment) inSpan(h *record.Header) bool {
	return h.BaseOffset >= s.base && h.NextOffset()-s.base <= MaxOffsetSpan
}
