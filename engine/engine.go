package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// Names inside a volume directory.
const (
	topicsDir = "topics"
	cleanName = "CLEAN"
	// deletingName marks a topic directory whose deletion started: the
	// next open finishes it instead of opening what is left.
	deletingName = "DELETING"
	volumeName   = "VOLUME"
)

// Engine holds the topics of a broker, each mirrored on every volume.
//
// Concurrency: every method is safe for concurrent use. Lock order:
// Engine.mu, then Topic.mu, then Volume.mu. No lock is held across a
// network call.
type Engine struct {
	opts Options
	fs   vfs.FS
	dir  string    // the first volume's directory
	vols []*Volume // in the order given; reads prefer the last healthy one

	mu     sync.RWMutex
	topics map[string]*Topic // guarded by mu
	closed bool              // guarded by mu
	// deleting reserves the names of topics whose files DeleteTopic is
	// still removing; the channel closes when it is done. A name is in
	// at most one of topics and deleting. Guarded by mu.
	deleting map[string]chan struct{}

	// testHookCreateWaits, set by tests, runs when a CreateTopic waits
	// for a delete of its name.
	testHookCreateWaits func(name string)
	// creating holds the names being created, each closed when done
	// (guarded by mu).
	creating map[string]chan struct{}

	// gsets holds each topic's consumer groups (group_set.go), guarded
	// by gmu, which is taken before a groupSet's locks and never under
	// Engine.mu.
	gmu   sync.RWMutex
	gsets map[string]*groupSet
	// gserving: the topics whose replicated groups this node
	// coordinates (ReloadGroups), guarded by gmu.
	gserving map[string]bool

	stats    counters
	onDamage atomic.Pointer[func(topic string, base uint64)] // SetDamageHandler
	resource resourceEpisode
	ckptMu   sync.Mutex // serialises checkpoint writes (snapshot and write)
	open     openSet    // segments holding files open, for MaxOpenSegments
	press    pressure   // descriptors and mappings held, for MaxOpenFiles and MaxMappings
	checkMu  sync.Mutex // one CheckVolumes at a time
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Open opens (creating if needed) every volume, checks their identities,
// and recovers every topic found on any of them, reconciling the copies
// (see DESIGN.md, "Crash model and recovery"). A volume's clean-shutdown
// marker lets recovery trust the indexes of its newest segments; otherwise
// their logs are scanned.
func Open(opts Options) (*Engine, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	vols, fence, err := openVolumes(opts.FS, opts.Volumes, opts.InitVolumes)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, fs: opts.FS, dir: opts.Volumes[0], vols: vols, topics: map[string]*Topic{},
		deleting: map[string]chan struct{}{}, stop: make(chan struct{})}
	e.press.maxFiles, e.press.maxMaps = int64(e.opts.MaxOpenFiles), int64(e.opts.MaxMappings)
	e.press.metaSem = make(chan struct{}, 16)
	e.opts.usage = &e.press.usage
	e.opts.onLoad = func(s *segment.Segment) {
		e.open.add(s)
		if !s.Sealed() {
			e.press.track(s)
		}
	}
	clean := make([]bool, len(vols))
	names := map[string]bool{}
	var reasons []error
	for i, v := range vols {
		if fence[i] != nil {
			e.fenceVolume(v, fence[i])
			reasons = append(reasons, fence[i])
			continue
		}
		if clean[i], err = e.openVolume(v, names); err != nil {
			e.fenceVolume(v, fmt.Errorf("open: %w", err))
			reasons = append(reasons, err)
		}
	}
	if len(e.healthyVolumes()) == 0 {
		releaseLocks(vols)
		return nil, fmt.Errorf("%w: no volume could be opened: %w", ErrStorage, errors.Join(reasons...))
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	synced := e.readCheckpoints()
	for _, name := range sorted {
		t, err := openTopic(e, name, clean, synced[name])
		if err != nil && errors.Is(err, ErrCorrupt) {
			// Nothing of the topic is readable. One damaged topic must not
			// keep the others offline: leave it unopened, files untouched.
			e.opts.Logger.Error("engine: topic damaged; left offline", "topic", name, "err", err)
			continue
		}
		if err != nil && diskFull(err) {
			e.opts.Logger.Error("engine: no space to recover topic; left offline until space is freed and the broker restarted", "topic", name, "err", err)
			continue
		}
		if err != nil {
			e.closeTopics()
			releaseLocks(vols)
			return nil, err
		}
		e.topics[name] = t
	}
	if err := e.loadGroups(names); err != nil {
		e.closeTopics()
		releaseLocks(vols)
		return nil, err
	}
	e.wg.Add(4)
	go e.checkpointLoop()
	go e.every(e.opts.RetentionInterval, e.ApplyRetention)
	go e.every(e.opts.HealthInterval, e.CheckVolumes)
	go e.scrubLoop()
	return e, nil
}

// openVolume prepares one volume: its topics directory, its clean marker
// (read, then removed and the removal synced before anything is written),
// and the names of the topics it holds.
func (e *Engine) openVolume(v *Volume, names map[string]bool) (bool, error) {
	if err := mkdirDurable(e.fs, v.path(topicsDir)); err != nil {
		return false, err
	}
	if err := removeStaleTmp(e.fs, v.dir); err != nil {
		return false, err
	}
	clean := false
	if _, err := e.fs.ReadFile(v.path(cleanName)); err == nil {
		clean = true
		if err := e.fs.Remove(v.path(cleanName)); err != nil {
			return false, fmt.Errorf("remove clean marker: %w", err)
		}
		if err := e.fs.SyncDir(v.dir); err != nil {
			return false, err
		}
	}
	list, err := e.fs.List(v.path(topicsDir))
	if err != nil {
		return false, err
	}
	for _, name := range list {
		if ValidTopic(name) != nil && !validInternal(name) {
			e.opts.Logger.Warn("engine: ignoring entry that is not a topic", "dir", v.path(topicsDir), "name", name)
			continue
		}
		if _, err := e.fs.ReadFile(filepath.Join(topicDir(v, name), deletingName)); err == nil {
			// Deleted before a crash: finish it; never open what is left.
			if err := removeTopicDir(e.fs, v, name); err != nil {
				return false, fmt.Errorf("finish deleting topic %q: %w", name, err)
			}
			e.opts.Logger.Info("engine: finished deleting topic", "topic", name, "volume", v.dir)
			continue
		}
		names[name] = true
	}
	return clean, nil
}

// removeStaleTmp deletes the temporary files of atomic writes (VOLUME,
// SYNCED, CLEAN) that a crash or a full disk left in a volume's root.
func removeStaleTmp(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			if err := fs.Remove(filepath.Join(dir, n)); err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		return fs.SyncDir(dir)
	}
	return nil
}

func (e *Engine) isClosed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.closed
}

func (e *Engine) healthyVolumes() []*Volume {
	var out []*Volume
	for _, v := range e.vols {
		if v.healthy() {
			out = append(out, v)
		}
	}
	return out
}

// Volumes describes every volume and its state.
func (e *Engine) Volumes() []VolumeInfo {
	out := make([]VolumeInfo, len(e.vols))
	for i, v := range e.vols {
		out[i] = v.info()
	}
	return out
}

func (e *Engine) path(elem ...string) string {
	return filepath.Join(append([]string{e.dir}, elem...)...)
}

// Close waits for topic deletes in flight, stops every writer (appends in
// flight finish first), syncs and closes every segment, and writes the
// clean-shutdown marker on every healthy volume, unless a topic is damaged.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.closed = true
	close(e.stop)
	var deleting []chan struct{}
	for _, done := range e.deleting {
		deleting = append(deleting, done)
	}
	e.mu.Unlock()
	// No group state is queued from now on; a compaction under way ends
	// first, while the writers still run.
	e.gmu.Lock()
	for _, gs := range e.gsets {
		gs.close()
	}
	e.gmu.Unlock()
	// A delete in flight finishes first: the clean marker must not be
	// written while it still removes files.
	for _, done := range deleting {
		<-done
	}
	e.waitCreates()
	e.wg.Wait()
	damaged := false
	for _, t := range e.topics {
		damaged = damaged || t.readOnlyErr() != nil
	}
	err := e.closeTopics()
	if err == nil {
		// Every segment was synced by closeTopics.
		m := map[string]uint64{}
		for n, t := range e.topics {
			m[n] = max(t.end.Load(), t.synced.Load())
		}
		e.ckptMu.Lock()
		var full error
		full, err = e.writeCheckpoint(m)
		e.ckptMu.Unlock()
		if full != nil {
			// The previous checkpoint stays, a lower bound that is still
			// true; the clean marker below needs no data block.
			e.opts.Logger.Warn("engine: checkpoint not updated at close: disk full", "err", full)
		}
	}
	// The volumes stay locked until the last file is written.
	defer func() {
		e.checkMu.Lock()
		releaseLocks(e.vols)
		e.checkMu.Unlock()
	}()
	if damaged {
		// A damaged topic must be rescanned at the next open: no marker.
		e.opts.Logger.Warn("engine: closing with read-only topics; the next open will scan")
		return err
	}
	if err != nil {
		return err
	}
	for _, v := range e.healthyVolumes() {
		// Empty: only its existence counts, and an empty file can be made
		// on a disk with no free data block.
		if werr := vfs.WriteFileAtomic(e.fs, v.path(cleanName), nil); werr != nil {
			err = errors.Join(err, fmt.Errorf("engine: clean marker on %s: %w", v.dir, werr))
		}
	}
	return err
}

func (e *Engine) closeTopics() error {
	// Concurrently: each close syncs files, and syncs of different files
	// overlap (20,000 topics closed one by one took 31 s).
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for name, t := range e.topics {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := t.close(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("engine: close topic %q: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// topic returns the named topic. Internal topics (a topic's group-state
// log) are not reachable by name from outside: see anyTopic.
func (e *Engine) topic(name string) (*Topic, error) {
	if isInternal(name) {
		return nil, ValidTopic(name)
	}
	return e.anyTopic(name)
}

// anyTopic returns the named topic, internal ones included.
func (e *Engine) anyTopic(name string) (*Topic, error) {
	e.mu.RLock()
	t, ok := e.topics[name]
	closed := e.closed
	e.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if !ok {
		if err := ValidTopic(name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	return t, nil
}

// CreateTopic creates an empty topic. While a topic of the same name is
// being deleted, it waits until that topic's files are gone.
func (e *Engine) CreateTopic(name string) error {
	if err := ValidTopic(name); err != nil {
		return err
	}
	return e.createNamed(name)
}

// createNamed creates a topic whose name was checked (or an internal one).
func (e *Engine) createNamed(name string) error {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return ErrClosed
		}
		if _, ok := e.topics[name]; ok {
			e.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrTopicExists, name)
		}
		if done, ok := e.deleting[name]; ok {
			// A new topic's files must never be in the directory the delete
			// is emptying: it would remove them after they were acknowledged.
			e.mu.Unlock()
			if e.testHookCreateWaits != nil {
				e.testHookCreateWaits(name)
			}
			<-done
			continue
		}
		if ch, ok := e.creating[name]; ok {
			e.mu.Unlock()
			<-ch // the same name being created: it exists, or failed
			continue
		}
		ch := make(chan struct{})
		if e.creating == nil {
			e.creating = map[string]chan struct{}{}
		}
		e.creating[name] = ch
		e.mu.Unlock()
		// The files are made (and their directories synced) without the
		// engine's lock: topics are created concurrently, and appends to
		// other topics never wait for a create's syncs.
		t, err := createTopic(e, name)
		e.mu.Lock()
		closed := e.closed
		if err == nil && !closed {
			e.topics[name] = t
		}
		e.mu.Unlock()
		if err == nil && closed {
			err = errors.Join(ErrClosed, t.close())
		}
		e.mu.Lock()
		delete(e.creating, name) // Close waits until then
		e.mu.Unlock()
		close(ch)
		return err
	}
}

// waitCreates waits for the topic creates under way (Close, once closed
// is set, so that no create outlives it).
func (e *Engine) waitCreates() {
	for {
		e.mu.Lock()
		var ch chan struct{}
		for _, c := range e.creating {
			ch = c
			break
		}
		e.mu.Unlock()
		if ch == nil {
			return
		}
		<-ch
	}
}

// DeleteTopic deletes a topic and its files. Readers holding data of it
// finish their reads; appends in flight fail with ErrTopicNotFound. The
// name stays reserved (a CreateTopic of it waits) until the files are gone.
func (e *Engine) DeleteTopic(name string) error {
	if err := ValidTopic(name); err != nil {
		return err
	}
	// Its groups go with it: first out of reach, then (after the topic's
	// files, so that a crash between leaves state without a topic, which
	// the next open deletes, never a topic without its groups) their log.
	e.gmu.Lock()
	gs := e.gsets[name]
	delete(e.gsets, name)
	delete(e.gserving, name) // a topic made again under the name starts not coordinated
	e.gmu.Unlock()
	if gs != nil {
		gs.close()
	}
	err := e.deleteNamed(name)
	// Under gmu: a group set that a racing CreateGroup made for the topic
	// meanwhile goes too, and no state log of the deleted topic is
	// created after this (groupSet checks the topic's deleted flag under
	// gmu), so none is left behind for a topic of the same name.
	e.gmu.Lock()
	var stale *groupSet
	if g := e.gsets[name]; g != nil && g.t.deleted.Load() {
		stale = g
		delete(e.gsets, name)
	}
	if err == nil {
		if _, lerr := e.anyTopic(groupLogName(name)); lerr == nil {
			err = e.deleteNamed(groupLogName(name))
		}
	}
	e.gmu.Unlock()
	if stale != nil {
		stale.close()
	}
	return err
}

// deleteNamed deletes a topic whose name was checked (or an internal one).
func (e *Engine) deleteNamed(name string) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	t, ok := e.topics[name]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	delete(e.topics, name)
	done := make(chan struct{})
	e.deleting[name] = done
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.deleting, name)
		e.mu.Unlock()
		close(done)
	}()
	// Forget its synced offset before its files go: a topic recreated
	// under the name must not inherit it. ckptMu orders this write after
	// any checkpoint the loop had already taken with the topic in it.
	e.ckptMu.Lock()
	if err := e.WriteCheckpoint(); err != nil {
		e.opts.Logger.Warn("engine: checkpoint after delete", "topic", name, "err", err)
	}
	e.ckptMu.Unlock()
	return t.remove()
}

// Topics lists the topics whose names start with prefix, sorted.
func (e *Engine) Topics(prefix string) []string {
	e.mu.RLock()
	out := make([]string, 0, len(e.topics))
	for name := range e.topics {
		if strings.HasPrefix(name, prefix) && !isInternal(name) {
			out = append(out, name)
		}
	}
	e.mu.RUnlock()
	sort.Strings(out)
	return out
}

// TopicInfo describes a topic's state.
type TopicInfo struct {
	Name       string
	Start, End uint64 // valid offsets are [Start, End)
	Segments   int
	Bytes      int64
	// ReadOnly is non-nil when the topic accepts no writes, and says why.
	ReadOnly error
	// What this process appended and read since the topic was opened
	// (for metrics): messages and batch bytes appended (duplicates of an
	// idempotent producer not counted), and messages and batch bytes
	// returned by Read (messages counted from the offset asked for to the
	// end of the batches returned, at most the limit asked for).
	AppendedMessages, AppendedBytes int64
	ReadMessages, ReadBytes         int64
}

// Describe returns a topic's state.
func (e *Engine) Describe(name string) (TopicInfo, error) {
	t, err := e.topic(name)
	if err != nil {
		return TopicInfo{}, err
	}
	segs := t.segments()
	info := TopicInfo{Name: name, Start: segs[0].Base(), End: t.end.Load(), Segments: len(segs), ReadOnly: t.readOnlyErr(),
		AppendedMessages: t.traffic.appendedMsgs.Load(), AppendedBytes: t.traffic.appendedBytes.Load(),
		ReadMessages: t.traffic.readMsgs.Load(), ReadBytes: t.traffic.readBytes.Load()}
	for _, s := range segs {
		info.Bytes += s.Size()
	}
	return info, nil
}

// every runs f every interval until the engine closes.
func (e *Engine) every(interval time.Duration, f func()) {
	defer e.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			f()
		}
	}
}

// ApplyRetention deletes the sealed segments that retention no longer keeps,
// on every topic. It runs every RetentionInterval on its own.
func (e *Engine) ApplyRetention() {
	e.mu.RLock()
	if e.closed {
		// The segments are closed and the clean marker may be written:
		// a closed engine touches no files.
		e.mu.RUnlock()
		return
	}
	ts := make([]*Topic, 0, len(e.topics))
	for name, t := range e.topics {
		if !isInternal(name) { // group state is compacted, never aged out
			ts = append(ts, t)
		}
	}
	e.mu.RUnlock()
	for _, t := range ts {
		if err := t.applyRetention(); err != nil {
			e.opts.Logger.Error("engine: retention", "topic", t.name, "err", err)
		}
	}
}
