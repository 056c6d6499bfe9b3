package segment

import (
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/vfs"
)

// LogMatchesSeal reports (nil) whether the log file of the sealed segment
// base in dir still has the length and the whole-file hash its seal
// records: then its bytes are those it was sealed with, and a failed check
// of the segment can only be its index's. Otherwise it returns an error
// matching ErrCorrupt (or the I/O error).
func LogMatchesSeal(fs vfs.FS, dir string, base uint64) error {
	seal, err := ReadSeal(fs, dir, base)
	if err != nil {
		return err
	}
	f, err := fs.Open(joinPath(dir, LogName(base)))
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	if size != seal.LogSize {
		return &CorruptError{File: joinPath(dir, LogName(base)), Pos: min(size, seal.LogSize), Offset: base,
			Err: fmt.Errorf("sealed log is %d bytes, seal says %d", size, seal.LogSize)}
	}
	h := xxhash.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	if h.Sum64() != seal.LogHash {
		return &CorruptError{File: joinPath(dir, LogName(base)), Pos: 0, Offset: base,
			Err: fmt.Errorf("sealed log does not match its seal")}
	}
	return nil
}

// Reindex rebuilds the index of the sealed segment base in dir from its
// log, which must match its seal (LogMatchesSeal), and opens the segment
// anew: for a segment whose log is intact and whose index is damaged. An
// empty index file is renamed over the damaged one and Open rebuilds it
// by a scan checked against the seal (and syncs it); a crash in between
// leaves an empty index, which the next Open rebuilds the same way. A
// segment object still open on the old index keeps reading its mapping
// until it is let go.
func Reindex(fs vfs.FS, dir string, base uint64, opts Options) (*Segment, error) {
	if err := LogMatchesSeal(fs, dir, base); err != nil {
		return nil, err
	}
	// Open rebuilds an index it finds inconsistent with the seal: an
	// empty one is. It scans the log and checks it against the seal again.
	tmp := joinPath(dir, IndexName(base)+".tmp")
	f, err := fs.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("segment: reindex %d: %w", base, err)
	}
	f.Close()
	if err := fs.Rename(tmp, joinPath(dir, IndexName(base))); err != nil {
		fs.Remove(tmp)
		return nil, fmt.Errorf("segment: reindex %d: %w", base, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("segment: reindex %d: %w", base, err)
	}
	s, _, err := Open(fs, dir, base, opts, false, false)
	if err != nil {
		if s != nil {
			s.Retire()
		}
		return nil, fmt.Errorf("segment: reindex %d: %w", base, err)
	}
	return s, nil
}
