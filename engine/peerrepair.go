package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/haraqa/haraqa/segment"
)

// Repair of a sealed segment from outside the engine: when a segment is
// damaged on every mirror (one volume, or all copies bad), the engine
// reports it to the damage handler, and the handler (package cluster:
// another replica of the topic holds the same batches byte for byte)
// calls RepairSegment with a way to fetch the damaged offsets.

// SetDamageHandler sets f to be told, on a goroutine of its own, of a
// sealed segment of topic (its base offset) that failed verification on
// every mirror: found by a read or by the scrubber. nil removes it.
func (e *Engine) SetDamageHandler(f func(topic string, base uint64)) {
	if f == nil {
		e.onDamage.Store(nil)
		return
	}
	e.onDamage.Store(&f)
}

func (e *Engine) reportDamage(t *Topic, base uint64) {
	if f := e.onDamage.Load(); f != nil {
		go (*f)(t.name, base)
	}
}

// FetchFunc hands fn, in order, the stored batches of offsets [from, to):
// each with the base offset and append time it has in the topic.
type FetchFunc func(ctx context.Context, from, to uint64, fn func(batch []byte) error) error

// RepairSegment rewrites, in every healthy mirror's copy of topic's
// segment base that fails verification, the damaged batches in place with
// the batches fetch returns for their offsets, syncs the file, and checks
// the whole segment (a sealed one against its seal) again. The active
// segment is repaired the same way, in its committed part, while appends
// go on after it; a sealed copy whose log still matches its seal has only
// its index damaged, which is rebuilt from the log (nothing is fetched). It returns how many copies it
// repaired; a copy that still fails (fetch gave other bytes, or its index
// is damaged so the batches cannot be located) is an ErrCorrupt error.
func (e *Engine) RepairSegment(ctx context.Context, topic string, base uint64, fetch FetchFunc) (int, error) {
	t, err := e.topic(topic)
	if err != nil {
		return 0, err
	}
	repaired := 0
	for _, m := range t.view.Load().mirrors {
		if !m.vol.healthy() {
			continue
		}
		s := m.find(base)
		if s == nil || s.Base() != base || !s.Acquire() {
			continue
		}
		if derr := s.Damaged(); derr != nil {
			// Damage Open found in an active segment: the segment refuses
			// writes and the topic is read-only; not repaired in place.
			s.Release()
			return repaired, fmt.Errorf("engine: topic %q segment %d on %s: damaged since it was opened: %w", topic, base, m.vol.dir, derr)
		}
		ok, err := e.repairCopy(ctx, s, fetch)
		s.Release()
		if errors.Is(err, errIndexOnly) {
			// The log is intact: the writer rebuilds the index from it
			// (reindex.go); nothing is fetched.
			_, err = t.submitCtl(ctx, &writerReq{op: opRepair, vol: m.vol, base: base})
			ok = err == nil
		}
		if err != nil {
			return repaired, fmt.Errorf("engine: topic %q segment %d on %s: %w", topic, base, m.vol.dir, err)
		}
		if ok {
			repaired++
			e.opts.Logger.Warn("engine: repaired segment from outside", "topic", topic, "volume", m.vol.dir, "segment", base)
		}
	}
	return repaired, nil
}

// errIndexOnly: a copy's log matches its seal; its index is damaged.
var errIndexOnly = errors.New("engine: only the index is damaged")

// repairCopy repairs one pinned copy; false: it was not damaged.
func (e *Engine) repairCopy(ctx context.Context, s *segment.Segment, fetch FetchFunc) (bool, error) {
	if err := s.Verify(); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, segment.ErrCorrupt) {
		return false, err
	}
	if s.Sealed() && segment.LogMatchesSeal(e.fs, s.Dir(), s.Base()) == nil {
		return false, errIndexOnly
	}
	bad, err := badRuns(s)
	if err != nil {
		return false, fmt.Errorf("%w: cannot locate the damaged batches: %w", ErrCorrupt, err)
	}
	f, err := e.fs.Open(filepath.Join(s.Dir(), segment.LogName(s.Base())))
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, r := range bad {
		pos := r.Pos
		err := fetch(ctx, r.First, r.Next, func(b []byte) error {
			if pos+int64(len(b)) > r.End {
				return fmt.Errorf("%w: fetched batches of [%d, %d) pass its %d bytes", ErrCorrupt, r.First, r.Next, r.End-r.Pos)
			}
			if _, err := f.WriteAt([][]byte{b}, pos); err != nil {
				return err
			}
			pos += int64(len(b))
			return nil
		})
		if err != nil {
			return false, err
		}
		if pos != r.End {
			return false, fmt.Errorf("%w: fetched batches of [%d, %d) fill %d of its %d bytes", ErrCorrupt, r.First, r.Next, pos-r.Pos, r.End-r.Pos)
		}
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	if err := s.Verify(); err != nil {
		return false, fmt.Errorf("%w: still damaged after the repair: %w", ErrCorrupt, err)
	}
	return true, nil
}

// badRuns returns the runs of consecutive batches of s that fail their
// checks, located by the index.
func badRuns(s *segment.Segment) ([]segment.Range, error) {
	var out []segment.Range
	for off := s.Base(); off < s.Next(); {
		r, err := s.Find(off, 1, 0)
		if err != nil {
			return nil, err
		}
		if r.Next <= off {
			return nil, fmt.Errorf("index entry at %d does not advance", off)
		}
		if _, verr := s.VerifyRange(r); verr != nil {
			if n := len(out); n > 0 && out[n-1].Next == r.First && out[n-1].End == r.Pos {
				out[n-1].End, out[n-1].Next = r.End, r.Next
			} else {
				out = append(out, r)
			}
		}
		off = r.Next
	}
	return out, nil
}
