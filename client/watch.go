package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// WatchEvent reports a topic's valid offset range [Start, End) after a
// change. Err is set only on the last event of a watch that ended for a
// reason other than its context: a topic was deleted, the Client closed,
// or the connection dropped with reconnecting off.
type WatchEvent struct {
	Topic      string
	Start, End uint64
	Err        error
}

// Watch follows the offset ranges of topics until ctx ends. Every topic
// must exist: Watch registers all of them before it returns, or returns
// the broker's error (ErrTopicNotFound, ...). The channel then receives
// each topic's current range, and a new event whenever a range changes;
// events may coalesce (the latest range wins), so do not count on seeing
// every step. The channel is closed when the watch ends.
//
// A watch runs on a connection of its own. When that connection drops (a
// broker restart, or its idle timeout: a watch's connection sends nothing
// after its request), the watch redials with the Client's backoff and
// registers again; the first events after that give the ranges anew. With
// reconnecting off (WithReconnect) the watch ends instead.
func (c *Client) Watch(ctx context.Context, topics ...string) (<-chan WatchEvent, error) {
	if len(topics) == 0 {
		return nil, fmt.Errorf("client: watch: no topics")
	}
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return nil, err
		}
	}
	w := &watch{c: c, topics: topics, out: make(chan WatchEvent, 64)}
	s, err := w.attach(ctx)
	if err != nil {
		return nil, err
	}
	go w.run(ctx, s)
	return w.out, nil
}

type watch struct {
	c      *Client
	topics []string
	out    chan WatchEvent // closed by run
}

// watchSession is one registration of the watch on one connection. The
// connection's reader feeds in; errc takes the first error that ends it.
type watchSession struct {
	cn   *conn
	in   chan WatchEvent
	errc chan error    // capacity 1
	stop chan struct{} // closed when run leaves the session
	reg  chan error    // capacity 1: the registration's outcome, first wins
}

// stream is the session's call.stream, run by the connection's reader.
func (s *watchSession) stream(h netproto.Header, body []byte, err error) {
	if err != nil {
		s.registered(err)
		select {
		case s.errc <- err:
		default:
		}
		return
	}
	s.registered(nil)
	if h.Opcode != netproto.OpWatchEvent {
		return // the empty Watch response
	}
	var ev netproto.WatchEvent
	if err := ev.Decode(body); err != nil {
		s.stream(h, nil, disconnected(err))
		s.cn.fail(err)
		return
	}
	select {
	case s.in <- WatchEvent{Topic: string(ev.Topic), Start: ev.Start, End: ev.End}:
	case <-s.stop:
	}
}

// registered reports the registration's outcome once. The broker confirms
// with an empty Watch response or, failing that, the first event.
func (s *watchSession) registered(err error) {
	select {
	case s.reg <- err:
	default:
	}
}

// attach dials a connection for the watch and registers every topic.
func (w *watch) attach(ctx context.Context) (*watchSession, error) {
	cn, err := dialConn(ctx, w.c.addr, &w.c.cfg)
	if err != nil {
		return nil, err
	}
	w.c.mu.Lock()
	if w.c.closed {
		w.c.mu.Unlock()
		cn.fail(ErrClosed)
		return nil, ErrClosed
	}
	w.c.watches[cn] = struct{}{}
	w.c.mu.Unlock()
	s := &watchSession{cn: cn, in: make(chan WatchEvent, 16), errc: make(chan error, 1),
		stop: make(chan struct{}), reg: make(chan error, 1)}
	cl := &call{op: netproto.OpWatch, done: make(chan struct{}, 1), stream: s.stream}
	cl.head, _ = netproto.BeginFrame(nil, netproto.Header{Opcode: netproto.OpWatch})
	req := netproto.WatchRequest{Topics: make([][]byte, len(w.topics))}
	for i, t := range w.topics {
		req.Topics[i] = []byte(t)
	}
	cl.head = req.AppendTo(cl.head)
	err = cn.send(cl, nil)
	if err == nil {
		select {
		case err = <-s.reg:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		w.detach(s)
		return nil, err
	}
	return s, nil
}

func (w *watch) detach(s *watchSession) {
	close(s.stop)
	s.cn.fail(ErrClosed)
	w.c.mu.Lock()
	delete(w.c.watches, s.cn)
	w.c.mu.Unlock()
}

// run forwards events until ctx ends or the watch fails for good.
func (w *watch) run(ctx context.Context, s *watchSession) {
	defer close(w.out)
	for {
		var err error
		select {
		case <-ctx.Done():
			w.detach(s)
			return
		case ev := <-s.in:
			select {
			case w.out <- ev:
			case <-ctx.Done():
			}
			continue
		case err = <-s.errc:
		}
		w.detach(s)
		if s = w.reattach(ctx, err); s == nil {
			return
		}
	}
}

// reattach registers the watch again after its connection dropped,
// redialling with backoff until ctx ends. It reports a failure that ends
// the watch as a last event and returns nil.
func (w *watch) reattach(ctx context.Context, err error) *watchSession {
	for n := 1; errors.Is(err, ErrDisconnected) && w.c.cfg.reconnect; n++ {
		t := time.NewTimer(w.c.backoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		var s *watchSession
		if s, err = w.attach(ctx); err == nil {
			return s
		}
	}
	if ctx.Err() == nil {
		select {
		case w.out <- WatchEvent{Err: err}:
		case <-ctx.Done():
		}
	}
	return nil
}
