package bench

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// sizes are the workload sizes: the numbers, or tiny ones under
// -short (a smoke run that only checks that every path works).
type sizes struct {
	w1Msgs, msgSize       int           // W1/W2: messages and their size
	w3Msgs, bigSize       int           // W3: messages and their size
	w4Msgs                int           // W4: synchronous produces
	w5For                 time.Duration // W5: how long each producer produces
	w5Max                 int           // W5: most messages per producer
	w6Msgs, w6Rate        int           // W6: messages and messages per second
	limitBytes            int64         // machine limits: bytes streamed
	limitSyncs, limitRTTs int           // machine limits: fdatasyncs and round trips
}

var full = sizes{
	w1Msgs: 1_000_000, msgSize: 100,
	w3Msgs: 2_000, bigSize: 1 << 20,
	w4Msgs: 10_000,
	w5For:  2 * time.Second, w5Max: 4_000_000,
	w6Msgs: 20_000, w6Rate: 10_000,
	limitBytes: 2 << 30, limitSyncs: 2_000, limitRTTs: 20_000,
}

var short = sizes{
	w1Msgs: 3_000, msgSize: 100,
	w3Msgs: 4, bigSize: 1 << 20,
	w4Msgs: 100,
	w5For:  100 * time.Millisecond, w5Max: 20_000,
	w6Msgs: 200, w6Rate: 10_000,
	limitBytes: 16 << 20, limitSyncs: 20, limitRTTs: 200,
}

// size returns the sizes in force.
func size() sizes {
	if testing.Short() {
		return short
	}
	return full
}

// Tuning shared by every system so that they get the same room.
const (
	// depth is how many batches (haraqa) or pipelines (Redis) one producer
	// keeps in flight; NATS gets depth*batchLen pending publishes.
	depth = 4
	// inflightBytes bounds a batch's bytes: 1,000 messages of 100 bytes,
	// or a single message of 1 MiB.
	inflightBytes = 1 << 20
	// readBytes is what one read asks for (haraqa's default consume size).
	readBytes = 16 << 20
	// w5Producers is W5's number of concurrent producers.
	w5Producers = 8
)

// batchLen is the messages per batch (haraqa) or per pipeline (Redis) for
// messages of size bytes: 1,000, fewer when that would pass inflightBytes.
func batchLen(size int) int { return max(1, min(1000, inflightBytes/size)) }

// readLen is the messages one read asks for.
func readLen(size int) int { return max(1, min(10_000, readBytes/size)) }

var (
	keepData = flag.Bool("bench.keep", false, "keep the brokers' data directories (for inspection)")
	timeout  = flag.Duration("bench.timeout", 5*time.Minute, "bound on every workload run")
	warm     = flag.Int64("bench.warm", 4<<30, "bytes written to a file and deleted before the benchmarks (0: none); see warmPageCache")
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(echoEnv); addr != "" {
		os.Exit(echoServer(addr)) // a child of rttLimit, not a test run
	}
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" && !testing.Short() && *warm > 0 {
		if err := warmPageCache(*warm); err != nil {
			fmt.Fprintln(os.Stderr, "bench: warming the page cache:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanupBuilds()
	os.Exit(code)
}

// warmPageCache writes n bytes to a temporary file and deletes it. On a
// virtual machine the first use of guest memory costs several times more
// than a reuse (seen here: 0.4 GB/s against 4-5 GB/s into the page cache),
// so whichever system first fills the page cache would pay for it; after
// this every system finds the memory already backed.
func warmPageCache(n int64) error {
	f, err := os.CreateTemp("", "hqbench-warm-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for w := int64(0); w < n; w += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

// workCtx returns a context that bounds one workload run.
func workCtx(b testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	b.Cleanup(cancel)
	return ctx
}

// gen makes the content of message id: its id (8 bytes, little endian),
// then bytes from a fixed random pattern at an offset that depends on the
// id, so that a message swapped, truncated or corrupted is caught.
type gen struct{ pattern []byte }

func newGen(maxSize int) *gen {
	r := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 2*maxSize+4096)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return &gen{pattern: p}
}

func (g *gen) offset(id uint64, n int) int { return int(id * 4099 % uint64(len(g.pattern)-n)) }

// fill writes message id into dst, which has the message's size (>= 8).
func (g *gen) fill(dst []byte, id uint64) {
	binary.LittleEndian.PutUint64(dst, id)
	off := g.offset(id, len(dst))
	copy(dst[8:], g.pattern[off:off+len(dst)-8])
}

// check verifies that v is a message of size bytes made by fill, ignoring
// bytes [8, from) (W6 overwrites them with a timestamp), and returns its id.
func (g *gen) check(v []byte, size, from int) (uint64, error) {
	if len(v) != size {
		return 0, fmt.Errorf("message of %d bytes, want %d", len(v), size)
	}
	id := binary.LittleEndian.Uint64(v)
	off := g.offset(id, size)
	want := g.pattern[off+from-8 : off+size-8]
	if string(v[from:]) != string(want) {
		return id, fmt.Errorf("message %d: content differs", id)
	}
	return id, nil
}

// tracker counts the ids [0, n) seen, each exactly once.
type tracker struct {
	seen []uint64
	n    int
	got  int
}

func newTracker(n int) *tracker { return &tracker{seen: make([]uint64, (n+63)/64), n: n} }

func (t *tracker) add(id uint64) error {
	if id >= uint64(t.n) {
		return fmt.Errorf("message id %d out of range [0, %d)", id, t.n)
	}
	w, bit := id/64, uint64(1)<<(id%64)
	if t.seen[w]&bit != 0 {
		return fmt.Errorf("message %d delivered twice", id)
	}
	t.seen[w] |= bit
	t.got++
	return nil
}

func (t *tracker) complete() error {
	if t.got != t.n {
		return fmt.Errorf("got %d distinct messages, want %d", t.got, t.n)
	}
	return nil
}

// verifier checks every message read back against gen and tracker.
func verifier(g *gen, size, n int) (*tracker, func(v []byte) error) {
	t := newTracker(n)
	return t, func(v []byte) error {
		id, err := g.check(v, size, 8)
		if err != nil {
			return err
		}
		return t.add(id)
	}
}

// idSource hands out message ids in runs, up to max ids or until a
// deadline (zero: none); safe for concurrent use.
type idSource struct {
	base     uint64 // added to every id
	next     atomic.Uint64
	max      uint64
	deadline time.Time
}

// take returns the next run of up to k ids, [first, first+n); n == 0 when
// the source is exhausted.
func (s *idSource) take(k int) (first uint64, n int) {
	if !s.deadline.IsZero() && time.Now().After(s.deadline) {
		return 0, 0
	}
	for {
		cur := s.next.Load()
		if cur >= s.max {
			return 0, 0
		}
		end := min(cur+uint64(k), s.max)
		if s.next.CompareAndSwap(cur, end) {
			return s.base + cur, int(end - cur)
		}
	}
}

// withBase sets the first id and returns s.
func (s *idSource) withBase(base uint64) *idSource {
	s.base = base
	return s
}

// issued returns how many ids were handed out.
func (s *idSource) issued() int { return int(min(s.next.Load(), s.max)) }

// latencies collects durations and reports percentiles.
type latencies struct{ d []time.Duration }

func newLatencies(n int) *latencies { return &latencies{d: make([]time.Duration, 0, n)} }

func (l *latencies) add(d time.Duration) { l.d = append(l.d, d) }

func (l *latencies) percentile(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(l.d)))
	return l.d[min(i, len(l.d)-1)]
}

// report sorts the samples and reports p50, p99 and p99.9 in µs.
func (l *latencies) report(b *testing.B) {
	slices.Sort(l.d)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(l.percentile(50)), "p50-µs")
	b.ReportMetric(us(l.percentile(99)), "p99-µs")
	b.ReportMetric(us(l.percentile(99.9)), "p99.9-µs")
}

// reportRate reports msgs/s and MB/s (message payload bytes, 10^6) for n
// messages of size bytes moved in d.
func reportRate(b *testing.B, n, size int, d time.Duration) {
	s := d.Seconds()
	if s <= 0 {
		return
	}
	b.ReportMetric(float64(n)/s, "msgs/s")
	b.ReportMetric(float64(n)*float64(size)/s/1e6, "MB/s")
}
