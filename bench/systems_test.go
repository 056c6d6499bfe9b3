package bench

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// tier is a durability level, matched across the systems.
type tier int

const (
	// relaxed: an ack does not wait for fsync. haraqa fsync=never,
	// JetStream's default sync (every 2 minutes), Redis appendfsync everysec.
	relaxed tier = iota
	// durable: fsync before the ack. haraqa fsync=always (group commit),
	// JetStream sync_interval always, Redis appendfsync always.
	durable
)

func (t tier) String() string {
	if t == durable {
		return "durable"
	}
	return "relaxed"
}

// system is one broker setup under test.
type system struct {
	name string
	// start starts a broker for the benchmark (stopped at its end), or
	// skips the benchmark when the system is not available.
	start func(b *testing.B, t tier) broker
	// every: the system runs every workload; otherwise only W1/W2.
	every bool
}

// systems returns the setups in the order the tables show them.
func systems() []system {
	return []system{
		{name: "haraqa-tcp", start: inProcess("tcp"), every: true},
		{name: "haraqa-unix", start: inProcess("unix"), every: true},
		{name: "haraqa-proc-tcp", start: outOfProcess("tcp"), every: true},
		{name: "haraqa-proc-unix", start: outOfProcess("unix")},
		{name: "nats", start: startNATS, every: true},
		{name: "redis", start: startRedis, every: true},
	}
}

// broker is a running system.
type broker interface {
	// Dial opens a session: a connection of its own.
	Dial(ctx context.Context) (session, error)
}

// session is one client connection to a broker; it is used by one
// goroutine at a time, except Produce, which runs its own goroutines.
type session interface {
	CreateTopic(ctx context.Context, topic string) error
	DeleteTopic(ctx context.Context, topic string) error
	// Produce sends the messages src hands out (size bytes each, made by
	// g) to topic as fast as it can: batches of batchLen(size) messages
	// (haraqa: one produce request; Redis: one pipeline of XADDs) with
	// depth of them in flight (NATS: depth*batchLen pending async
	// publishes), and returns when every one was acknowledged.
	Produce(ctx context.Context, topic string, src *idSource, size, depth int, g *gen) error
	// Read reads the first n messages of topic and passes each value to
	// each; the value is valid only during the call.
	Read(ctx context.Context, topic string, n, size int, each func([]byte) error) error
	// Len returns how many messages topic holds.
	Len(ctx context.Context, topic string) (int, error)
	// Send appends one message and waits for its acknowledgement.
	Send(ctx context.Context, topic string, msg []byte) error
	// Async returns a sender that does not wait for acknowledgements.
	Async(ctx context.Context, topic string) (asyncSender, error)
	// Follow calls each for every message of topic from its first, as they
	// arrive, until each returns false (then it returns nil) or ctx ends.
	Follow(ctx context.Context, topic string, each func([]byte) bool) error
	Close() error
}

// asyncSender sends without waiting for each acknowledgement.
type asyncSender interface {
	// Send queues a copy of msg.
	Send(ctx context.Context, msg []byte) error
	// Flush waits until everything sent was acknowledged and returns the
	// first failure.
	Flush(ctx context.Context) error
	Close(ctx context.Context) error
}

// dial opens a session that is closed when b ends.
func dial(b testing.TB, br broker) session {
	b.Helper()
	s, err := br.Dial(workCtx(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// dataDir returns an empty directory for a broker's data, removed at the
// end of b unless -bench.keep.
func dataDir(b testing.TB, name string) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "hqbench-"+name+"-")
	if err != nil {
		b.Fatal(err)
	}
	if !*keepData {
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// socketPath returns a Unix socket path short enough for sun_path.
func socketPath(b testing.TB) string {
	return filepath.Join(dataDir(b, "sock"), "s")
}

// parallel runs f(i) for i in [0, n) on n goroutines and returns the first
// error; the others' ctx is cancelled when one fails.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range n {
		wg.Go(func() {
			if err := f(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	return first
}
