package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Topic is one append-only log: a list of segments, mirrored on every
// healthy volume, the newest of which (the active one) takes appends from
// the topic's single writer goroutine.
type Topic struct {
	e    *Engine
	name string
	dir  string // the topic's directory on the first volume

	// mu serialises changes of the view (the writer's roll, retention,
	// truncation, repair, fencing, deletion). Readers never take it: they
	// load the view and pin what they read.
	mu   sync.Mutex
	view atomic.Pointer[view]

	// end is the offset after the last acknowledged-visible message.
	// Invariant: every message below end is committed in a segment of every
	// mirror (and, under FsyncAlways, synced) before end moves past it.
	end atomic.Uint64
	// synced is an offset below which every message is known synced on
	// every mirror (the checkpoint records it).
	synced atomic.Uint64
	// changed is closed and replaced when end moves while waiters > 0.
	changed atomic.Pointer[chan struct{}]
	waiters atomic.Int32

	// readOnly holds the reason the topic accepts no writes, if any.
	readOnly atomic.Pointer[error]
	deleted  atomic.Bool

	reqs chan *writerReq
	quit chan struct{}
	done chan struct{}
	w    writer // owned by the writer goroutine

	traffic traffic
}

// traffic counts what this process appended to and read from a topic, for
// metrics (TopicInfo). The writer adds to the appended counts once per
// group; reads add to the read counts once per Read. Each pair has a cache
// line of its own, so that neither slows the loads of end.
type traffic struct {
	_             [64]byte
	appendedMsgs  atomic.Int64
	appendedBytes atomic.Int64
	_             [64]byte
	readMsgs      atomic.Int64
	readBytes     atomic.Int64
	_             [64]byte
}

func topicDir(v *Volume, name string) string { return v.path(topicsDir, name) }

func newTopic(e *Engine, name string) *Topic {
	t := &Topic{e: e, name: name, dir: topicDir(e.vols[0], name),
		reqs: make(chan *writerReq, e.opts.QueueLen), quit: make(chan struct{}), done: make(chan struct{})}
	ch := make(chan struct{})
	t.changed.Store(&ch)
	return t
}

// createTopic makes an empty topic on every healthy volume.
func createTopic(e *Engine, name string) (*Topic, error) {
	t := newTopic(e, name)
	vols := e.healthyVolumes()
	if len(vols) < e.opts.MinVolumes {
		return nil, fmt.Errorf("%w: create topic %q: %d healthy volumes, %d needed", ErrStorage, name, len(vols), e.opts.MinVolumes)
	}
	v := &view{}
	var made []*Volume // volumes where this call made (or found empty) the directory
	fail := func(err error) (*Topic, error) {
		// Leave nothing: files left would block the name ("has files")
		// and bring back at the next start a topic whose create failed.
		for _, m := range v.mirrors {
			for _, s := range m.segs {
				s.Remove()
			}
		}
		for _, vol := range made {
			if rerr := removeTopicDir(e.fs, vol, name); rerr != nil {
				e.opts.Logger.Warn("engine: failed create left files", "topic", name, "volume", vol.dir, "err", rerr)
			}
		}
		switch {
		case isResource(err):
			return nil, e.resourceError(fmt.Sprintf("create topic %q", name), err)
		case !errors.Is(err, ErrTopicExists):
			// A file-system failure: retriable, like a failed write.
			err = fmt.Errorf("%w: %w", ErrStorage, err)
		}
		return nil, fmt.Errorf("engine: create topic %q: %w", name, err)
	}
	for _, vol := range vols {
		dir := topicDir(vol, name)
		if names, err := e.fs.List(dir); err == nil && len(names) > 0 {
			// Files of a topic left offline (or not fully deleted): never mix
			// a new topic's segments with them.
			return fail(fmt.Errorf("%w: %q has files on %s", ErrTopicExists, name, vol.dir))
		}
		// Never MkdirAll: a vanished volume root must not be recreated.
		if err := e.fs.Mkdir(dir); err != nil {
			return fail(err)
		}
		made = append(made, vol)
		done := e.admitNew()
		s, err := segment.Create(e.fs, dir, 0, e.opts.segmentOptions())
		done()
		if isResource(err) {
			e.relieve(true) // let other topics' files go, and once more
			s, err = segment.Create(e.fs, dir, 0, e.opts.segmentOptions())
		}
		if err != nil {
			return fail(err)
		}
		v.mirrors = append(v.mirrors, &mirror{vol: vol, dir: dir, segs: []*segment.Segment{s}})
		if err := e.fs.SyncDir(vol.path(topicsDir)); err != nil {
			return fail(err)
		}
	}
	t.view.Store(v)
	t.start()
	return t, nil
}

// openTopic recovers a topic from every volume that has it and reconciles
// the copies (see reconcile). Damage that no copy can repair leaves the
// topic read-only; everything not damaged stays readable.
func openTopic(e *Engine, name string, clean []bool, synced uint64) (*Topic, error) {
	t := newTopic(e, name)
	var mirrors []*foundMirror
	var full error
	for i, vol := range e.vols {
		if !vol.healthy() {
			continue
		}
		c, err := openFoundMirror(e, vol, name, clean[i], false, synced)
		if err != nil && diskFull(err) && e.lastInService(vol) {
			// Recovery writes (an index rebuilt, a seal): with no space
			// on the last volume, this topic waits, not the others.
			full = err
			continue
		}
		if err != nil {
			e.fenceVolume(vol, err)
			continue
		}
		mirrors = append(mirrors, c)
	}
	if len(mirrors) == 0 && full != nil {
		return nil, fmt.Errorf("%w: topic %q: no space to recover it: %w", ErrStorage, name, full)
	}
	v, damage, err := t.reconcile(mirrors)
	if err != nil {
		return nil, err
	}
	if damage != nil {
		e.stats.corruptions.Add(1)
		e.opts.Logger.Error("engine: topic damaged on every copy; read-only", "topic", name, "err", damage)
		t.setReadOnly(fmt.Errorf("%w: %w", ErrReadOnly, damage))
	}
	t.view.Store(v)
	t.end.Store(v.reader().active().Next())
	sealedNext := uint64(0)
	for _, s := range v.reader().segs {
		if s.Sealed() {
			sealedNext = s.Next()
		}
	}
	// Never below what the checkpoint recorded, even when the topic now
	// ends lower (damage on every copy): lowering it would let the next
	// open cut that acknowledged data as a torn tail.
	t.synced.Store(max(synced, sealedNext))
	t.start()
	return t, nil
}

// foundMirror is what one volume holds of a topic at open.
type foundMirror struct {
	vol  *Volume
	dir  string
	segs []foundSeg
}

type foundSeg struct {
	base uint64
	seg  *segment.Segment // nil when the segment could not be (or was not) opened
	err  error            // damage found by Open
	// short: the damage is that the copy ends in zeros alone short of the
	// synced offset (segment.Report.ShortZeros): a copy left behind on a
	// volume fenced with zeros written ahead, unless no other copy holds
	// more (reconcile decides).
	short bool
}

// openFoundMirror opens one volume's segments of a topic: stray temporary files
// are removed, every segment is opened (the newest with a torn-tail check)
// and damage is recorded per segment. An error is an I/O failure of the
// volume itself.
//
// sealedOnly is for a volume rejoining a running engine: readers may still
// map the segments it held before it was fenced, and opening an unsealed
// segment may rewrite its index in place. Unsealed segments are then left
// unopened (seg and err nil), so that they are replaced by a copy
// (temporary file, rename), never changed under a mapping.
func openFoundMirror(e *Engine, vol *Volume, name string, clean, sealedOnly bool, synced uint64) (*foundMirror, error) {
	c := &foundMirror{vol: vol, dir: topicDir(vol, name)}
	entries, err := e.fs.List(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil // the volume lacks the topic: reconcile copies it
	}
	if err != nil {
		return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
	}
	if slices.Contains(entries, deletingName) {
		// The files of a deleted topic of the same name, left on a volume
		// fenced mid-delete: finish that delete before anything is copied
		// in, or the marker would outlive it and delete the new topic.
		if err := removeTopicDir(e.fs, vol, name); err != nil {
			return nil, fmt.Errorf("engine: finish deleting topic %q on %s: %w", name, vol.dir, err)
		}
		e.opts.Logger.Info("engine: finished deleting topic", "topic", name, "volume", vol.dir)
		return c, nil
	}
	var bases []uint64
	for _, ent := range entries {
		switch {
		case strings.HasSuffix(ent, ".tmp"):
			if err := e.fs.Remove(filepath.Join(c.dir, ent)); err != nil {
				return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
			}
		case strings.HasSuffix(ent, ".log"):
			b, err := strconv.ParseUint(strings.TrimSuffix(ent, ".log"), 10, 64)
			if err != nil || segment.LogName(b) != ent {
				e.opts.Logger.Warn("engine: ignoring unknown file", "topic", name, "file", ent)
				continue
			}
			bases = append(bases, b)
		}
	}
	for i, b := range bases {
		if sealedOnly {
			if _, err := segment.ReadSeal(e.fs, c.dir, b); err != nil {
				c.segs = append(c.segs, foundSeg{base: b})
				continue
			}
		}
		sopts := e.opts.segmentOptions()
		sopts.Synced = synced
		// The previous run's policy is not recorded: the current one is
		// assumed. Guessing always wrongly reports corruption (read-only),
		// never cuts acknowledged data.
		sopts.SyncedWrites = e.opts.Fsync == FsyncAlways
		sopts.MaxWriteBytes = maxGroupBytes + int64(e.opts.MaxBatchBytes)
		s, rep, err := segment.Open(e.fs, c.dir, b, sopts, clean, i == len(bases)-1)
		if err != nil && !errors.Is(err, segment.ErrCorrupt) {
			for _, cs := range c.segs {
				if cs.seg != nil {
					cs.seg.Retire()
				}
			}
			return nil, fmt.Errorf("engine: open topic %q: %w", name, err)
		}
		if rep.TornBytes > 0 {
			e.stats.tornBytes.Add(rep.TornBytes)
			e.opts.Logger.Warn("engine: cut torn tail", "topic", name, "volume", vol.dir, "segment", b, "bytes", rep.TornBytes)
		}
		if rep.ZeroBytes > 0 { // zeros written ahead under fsync=always, or a write that never reached the disk
			e.opts.Logger.Info("engine: cut zeros after the log", "topic", name, "volume", vol.dir, "segment", b, "bytes", rep.ZeroBytes)
		}
		if rep.IndexRebuilt {
			e.opts.Logger.Info("engine: rebuilt index", "topic", name, "volume", vol.dir, "segment", b)
		}
		short := err != nil && s != nil && rep.ShortZeros // a copy ending in zeros short of the synced offset: see reportShort
		if err != nil && !short {
			e.stats.corruptions.Add(1)
			e.opts.Logger.Error("engine: damaged segment", "topic", name, "volume", vol.dir, "segment", b, "err", err)
		}
		c.segs = append(c.segs, foundSeg{base: b, seg: s, err: err, short: short})
	}
	return c, nil
}

func closeAll(segs []*segment.Segment) {
	for _, s := range segs {
		s.Release()
	}
}

// segments returns the segments of the mirror reads come from.
func (t *Topic) segments() []*segment.Segment { return t.view.Load().reader().segs }

func (t *Topic) setReadOnly(err error) { t.readOnly.Store(&err) }

func (t *Topic) readOnlyErr() error {
	if p := t.readOnly.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *Topic) start() {
	t.w.init(t)
	go t.w.run()
}

// stopWriter stops the writer goroutine after it finished what it holds;
// queued appends fail with err.
func (t *Topic) stopWriter() {
	select {
	case <-t.quit:
	default:
		close(t.quit)
	}
	<-t.done
}

// close stops the writer and closes the segments for a clean shutdown.
// The mirrors of volumes out of service (fenced while the topic was idle)
// are let go without a sync: their errors are no part of the shutdown.
func (t *Topic) close() error {
	t.stopWriter()
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, m := range t.view.Load().mirrors {
		if !m.vol.healthy() {
			for _, s := range m.segs {
				s.Retire()
			}
			continue
		}
		for _, s := range m.segs {
			if err := s.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.vol.dir, err))
			}
		}
	}
	t.wake()
	return errors.Join(errs...)
}

// remove stops the writer and deletes every file of the topic. A marker
// written (and synced) first makes the deletion whole across a crash: the
// next open finishes it rather than open the segments left.
func (t *Topic) remove() error {
	t.deleted.Store(true)
	t.stopWriter()
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, m := range t.view.Load().mirrors {
		if err := vfs.WriteFileAtomic(t.e.fs, filepath.Join(m.dir, deletingName), nil); err != nil && m.vol.healthy() {
			errs = append(errs, err)
		}
	}
	for _, m := range t.view.Load().mirrors {
		for _, s := range m.segs {
			if err := s.Remove(); err != nil && m.vol.healthy() {
				errs = append(errs, err)
			}
		}
	}
	for _, vol := range t.e.vols {
		if err := removeTopicDir(t.e.fs, vol, t.name); err != nil && vol.healthy() {
			errs = append(errs, err)
		}
	}
	t.wake()
	return errors.Join(errs...)
}

// mkdirDurable makes dir (never its parents) if it is missing, and syncs
// its parent so that the new entry survives a power loss: files synced in
// a directory whose own entry is not are lost with it.
func mkdirDurable(fs vfs.FS, dir string) error {
	if _, err := fs.List(dir); err == nil {
		return nil
	}
	if err := fs.Mkdir(dir); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(dir))
}

// mkdirAllDurable makes dir and any missing parents, syncing the parent of
// each directory it made.
func mkdirAllDurable(fs vfs.FS, dir string) error {
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fs.List(d); err == nil || d == filepath.Dir(d) {
			break
		}
		made = append(made, d)
	}
	if err := fs.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := fs.SyncDir(filepath.Dir(made[i])); err != nil {
			return err
		}
	}
	return nil
}

// removeTopicDir deletes a topic's directory on one volume.
func removeTopicDir(fs vfs.FS, vol *Volume, name string) error {
	dir := topicDir(vol, name)
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, fs.Remove(filepath.Join(dir, n)))
	}
	errs = append(errs, fs.Remove(dir), fs.SyncDir(vol.path(topicsDir)))
	return errors.Join(errs...)
}

// wake releases every waiter so it rechecks the topic's state.
func (t *Topic) wake() {
	ch := make(chan struct{})
	old := t.changed.Swap(&ch)
	close(*old)
}

// publish moves end and wakes waiters, if any.
func (t *Topic) publish(end uint64) {
	t.end.Store(end)
	if t.waiters.Load() > 0 {
		t.wake()
	}
}
