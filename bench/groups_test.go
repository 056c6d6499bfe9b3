package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/haraqa/haraqa/client"
)

// W7: consumer groups. 1,000,000 messages of 100 B, produced untimed, are
// consumed and acked through a group by 1 member, then by 4 members (a new
// group each time, from the first message), each member on a connection of
// its own, fetching 1,000 messages at a time and acking each fetch before
// the next. Relaxed durability, as W1. Metrics: msgs/s (acked), and the
// ack-confirm latency per fetch (p50/p99): haraqa, one GroupAck request
// with the fetch's ranges, until it is confirmed; NATS (durable pull
// consumer, AckExplicit), Ack of every message and DoubleAck of the last
// (confirmed by the server, and acks are handled in order); Redis, XACK of
// the fetch's ids pipelined with the next XREADGROUP, the pipeline's round
// trip. Every message is checked (content, id) and must arrive exactly once
// (no member fails, nothing is redelivered).

// groupSession is a session that can be a consumer-group member.
type groupSession interface {
	// CreateGroup creates group on topic, from its first message.
	CreateGroup(ctx context.Context, topic, group string) error
	// GroupConsume is one member: it fetches up to w7Fetch messages at a
	// time, passes each value to each, acks the fetch and waits for the
	// confirmation (its duration goes to lat), then calls acked with the
	// number of messages acked; it returns nil when acked returns true or
	// ctx ends, an error when a call fails.
	GroupConsume(ctx context.Context, topic, group string, member int, each func([]byte) error, lat *latencies, acked func(k int) bool) error
}

// w7Fetch is the messages one fetch asks for, for every system.
const w7Fetch = 1000

// BenchmarkW7: consumer groups, 1 member and 4 members.
func BenchmarkW7(b *testing.B) {
	sz := size()
	g := newGen(sz.msgSize)
	forEach(b, relaxed, false, func(b *testing.B, br broker) {
		ctx := workCtx(b)
		s := dial(b, br)
		topic := fmt.Sprintf("w7-%d", time.Now().UnixNano())
		if err := s.CreateTopic(ctx, topic); err != nil {
			b.Fatal(err)
		}
		n := sz.w1Msgs
		if err := s.Produce(ctx, topic, &idSource{max: uint64(n)}, sz.msgSize, depth, g); err != nil {
			b.Fatal(err)
		}
		for _, members := range []int{1, 4} {
			name := "1-member"
			if members > 1 {
				name = fmt.Sprintf("%d-members", members)
			}
			b.Run(name, func(b *testing.B) { groupRun(b, br, g, topic, n, sz.msgSize, members) })
		}
	})
}

// groupRun consumes topic's n messages through a new group with members
// members, b.N times, and reports the rate and the ack-confirm latency.
func groupRun(b *testing.B, br broker, g *gen, topic string, n, size, members int) {
	sessions := make([]groupSession, members)
	for i := range sessions {
		gs, ok := dial(b, br).(groupSession)
		if !ok {
			b.Fatalf("%T has no consumer groups", gs)
		}
		sessions[i] = gs
	}
	b.ReportAllocs()
	b.ResetTimer()
	var d time.Duration
	lat := &latencies{}
	for i := range b.N {
		b.StopTimer()
		group := fmt.Sprintf("g%d-%d-%d", members, i, time.Now().UnixNano())
		if err := sessions[0].CreateGroup(workCtx(b), topic, group); err != nil {
			b.Fatal(err)
		}
		tr, check := verifier(g, size, n)
		var mu sync.Mutex
		each := func(v []byte) error {
			mu.Lock()
			defer mu.Unlock()
			return check(v)
		}
		var done atomic.Int64
		acked := func(k int) bool { return done.Add(int64(k)) >= int64(n) }
		lats := make([]*latencies, members)
		for m := range lats {
			lats[m] = newLatencies(n/w7Fetch/members + 16)
		}
		b.StartTimer()
		start := time.Now()
		err := parallel(workCtx(b), members, func(ctx context.Context, m int) error {
			err := sessions[m].GroupConsume(ctx, topic, group, m, each, lats[m], acked)
			if err == nil && ctx.Err() == nil {
				return errStop // this member saw the last ack: stop the others
			}
			return err
		})
		d += time.Since(start)
		b.StopTimer()
		if err != nil && !errors.Is(err, errStop) {
			b.Fatal(err)
		}
		if err := tr.complete(); err != nil {
			b.Fatal(err)
		}
		if got := done.Load(); got != int64(n) {
			b.Fatalf("%d acks confirmed, want %d", got, n)
		}
		for _, l := range lats {
			lat.d = append(lat.d, l.d...)
		}
	}
	reportRate(b, b.N*n, size, d)
	lat.report(b)
}

// errStop ends the other members of a run once every message was acked.
var errStop = errors.New("every message acked")

// haraqa: a client.GroupConsumer per member; acks are recorded per message
// and sent as one request per fetch (GroupAckBatch), confirmed by Flush.
func (s *haraqaSession) CreateGroup(ctx context.Context, topic, group string) error {
	return nil // the first member's join creates it, from the first message
}

func (s *haraqaSession) GroupConsume(ctx context.Context, topic, group string, member int, each func([]byte) error, lat *latencies, acked func(int) bool) error {
	gc := client.NewGroupConsumer(s.c, group, topic, client.GroupFetchMax(w7Fetch), client.GroupAckBatch(1<<20, time.Hour),
		client.GroupWait(100*time.Millisecond))
	defer gc.Close(context.WithoutCancel(ctx))
	k := 0
	for m, err := range gc.Messages(ctx) {
		if err != nil {
			return fmt.Errorf("haraqa group: %w", err)
		}
		if err := each(m.Value); err != nil {
			return err
		}
		m.Ack()
		k++
		if m.Remaining() > 0 {
			continue
		}
		t0 := time.Now()
		if err := gc.Flush(ctx); err != nil {
			return errors.Join(fmt.Errorf("haraqa group ack: %w", err), ctx.Err())
		}
		lat.add(time.Since(t0))
		if acked(k) {
			return nil
		}
		k = 0
	}
	return nil
}

// NATS: a durable pull consumer with explicit acks, created once; each
// member fetches from it.
func (s *natsSession) CreateGroup(ctx context.Context, topic, group string) error {
	_, err := s.js.CreateOrUpdateConsumer(ctx, topic, jetstream.ConsumerConfig{
		Durable: group, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 4 * w7Fetch * 4, AckWait: 30 * time.Second,
	})
	return err
}

func (s *natsSession) GroupConsume(ctx context.Context, topic, group string, member int, each func([]byte) error, lat *latencies, acked func(int) bool) error {
	cons, err := s.js.Consumer(ctx, topic, group)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(w7Fetch, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return errors.Join(fmt.Errorf("nats fetch: %w", err), ctx.Err())
		}
		var last jetstream.Msg
		k := 0
		for m := range batch.Messages() {
			if err := each(m.Data()); err != nil {
				return err
			}
			if last != nil {
				if err := last.Ack(); err != nil {
					return fmt.Errorf("nats ack: %w", err)
				}
			}
			last = m
			k++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return errors.Join(fmt.Errorf("nats fetch: %w", err), ctx.Err())
		}
		if last == nil {
			continue
		}
		t0 := time.Now()
		if err := last.DoubleAck(ctx); err != nil {
			return errors.Join(fmt.Errorf("nats ack: %w", err), ctx.Err())
		}
		lat.add(time.Since(t0))
		if acked(k) {
			return nil
		}
	}
	return nil
}

// Redis: XGROUP CREATE at 0; each member XREADGROUPs COUNT 1000 and sends
// the XACK of one fetch in the pipeline of the next XREADGROUP.
func (s *redisSession) CreateGroup(ctx context.Context, topic, group string) error {
	return s.rdb.XGroupCreate(ctx, topic, group, "0").Err()
}

func (s *redisSession) GroupConsume(ctx context.Context, topic, group string, member int, each func([]byte) error, lat *latencies, acked func(int) bool) error {
	consumer := fmt.Sprintf("m%d", member)
	var ids []string
	for ctx.Err() == nil {
		pipe := s.rdb.Pipeline()
		var ack *redis.IntCmd
		if len(ids) > 0 {
			ack = pipe.XAck(ctx, topic, group, ids...)
		}
		read := pipe.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{topic, ">"}, Count: w7Fetch, Block: -1})
		t0 := time.Now()
		_, err := pipe.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			return errors.Join(fmt.Errorf("redis xreadgroup/xack: %w", err), ctx.Err())
		}
		if ack != nil {
			lat.add(time.Since(t0))
			if got, err := ack.Result(); err != nil || got != int64(len(ids)) {
				return fmt.Errorf("redis xack: %d of %d acked, %v", got, len(ids), err)
			}
			if acked(len(ids)) {
				return nil
			}
		}
		ids = ids[:0]
		res, err := read.Result()
		if errors.Is(err, redis.Nil) || len(res) == 0 {
			if !sleepCtx(ctx, 5*time.Millisecond) { // nothing left for this member now
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, st := range res {
			for i := range st.Messages {
				v, err := value(&st.Messages[i])
				if err != nil {
					return err
				}
				if err := each(v); err != nil {
					return err
				}
				ids = append(ids, st.Messages[i].ID)
			}
		}
	}
	return nil
}

// sleepCtx sleeps d unless ctx ends first (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
