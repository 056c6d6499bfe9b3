package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// startRedis starts redis-server (the Debian package) on a free loopback
// port with a temporary directory: appendonly yes, appendfsync everysec
// (relaxed) or always (durable); no RDB snapshots and no automatic AOF
// rewrite, so that nothing but the AOF competes with the workload. It
// skips the benchmark when redis-server is not installed (fails instead
// under HARAQA_REQUIRE_TOOLS=1, as in .ci/run).
func startRedis(b *testing.B, t tier) broker {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		skipMissing(b, "redis-server is not installed (apt-get install -y redis-server): skipping Redis Streams")
	}
	fsync := "everysec"
	if t == durable {
		fsync = "always"
	}
	dir := dataDir(b, "redis")
	var lastErr error
	for range 3 { // the free port may be taken between probe and bind
		port, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		addr, pid, err := runRedis(b, bin, dir, port, fsync)
		if err == nil {
			return &redisBroker{addr: addr, pid: pid}
		}
		lastErr = err
	}
	b.Fatal(lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runRedis starts redis-server on port and waits until it answers PING.
func runRedis(b *testing.B, bin, dir string, port int, fsync string) (string, int, error) {
	logFile := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--dir", dir, "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
		"--auto-aof-rewrite-percentage", "0", "--daemonize", "no", "--logfile", logFile)
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile)
			return "", 0, fmt.Errorf("redis-server exited: %v\n%s", waitErr, log)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, fmt.Errorf("redis-server not answering on %s after 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Cleanup(stop)
	return addr, cmd.Process.Pid, nil
}

type redisBroker struct {
	addr string
	pid  int
}

func (r *redisBroker) Dial(ctx context.Context) (session, error) {
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, DisableIdentity: true, PoolSize: 2 * w5Producers,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxRetries: -1})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	return &redisSession{rdb: rdb}, nil
}

type redisSession struct{ rdb *redis.Client }

func (s *redisSession) Close() error { return s.rdb.Close() }

// CreateTopic: a stream comes into being with its first XADD.
func (s *redisSession) CreateTopic(ctx context.Context, topic string) error { return nil }

func (s *redisSession) DeleteTopic(ctx context.Context, topic string) error {
	return s.rdb.Unlink(ctx, topic).Err()
}

func xadd(topic string, v []byte) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: topic, ID: "*", Values: []any{"v", v}}
}

// Produce: depth goroutines, each sending pipelines of batchLen(size)
// XADDs on a connection of the pool and waiting for the replies.
func (s *redisSession) Produce(ctx context.Context, topic string, src *idSource, size, depth int, g *gen) error {
	n := batchLen(size)
	return parallel(ctx, depth, func(ctx context.Context, _ int) error {
		slab := make([]byte, n*size)
		for {
			first, k := src.take(n)
			if k == 0 {
				return nil
			}
			pipe := s.rdb.Pipeline()
			for i := range k {
				m := slab[i*size : (i+1)*size]
				g.fill(m, first+uint64(i))
				pipe.XAdd(ctx, xadd(topic, m))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("redis xadd pipeline: %w", err)
			}
		}
	})
}

// value returns the "v" field of a stream entry without copying.
func value(m *redis.XMessage) ([]byte, error) {
	v, ok := m.Values["v"].(string)
	if !ok {
		return nil, fmt.Errorf("redis entry %s has no field v: %v", m.ID, m.Values)
	}
	return unsafe.Slice(unsafe.StringData(v), len(v)), nil
}

// Read pages through the stream with XRANGE COUNT readLen(size).
func (s *redisSession) Read(ctx context.Context, topic string, n, size int, each func([]byte) error) error {
	start := "-"
	for got := 0; got < n; {
		msgs, err := s.rdb.XRangeN(ctx, topic, start, "+", int64(min(readLen(size), n-got))).Result()
		if err != nil {
			return fmt.Errorf("redis xrange after %d messages: %w", got, err)
		}
		if len(msgs) == 0 {
			return fmt.Errorf("redis xrange: stream ends at %d messages, want %d", got, n)
		}
		for i := range msgs {
			v, err := value(&msgs[i])
			if err != nil {
				return err
			}
			if err := each(v); err != nil {
				return err
			}
		}
		got += len(msgs)
		start = "(" + msgs[len(msgs)-1].ID
	}
	return nil
}

func (s *redisSession) Len(ctx context.Context, topic string) (int, error) {
	n, err := s.rdb.XLen(ctx, topic).Result()
	return int(n), err
}

func (s *redisSession) Send(ctx context.Context, topic string, msg []byte) error {
	return s.rdb.XAdd(ctx, xadd(topic, msg)).Err()
}

// Async pipelines whatever was sent while the last pipeline was in
// flight (up to 1,000 XADDs), on one goroutine: what an auto-pipelining
// client does.
func (s *redisSession) Async(ctx context.Context, topic string) (asyncSender, error) {
	a := &redisAsync{rdb: s.rdb, topic: topic, queue: make(chan []byte, 4096), done: make(chan struct{})}
	go a.run()
	return a, nil
}

type redisAsync struct {
	rdb     *redis.Client
	topic   string
	queue   chan []byte
	pending sync.WaitGroup
	fail    firstErr
	done    chan struct{}
}

func (a *redisAsync) run() {
	defer close(a.done)
	ctx := context.Background()
	for m := range a.queue {
		pipe := a.rdb.Pipeline()
		pipe.XAdd(ctx, xadd(a.topic, m))
		n := 1
	drain:
		for n < 1000 {
			select {
			case m, ok := <-a.queue:
				if !ok {
					break drain
				}
				pipe.XAdd(ctx, xadd(a.topic, m))
				n++
			default:
				break drain
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := pipe.Exec(wctx); err != nil {
			a.fail.set(err)
		}
		cancel()
		a.pending.Add(-n)
	}
}

func (a *redisAsync) Send(ctx context.Context, msg []byte) error {
	a.pending.Add(1)
	select {
	case a.queue <- bytes.Clone(msg):
		return nil
	case <-ctx.Done():
		a.pending.Add(-1)
		return ctx.Err()
	}
}

func (a *redisAsync) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.pending.Wait(); close(done) }()
	select {
	case <-done:
		return a.fail.get()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *redisAsync) Close(ctx context.Context) error {
	err := a.Flush(ctx)
	close(a.queue)
	<-a.done
	return err
}

// Follow reads with XREAD BLOCK from the last id seen.
func (s *redisSession) Follow(ctx context.Context, topic string, each func([]byte) bool) error {
	last := "0-0"
	for ctx.Err() == nil {
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{topic, last}, Count: 1000, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return fmt.Errorf("redis xread: %w", errors.Join(err, ctx.Err()))
		}
		for _, st := range res {
			for i := range st.Messages {
				v, err := value(&st.Messages[i])
				if err != nil {
					return err
				}
				if !each(v) {
					return nil
				}
				last = st.Messages[i].ID
			}
		}
	}
	return ctx.Err()
}
