package segment

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// Retire drops the owner's pin without touching the files: for a segment
// object whose files were replaced (repaired) or belong to a volume taken
// out of service. Readers holding pins finish as usual.
func (s *Segment) Retire() { s.dropOwnerPin() }

// Retired reports whether the segment's owner let go of it (Remove,
// Retire or Close): it is no longer part of its topic, though readers
// holding pins still read it.
func (s *Segment) Retired() bool { return s.ownerGone.Load() }

// Damaged returns the corruption Open found in the segment, or nil.
func (s *Segment) Damaged() error { return s.damaged }

// LogBytes returns the committed bytes of the log from its read-only
// mapping. The caller holds a pin; the bytes stay valid until Release.
func (s *Segment) LogBytes() ([]byte, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	return s.logMap[:s.size.Load():s.size.Load()], nil
}

// copyChunk bounds one write of CopyTo.
const copyChunk = 8 << 20

// CopyTo writes a verified copy of the segment into dir, replacing
// whatever files of the same base are there, and opens it. The source's
// committed batches are verified first (a damaged source is refused with
// ErrCorrupt). The copy goes to a temporary file that is synced and then
// renamed over the log; the old index is dropped (Open rebuilds it by a
// scan) and, for a sealed source, the seal is written after the rename. A
// crash at any point leaves either the old log or the new one, plus at
// worst a stray temporary file that the engine removes at the next open.
// The caller holds a pin on s. Once opts.Stop is closed, the copy gives up
// between chunks with ErrStopped (its temporary file removed).
func (s *Segment) CopyTo(fs vfs.FS, dir string, opts Options) (c *Segment, n int64, err error) {
	n, err = s.copyLog(fs, dir, opts.Stop)
	if err != nil {
		return nil, 0, err
	}
	sealed := s.sealed.Load()
	if sealed {
		if err := vfs.WriteFileAtomic(fs, joinPath(dir, SealName(s.base)), s.seal.encode()); err != nil {
			return nil, 0, fmt.Errorf("segment: copy %d: seal: %w", s.base, err)
		}
	}
	c, _, err = Open(fs, dir, s.base, opts, false, !sealed)
	if err != nil {
		if c != nil {
			c.Retire()
		}
		return nil, 0, fmt.Errorf("segment: copy %d: reopen: %w", s.base, err)
	}
	if c.Next() != s.Next() || c.Size() != n {
		c.Retire()
		return nil, 0, fmt.Errorf("%w: copy of segment %d ends at %d (%d bytes), source at %d (%d bytes)",
			ErrCorrupt, s.base, c.Next(), c.Size(), s.Next(), n)
	}
	// Open made the index anew: make its directory entry durable too, so
	// that the repaired segment is whole after a power loss.
	if err := fs.SyncDir(dir); err != nil {
		c.Retire()
		return nil, 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
	}
	return c, n, nil
}

// copyLog verifies the source's committed batches and writes them to
// <base>.log.tmp in dir, syncs it, removes the old seal and index and
// renames the copy over the log. It reads the source's mapping under the
// fault guard: a source cut under it fails the copy, not the process.
func (s *Segment) copyLog(fs vfs.FS, dir string, stop <-chan struct{}) (n int64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.onFault(&err)
	data, err := s.LogBytes()
	if err != nil {
		return 0, err
	}
	sc := record.NewScanner(data)
	if _, err := (&Segment{fs: s.fs, dir: s.dir, base: s.base}).scanInto(&sc, -1, s.base); err != nil {
		return 0, fmt.Errorf("segment: copy source %d: %w", s.base, err)
	}
	tmp := joinPath(dir, LogName(s.base)+".tmp")
	if err := fs.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	f, err := fs.Create(tmp)
	if err != nil {
		return 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
	}
	var one [1][]byte
	for off := 0; off < len(data); off += copyChunk {
		select {
		case <-stop: // a nil stop never fires
			f.Close()
			fs.Remove(tmp)
			return 0, fmt.Errorf("segment: copy %d: %w", s.base, ErrStopped)
		default:
		}
		one[0] = data[off:min(off+copyChunk, len(data))]
		if _, err := f.WriteAt(one[:], int64(off)); err != nil {
			f.Close()
			fs.Remove(tmp)
			return 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		fs.Remove(tmp)
		return 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
	}
	f.Close()
	for _, name := range []string{SealName(s.base), IndexName(s.base)} {
		if err := fs.Remove(joinPath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
		}
	}
	if err := fs.Rename(tmp, joinPath(dir, LogName(s.base))); err != nil {
		return 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return 0, fmt.Errorf("segment: copy %d: %w", s.base, err)
	}
	return int64(len(data)), nil
}

// SameAs reports whether two segments (of different volumes) hold the same
// committed data, cheaply: equal seals for sealed segments, equal length
// and next offset for open ones (whose batches were verified when scanned,
// and are verified on every read).
func (s *Segment) SameAs(o *Segment) bool {
	if s.base != o.base || s.Sealed() != o.Sealed() || s.damaged != nil || o.damaged != nil {
		return false
	}
	if s.Sealed() {
		return s.seal == o.seal
	}
	return s.Size() == o.Size() && s.Next() == o.Next()
}
