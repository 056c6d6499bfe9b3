package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/haraqa/haraqa/segment"
)

// Names inside a volume directory.
const (
	topicsDir  = "topics"
	cleanName  = "CLEAN"
	volumeName = "VOLUME"
)

// Engine holds the topics of one data directory.
//
// Concurrency: every method is safe for concurrent use. Lock order:
// Engine.mu, then Topic.mu. No lock is held across a network call.
type Engine struct {
	opts Options
	fs   segment.FS
	dir  string

	mu     sync.RWMutex
	topics map[string]*Topic // guarded by mu
	closed bool              // guarded by mu

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open opens (creating if needed) the data directory and recovers every
// topic in it. A clean-shutdown marker lets recovery trust the indexes of
// the newest segments; otherwise their logs are scanned.
func Open(opts Options) (*Engine, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, fs: opts.FS, dir: opts.Dir, topics: map[string]*Topic{}, stop: make(chan struct{})}
	if err := e.fs.MkdirAll(e.path(topicsDir)); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	clean := false
	if _, err := e.fs.ReadFile(e.path(cleanName)); err == nil {
		clean = true
		// From here on a crash must not find the marker.
		if err := e.fs.Remove(e.path(cleanName)); err != nil {
			return nil, fmt.Errorf("engine: remove clean marker: %w", err)
		}
		if err := e.fs.SyncDir(e.dir); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	names, err := e.fs.List(e.path(topicsDir))
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	for _, name := range names {
		if ValidTopic(name) != nil {
			e.opts.Logger.Warn("engine: ignoring entry that is not a topic", "dir", e.path(topicsDir), "name", name)
			continue
		}
		t, err := openTopic(e, name, clean)
		if err != nil && errors.Is(err, ErrCorrupt) {
			// Nothing of the topic is readable (its first segment is
			// damaged). One damaged topic must not keep the others
			// offline: leave it unopened, its files untouched for repair.
			e.opts.Logger.Error("engine: topic damaged; left offline", "topic", name, "err", err)
			continue
		}
		if err != nil {
			e.closeTopics()
			return nil, err
		}
		e.topics[name] = t
	}
	e.wg.Add(1)
	go e.retentionLoop()
	return e, nil
}

func (e *Engine) path(elem ...string) string {
	return filepath.Join(append([]string{e.dir}, elem...)...)
}

// Close stops every writer (appends in flight finish first), syncs and
// closes every segment, and writes the clean-shutdown marker.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.closed = true
	close(e.stop)
	e.mu.Unlock()
	e.wg.Wait()
	damaged := false
	for _, t := range e.topics {
		damaged = damaged || t.readOnlyErr() != nil
	}
	err := e.closeTopics()
	if damaged {
		// A damaged topic must be rescanned at the next open: no marker.
		e.opts.Logger.Warn("engine: closing with read-only topics; the next open will scan")
	} else if err == nil {
		err = segment.WriteFileAtomic(e.fs, e.path(cleanName), []byte("clean\n"))
	}
	return err
}

func (e *Engine) closeTopics() error {
	var errs []error
	for name, t := range e.topics {
		if err := t.close(); err != nil {
			errs = append(errs, fmt.Errorf("engine: close topic %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// topic returns the named topic.
func (e *Engine) topic(name string) (*Topic, error) {
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

// CreateTopic creates an empty topic.
func (e *Engine) CreateTopic(name string) error {
	if err := ValidTopic(name); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if _, ok := e.topics[name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	t, err := createTopic(e, name)
	if err != nil {
		return err
	}
	e.topics[name] = t
	return nil
}

// DeleteTopic deletes a topic and its files. Readers holding data of it
// finish their reads; appends in flight fail with ErrTopicNotFound.
func (e *Engine) DeleteTopic(name string) error {
	if err := ValidTopic(name); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	t, ok := e.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	delete(e.topics, name)
	return t.remove()
}

// Topics lists the topics whose names start with prefix, sorted.
func (e *Engine) Topics(prefix string) []string {
	e.mu.RLock()
	out := make([]string, 0, len(e.topics))
	for name := range e.topics {
		if strings.HasPrefix(name, prefix) {
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
}

// Describe returns a topic's state.
func (e *Engine) Describe(name string) (TopicInfo, error) {
	t, err := e.topic(name)
	if err != nil {
		return TopicInfo{}, err
	}
	segs := t.segments()
	info := TopicInfo{Name: name, Start: segs[0].Base(), End: t.end.Load(), Segments: len(segs), ReadOnly: t.readOnlyErr()}
	for _, s := range segs {
		info.Bytes += s.Size()
	}
	return info, nil
}

func (e *Engine) retentionLoop() {
	defer e.wg.Done()
	tick := time.NewTicker(e.opts.RetentionInterval)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			e.ApplyRetention()
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
	for _, t := range e.topics {
		ts = append(ts, t)
	}
	e.mu.RUnlock()
	for _, t := range ts {
		if err := t.applyRetention(); err != nil {
			e.opts.Logger.Error("engine: retention", "topic", t.name, "err", err)
		}
	}
}
