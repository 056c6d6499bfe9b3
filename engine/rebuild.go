package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Copies made by reconciliation and rebuilds, when a source turns out
// damaged. A source copy is verified while it is copied (segment.CopyTo);
// damage found there is the source's, never the destination's: that
// segment is taken from another mirror holding the same data if there is
// one, the damaged copy is reported and its repair queued, and if no
// mirror holds a good copy, a sealed segment is copied as it is (damage
// included) so that the rebuilt volume still mirrors the topic: every
// other segment is whole on it, and reads of the damaged range fail as
// corrupt on every mirror, as they did before.

// source is a copy of a segment on one volume that others can be made from.
type source struct {
	seg *segment.Segment
	vol *Volume
}

// badSource is a source copy found damaged while copied.
type badSource struct {
	vol  *Volume
	base uint64
}

// errNoGoodSource: no copy of a segment verifies and it could not be
// copied as it is (it is unsealed, or its files cannot be read).
var errNoGoodSource = errors.New("engine: no good copy of the segment to copy")

// sourceFault reports whether err, from copying src, is damage of src
// itself (found reading it), not a failure of the destination.
func sourceFault(err error, src *segment.Segment) bool {
	var ce *segment.CorruptError
	return errors.As(err, &ce) && filepath.Dir(ce.File) == filepath.Clean(src.Dir())
}

// copyFromSources copies a segment into dir from the first of srcs whose
// copy verifies (srcs hold the same data; the first is the preferred one).
// Damaged sources are reported and added to *bad. When none verifies, a
// sealed segment is copied as it is (copyAsIs).
func (t *Topic) copyFromSources(srcs []source, dir string, bad *[]badSource) (*segment.Segment, error) {
	for _, s := range srcs {
		fixed, err := t.copySegment(s.seg, dir)
		if err == nil || !sourceFault(err, s.seg) {
			return fixed, err
		}
		t.e.stats.corruptions.Add(1)
		t.e.opts.Logger.Error("engine: source segment damaged; copying it from another mirror if one holds a good copy",
			"topic", t.name, "volume", s.vol.dir, "segment", s.seg.Base(), "offsets", fmt.Sprintf("[%d, %d)", s.seg.Base(), s.seg.Next()), "err", err)
		*bad = append(*bad, badSource{vol: s.vol, base: s.seg.Base()})
	}
	src := srcs[0].seg
	if !src.Sealed() {
		return nil, errNoGoodSource
	}
	fixed, err := t.copyAsIs(src, dir)
	if err != nil {
		return nil, err
	}
	t.e.opts.Logger.Error("engine: no good copy of a damaged segment on any mirror; copied as it is, reads of its damaged range fail",
		"topic", t.name, "segment", src.Base(), "offsets", fmt.Sprintf("[%d, %d)", src.Base(), src.Next()), "from", src.Dir())
	return fixed, nil
}

// copyAsIs copies a sealed segment's files byte for byte into dir (read
// with pread, never through the mapping, so that an unreadable page fails
// the copy instead of the process) and opens the copy. A failure to read
// the source is errNoGoodSource; a failure to write is the destination's.
func (t *Topic) copyAsIs(src *segment.Segment, dir string) (*segment.Segment, error) {
	fs, b := t.e.fs, src.Base()
	if err := fs.Remove(filepath.Join(dir, segment.SealName(b))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, name := range []string{segment.IndexName(b), segment.LogName(b)} {
		if err := copyFile(fs, filepath.Join(src.Dir(), name), filepath.Join(dir, name), t.e.stopping); err != nil {
			return nil, err
		}
	}
	if err := fs.SyncDir(dir); err != nil {
		return nil, err
	}
	seal, err := fs.ReadFile(filepath.Join(src.Dir(), segment.SealName(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoGoodSource, err)
	}
	if err := vfs.WriteFileAtomic(fs, filepath.Join(dir, segment.SealName(b)), seal); err != nil {
		return nil, err
	}
	c, _, err := segment.Open(fs, dir, b, t.e.opts.segmentOptions(), false, false)
	if err != nil {
		if c != nil {
			c.Retire()
		}
		return nil, fmt.Errorf("%w: copy of segment %d as it is: %w", errNoGoodSource, b, err)
	}
	t.e.stats.repairs.Add(1)
	t.e.stats.bytesRepaired.Add(c.Size())
	return c, nil
}

// copyFile copies from into to through to+".tmp" (written, synced, renamed).
// Read errors wrap errNoGoodSource; it gives up between chunks once stop
// (if set) reports true.
func copyFile(fs vfs.FS, from, to string, stop func() bool) error {
	in, err := fs.Open(from)
	if err != nil {
		return fmt.Errorf("%w: %w", errNoGoodSource, err)
	}
	defer in.Close()
	size, err := in.Size()
	if err != nil {
		return fmt.Errorf("%w: %w", errNoGoodSource, err)
	}
	tmp := to + ".tmp"
	out, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	buf := make([]byte, min(size, 8<<20))
	var one [1][]byte
	for off := int64(0); off < size; {
		if stop != nil && stop() {
			out.Close()
			fs.Remove(tmp)
			return ErrClosed
		}
		n, err := in.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 {
			out.Close()
			fs.Remove(tmp)
			return fmt.Errorf("%w: reading %s at %d: %w", errNoGoodSource, from, off, cmpErr(err, errors.New("no bytes")))
		}
		one[0] = buf[:n]
		if _, err := out.WriteAt(one[:], off); err != nil {
			out.Close()
			fs.Remove(tmp)
			return err
		}
		off += int64(n)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		fs.Remove(tmp)
		return err
	}
	out.Close()
	return fs.Rename(tmp, to)
}

// repairBadSources repairs, on the writer goroutine, the source copies a
// rebuild found damaged, from mirrors that hold good ones; a segment no
// mirror holds a good copy of is reported with its range.
func (w *writer) repairBadSources(bad []badSource) {
	for _, b := range bad {
		if err := w.repairSegment(b.vol, b.base); err != nil {
			w.t.e.opts.Logger.Error("engine: damaged segment has no good copy on any mirror; its damaged range cannot be read",
				"topic", w.t.name, "volume", b.vol.dir, "segment", b.base, "err", err)
		}
	}
}

// queueRepairs has the topic's writer repair, first thing once it runs,
// the source copies that reconciliation at open found damaged. It runs
// before the writer starts, so the requests go ahead of any other.
func (t *Topic) queueRepairs(bad []badSource) {
	for _, b := range bad {
		r := &writerReq{op: opRepair, vol: b.vol, base: b.base, done: make(chan struct{}, 1)}
		if !t.trySend(r) { // more than the queue holds: they go in as it drains
			go func() {
				if err := t.send(context.Background(), r); err != nil {
					r.err = err
					r.done <- struct{}{}
				}
			}()
		}
		go func() {
			<-r.done
			if r.err != nil && !errors.Is(r.err, ErrClosed) {
				t.e.opts.Logger.Error("engine: damaged segment has no good copy on any mirror; its damaged range cannot be read",
					"topic", t.name, "volume", b.vol.dir, "segment", b.base, "err", r.err)
			}
		}()
	}
}
