package client

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/haraqa/haraqa/internal/retry"
)

// MultiConsumer follows several topics — a list, or every topic whose name
// matches a prefix and a regular expression — and yields their messages
// tagged with their topic (Message.Topic), each topic in offset order. It
// watches the topics it follows (Watch) and reads a topic only when the
// broker reports new messages in it, so an idle MultiConsumer costs a
// watch connection and no polling of data. Topics created after it
// started are found by listing the topics (ListTopics, evaluated by the
// broker) every ConsumeDiscoverEvery (default 250ms) and followed from
// their start. A deleted topic is dropped (its error is yielded once).
//
// Every topic starts at its first message, or with ConsumeFrom(t) at the
// first message appended at or after t. ConsumeReset applies to each
// topic, as for a Consumer; ConsumeLimit and ConsumeMaxBytes bound each
// read. A MultiConsumer belongs to one goroutine; messages alias its
// buffer until the next iteration.
type MultiConsumer struct {
	c       *Client
	list    []string // follow these names (when they exist); nil: a pattern
	prefix  string
	expr    string
	cfg     consumeConfig
	topics  map[string]*mtopic
	ended   map[string]bool // dropped after an error other than deletion: not followed again
	order   []string        // topics followed, for round-robin reads
	rr      int
	skipped uint64
	buf     ConsumeBuffer

	gone   []goneTopic     // topics dropped as deleted, their errors not yielded yet
	events chan WatchEvent // merged events of the watches
	stopW  context.CancelFunc
	wg     sync.WaitGroup
	watchN int // topics the running watches cover
}

type goneTopic struct {
	topic string
	err   error
}

type mtopic struct {
	next    uint64
	end     uint64 // the end the broker last reported
	pending bool   // start not resolved yet
}

// NewMultiConsumer returns a MultiConsumer of the named topics; names that
// do not exist yet are followed once they are created.
func NewMultiConsumer(c *Client, topics []string, opts ...ConsumeOption) *MultiConsumer {
	mc := newMultiConsumer(c, opts)
	mc.list = slices.Clone(topics)
	if mc.list == nil {
		mc.list = []string{}
	}
	return mc
}

// NewPatternConsumer returns a MultiConsumer of every topic whose name
// starts with prefix and, when expr is not empty, matches the regular
// expression expr (RE2, unanchored, as ListTopics), including topics
// created later.
func NewPatternConsumer(c *Client, prefix, expr string, opts ...ConsumeOption) *MultiConsumer {
	mc := newMultiConsumer(c, opts)
	mc.prefix, mc.expr = prefix, expr
	return mc
}

func newMultiConsumer(c *Client, opts []ConsumeOption) *MultiConsumer {
	mc := &MultiConsumer{c: c, cfg: applyConsumeOptions(opts), topics: map[string]*mtopic{}, ended: map[string]bool{}}
	if mc.cfg.discover <= 0 {
		mc.cfg.discover = 250 * time.Millisecond
	}
	return mc
}

// Offsets returns the offset of the next message of each topic followed.
func (mc *MultiConsumer) Offsets() map[string]uint64 {
	m := make(map[string]uint64, len(mc.topics))
	for name, t := range mc.topics {
		m[name] = t.next
	}
	return m
}

// Skipped returns how many offsets ConsumeReset jumped over, all topics
// together.
func (mc *MultiConsumer) Skipped() uint64 { return mc.skipped }

// Messages iterates over the messages of the topics until ctx ends or the
// loop breaks; a later call goes on from where the last stopped. Errors
// are yielded with a Message whose Topic names the topic (empty for a
// failure of the listing or the watch): retriable ones are retried with
// backoff; a topic that was deleted, or whose position fell out of range
// under ResetFail, or that is damaged, is dropped after its error; a bad
// pattern (ErrMalformed) ends the iteration.
func (mc *MultiConsumer) Messages(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		defer mc.stopWatches()
		var lastDiscover time.Time
		failures := 0
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for ctx.Err() == nil {
			since := time.Since(lastDiscover)
			if since >= mc.cfg.discover || (mc.watchN != len(mc.order) && since >= 10*time.Millisecond) {
				lastDiscover = time.Now()
				if err := mc.discover(ctx); err != nil {
					if ctx.Err() != nil || !yield(Message{}, err) {
						return
					}
					if !IsRetriable(err) {
						return
					}
					failures++
					if !retry.Sleep(ctx, mc.c.backoff(failures)) {
						return
					}
					continue
				}
				failures = 0
			}
			for len(mc.gone) > 0 {
				g := mc.gone[0]
				mc.gone = mc.gone[1:]
				if !yield(Message{Topic: g.topic}, g.err) {
					return
				}
			}
			mc.drainEvents()
			name, t := mc.ready()
			if t == nil {
				timer.Reset(max(mc.cfg.discover-time.Since(lastDiscover), time.Millisecond))
				select {
				case <-ctx.Done():
				case ev, ok := <-mc.events:
					if ok {
						mc.event(ev)
					}
				case <-timer.C:
				}
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				continue
			}
			if !mc.read(ctx, name, t, yield) {
				return
			}
		}
	}
}

// read reads name once from t.next and yields its messages; it returns
// false when the loop is to end.
func (mc *MultiConsumer) read(ctx context.Context, name string, t *mtopic, yield func(Message, error) bool) bool {
	var err error
	if t.pending {
		var off uint64
		if off, err = mc.c.OffsetAt(ctx, name, mc.cfg.from); err == nil {
			t.next, t.pending = off, false
			return true
		}
	}
	var m *Messages
	if err == nil {
		m, err = mc.c.consume(ctx, name, t.next, mc.cfg.limit, &mc.buf, &consumeConfig{maxBytes: mc.cfg.maxBytes})
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if to, ok := mc.cfg.resetTo(err, name, t.next); ok {
			if to > t.next {
				mc.skipped += to - t.next
			}
			t.next = to
			return true
		}
		if !yield(Message{Topic: name}, err) {
			return false
		}
		if IsRetriable(err) {
			return retry.Sleep(ctx, mc.c.backoff(1))
		}
		if !errors.Is(err, ErrTopicNotFound) {
			mc.ended[name] = true // a recreated topic of the name is followed again; this one is not
		}
		mc.drop(name)
		return true
	}
	t.end = max(t.end, m.End)
	if m.Len() == 0 {
		t.end = t.next // nothing more until the watch says so
		return true
	}
	for i := range m.Len() {
		msg := m.At(i)
		t.next = msg.Offset + 1
		if !yield(msg, m.Err(i)) {
			return false
		}
	}
	return true
}

// ready picks, round-robin, a topic with messages to read.
func (mc *MultiConsumer) ready() (string, *mtopic) {
	for range len(mc.order) {
		mc.rr = (mc.rr + 1) % len(mc.order)
		name := mc.order[mc.rr]
		if t := mc.topics[name]; t.pending || t.next < t.end {
			return name, t
		}
	}
	return "", nil
}

// event notes a watch event: the topic's new range.
func (mc *MultiConsumer) event(ev WatchEvent) {
	if ev.Err != nil {
		mc.watchN = -1 // rewatch at the next discovery
		return
	}
	if t := mc.topics[ev.Topic]; t != nil {
		t.end = max(t.end, ev.End)
		if ev.Start > t.next || ev.End < t.next {
			t.end = max(t.end, t.next+1) // read, to meet the range error
		}
	}
}

func (mc *MultiConsumer) drainEvents() {
	for {
		select {
		case ev, ok := <-mc.events:
			if !ok {
				return
			}
			mc.event(ev)
		default:
			return
		}
	}
}

// discover adds the topics that now exist and match, and (re)starts the
// watches when the set changed.
func (mc *MultiConsumer) discover(ctx context.Context) error {
	var names []string
	if mc.list != nil {
		for _, name := range mc.list {
			if mc.topics[name] != nil || mc.ended[name] {
				continue
			}
			if _, _, err := mc.c.Offsets(ctx, name); err == nil {
				names = append(names, name)
			} else if !errors.Is(err, ErrTopicNotFound) {
				return err
			}
		}
	} else {
		all, err := mc.c.ListTopics(ctx, mc.prefix, mc.expr)
		if err != nil {
			return err
		}
		for _, name := range all {
			if mc.topics[name] == nil && !mc.ended[name] {
				names = append(names, name)
			}
		}
	}
	for _, name := range names {
		t := &mtopic{pending: !mc.cfg.from.IsZero()}
		if !t.pending {
			start, end, err := mc.c.Offsets(ctx, name)
			if errors.Is(err, ErrTopicNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			t.next, t.end = start, end
		}
		mc.topics[name] = t
		mc.order = append(mc.order, name)
	}
	if len(names) > 0 || mc.watchN != len(mc.order) {
		return mc.rewatch(ctx)
	}
	return nil
}

// drop stops following name.
func (mc *MultiConsumer) drop(name string) {
	delete(mc.topics, name)
	mc.order = slices.DeleteFunc(mc.order, func(s string) bool { return s == name })
	mc.watchN = -1
}

// watchChunk is how many topics one watch covers (the broker's default
// limit per connection is 1,024).
const watchChunk = 1000

// rewatch replaces the watches with ones over every topic followed.
func (mc *MultiConsumer) rewatch(ctx context.Context) error {
	mc.stopWatches()
	mc.watchN = len(mc.order)
	if len(mc.order) == 0 {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	mc.stopW = cancel
	events := make(chan WatchEvent, 64)
	mc.events = events
	for chunk := range slices.Chunk(mc.order, watchChunk) {
		ch, err := mc.c.Watch(wctx, chunk...)
		if errors.Is(err, ErrTopicNotFound) {
			// One was deleted: drop what is gone, watch again next time.
			for _, name := range slices.Clone(chunk) { // drop edits mc.order
				if _, _, err := mc.c.Offsets(ctx, name); errors.Is(err, ErrTopicNotFound) {
					mc.drop(name)
					mc.gone = append(mc.gone, goneTopic{name, err})
				}
			}
			mc.watchN = -1
			return nil
		}
		if err != nil {
			mc.watchN = -1
			return err
		}
		mc.wg.Add(1)
		go func() {
			defer mc.wg.Done()
			for ev := range ch {
				select {
				case events <- ev:
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	// Topics may have grown between listing and watching: the watch's
	// first events give their ranges.
	return nil
}

func (mc *MultiConsumer) stopWatches() {
	if mc.stopW != nil {
		mc.stopW()
		mc.stopW = nil
	}
	mc.wg.Wait()
	mc.events = nil
}
