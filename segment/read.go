package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// Range is a run of whole batches in one segment's log: bytes [Pos, End)
// hold the messages with offsets [First, Next).
type Range struct {
	Pos, End    int64
	First, Next uint64
}

// Len returns the range's length in bytes.
func (r Range) Len() int64 { return r.End - r.Pos }

// batchEnd returns the end position and next offset of committed batch i of
// n, from the following index entry or, for the last one, its header.
func (s *Segment) batchEnd(i, n int64) (int64, uint64, error) {
	if i+1 < n {
		rel, pos, _ := s.entry(i + 1)
		return pos, s.base + uint64(rel), nil
	}
	_, pos, _ := s.entry(i)
	size := s.size.Load()
	if pos+record.HeaderSize > size {
		return 0, 0, s.corruptIndex(pos, "last index entry past the log end")
	}
	h, err := record.ParseHeader(s.logMap[pos:size])
	if err != nil {
		return 0, 0, &CorruptError{File: s.path(LogName(s.base)), Pos: pos, Offset: s.base, Err: err}
	}
	return pos + int64(h.Size()), h.NextOffset(), nil
}

func (s *Segment) corruptIndex(pos int64, what string) error {
	return &CorruptError{File: s.path(IndexName(s.base)), Pos: pos, Offset: s.base, Err: fmt.Errorf("%s", what)}
}

// Find returns the run of whole batches that starts with the batch holding
// offset and ends once it covers limit messages from offset or before it
// would pass maxBytes; it holds at least one batch. The caller holds a pin.
func (s *Segment) Find(offset, limit uint64, maxBytes int64) (_ Range, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err)
	if err := s.load(); err != nil {
		return Range{}, err
	}
	n := s.entries.Load() // publication point: see Commit
	if n == 0 || offset < s.base || offset-s.base > 1<<32-1 {
		return Range{}, fmt.Errorf("%w: %d not in segment %d", ErrOffset, offset, s.base)
	}
	i := s.search(uint32(offset-s.base), n)
	if i < 0 {
		return Range{}, s.corruptIndex(0, "first index entry is not offset 0")
	}
	rel, pos, _ := s.entry(i)
	end, next, err := s.batchEnd(i, n)
	if err != nil {
		return Range{}, err
	}
	if offset >= next {
		return Range{}, fmt.Errorf("%w: %d not in segment %d", ErrOffset, offset, s.base)
	}
	want := offset + limit
	if want < offset {
		want = ^uint64(0)
	}
	for j := i + 1; j < n && next < want; j++ {
		e, nx, err := s.batchEnd(j, n)
		if err != nil {
			return Range{}, err
		}
		if e-pos > maxBytes {
			break
		}
		end, next = e, nx
	}
	if end > s.size.Load() || end <= pos {
		return Range{}, s.corruptIndex(pos, "index entry outside the log")
	}
	return Range{Pos: pos, End: end, First: s.base + uint64(rel), Next: next}, nil
}

// Bytes returns the mapped bytes of r. They stay valid while the caller
// holds its pin, and must not be written.
func (s *Segment) Bytes(r Range) []byte { return s.logMap[r.Pos:r.End:r.End] }

// File returns the operating-system file of the log for sendfile, or nil
// when the segment lives on a fake file system. Valid while pinned.
func (s *Segment) File() *os.File {
	if err := s.load(); err != nil {
		return nil
	}
	return s.log.OS()
}

// FindTime returns the offset of the first batch appended at or after t
// (unix nanoseconds), and false when every batch is older.
func (s *Segment) FindTime(t int64) (_ uint64, _ bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err)
	if err := s.load(); err != nil {
		return 0, false, err
	}
	n := s.entries.Load()
	lo, hi := int64(0), n
	for lo < hi {
		mid := int64(uint64(lo+hi) >> 1)
		if _, _, et := s.entry(mid); et < t {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == n {
		return 0, false, nil
	}
	rel, _, _ := s.entry(lo)
	return s.base + uint64(rel), true, nil
}

// Verify re-reads every committed batch and checks its hashes, the offsets'
// continuity, the index entries, and for a sealed segment the whole-file
// hash against its seal. The scrubber and tests use it; the caller holds a
// pin, and it may run while the writer commits.
func (s *Segment) Verify() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err)
	if err := s.load(); err != nil {
		return err
	}
	// Sealed first: a segment seen sealed has its final entries; one seen
	// unsealed is checked without its seal even if it seals meanwhile.
	seal, sealed := s.SealInfo()
	n := s.entries.Load() // publication point, as in Find; size is newer
	sc := record.NewScanner(s.logMap[:s.size.Load()])
	return s.verifyLog(&sc, n, seal, sealed)
}

// VerifyRange checks every batch of r, a range Find returned: hashes, and
// that the batches hold exactly the offsets the index promised, densely (an
// index entry pointing at the wrong, valid, batch must not make a reader
// skip or repeat offsets). On damage it returns, with the error, the part
// of r before the first bad batch (empty when that is the first), which
// can be served. A zeroed page reads as an incomplete batch: inside
// committed bytes that is corruption like a bad checksum, so every error
// matches ErrCorrupt. The caller holds a pin.
func (s *Segment) VerifyRange(r Range) (good Range, err error) {
	good = Range{Pos: r.Pos, End: r.Pos, First: r.First, Next: r.First}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err)
	if r.Pos < 0 || r.End > s.size.Load() || r.End < r.Pos {
		return good, s.corruptIndex(r.Pos, "range outside the log")
	}
	b := s.logMap[r.Pos:r.End:r.End]
	sc := record.NewScanner(b)
	prev := good
	for sc.Next() {
		h := sc.Header()
		if h.BaseOffset != good.Next {
			return good, &CorruptError{File: s.path(LogName(s.base)), Pos: r.Pos + int64(sc.Pos()), Offset: good.Next,
				Err: fmt.Errorf("batch at offset %d where the index expects %d", h.BaseOffset, good.Next)}
		}
		prev = good
		good.End, good.Next = r.Pos+int64(sc.End()), h.NextOffset()
	}
	if err := sc.Err(); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return good, &CorruptError{File: s.path(LogName(s.base)), Pos: r.Pos + int64(sc.Pos()), Offset: good.Next, Err: err}
	}
	if good.Next != r.Next {
		// The last batch disagrees with the index about where it ends.
		return prev, &CorruptError{File: s.path(LogName(s.base)), Pos: prev.End, Offset: prev.Next,
			Err: fmt.Errorf("batches end at offset %d where the index expects %d", good.Next, r.Next)}
	}
	return good, nil
}

func isNotExist(err error) bool { return os.IsNotExist(err) }

// LastBatches calls fn with the headers of the segment's last n committed
// batches, newest first, until fn returns false. It reads only headers (via
// the index), so recovering state from a log tail costs little; a segment
// not yet mapped is read through short-lived file reads and stays unmapped.
// Its entries come from the in-memory index when the segment has one (an
// unsealed segment's .idx file lacks them until it is written, see
// memindex.go), else from the .idx file. The caller holds a pin.
func (s *Segment) LastBatches(n int, fn func(h *record.Header) bool) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err)
	entries := s.entries.Load()
	size := s.size.Load()
	from := max(entries-int64(n), 0)
	if s.loaded.Load() {
		for i := entries - 1; i >= from; i-- {
			_, pos, _ := s.entry(i)
			if pos+record.HeaderSize > size {
				return s.corruptIndex(pos, "index entry past the log end")
			}
			h, err := record.ParseHeader(s.logMap[pos:size])
			if err == nil && !fn(&h) {
				return nil
			}
		}
		return nil
	}
	log, err := s.fs.Open(s.path(LogName(s.base)))
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	defer log.Close()
	// Loaded after the entry count (see Commit): it holds every entry read.
	mem := s.mem.Load()
	var idx vfs.File
	if mem == nil {
		if idx, err = s.fs.Open(s.path(IndexName(s.base))); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		defer idx.Close()
	}
	var e [EntrySize]byte
	var hb [record.HeaderSize]byte
	for i := entries - 1; i >= from; i-- {
		if mem != nil {
			copy(e[:], mem.b[i*EntrySize:])
		} else if _, err := idx.ReadAt(e[:], i*EntrySize); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		pos := int64(binary.LittleEndian.Uint32(e[4:]))
		if pos+record.HeaderSize > size {
			return s.corruptIndex(pos, "index entry past the log end")
		}
		if _, err := log.ReadAt(hb[:], pos); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		h, err := record.ParseHeader(hb[:])
		if err == nil && !fn(&h) {
			return nil
		}
	}
	return nil
}
