package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// memDir is the data directory of engines on a MemFS.
const memDir = "/data"

// logRecorder is a slog handler that keeps every record, so tests can tell
// what recovery did (a clean restart logs no rebuilt index) and keep the
// test output quiet.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}

// count returns how many records contain substr.
func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func (l *logRecorder) reset() {
	l.mu.Lock()
	l.msgs = nil
	l.mu.Unlock()
}

func (l *logRecorder) logger() *slog.Logger { return slog.New(l) }

// memOpts returns options for an engine on fs with a quiet logger. MemFS
// reserves a segment's whole capacity when it is mapped, so segments on a
// MemFS are kept small.
// noZeros turns off the zeros written ahead of small appends under
// fsync=always (Options.ZeroAhead), for a test that works on the active
// log's bytes at the file's end (cutting, zeroing or sizing it) or on a
// disk sized to the file: with zeros ahead the file ends past the log, and
// appends into them need no new space. TestZeroAhead* test the zeros.
func noZeros(o Options) Options {
	o.ZeroAhead = -1
	return o
}

func memOpts(fs *vfs.MemFS) Options {
	return Options{Dir: memDir, FS: fs, SegmentBytes: 4 << 20, SegmentEntries: 4096,
		Logger: (&logRecorder{}).logger()}
}

// osOpts returns options for an engine on the OS in a fresh temp dir.
func osOpts(t testing.TB) Options {
	return Options{Dir: t.TempDir(), Logger: (&logRecorder{}).logger()}
}

// openEngine opens an engine and closes it at the end of the test.
func openEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// reopen closes e cleanly and opens the same options again.
func reopen(t testing.TB, e *Engine, opts Options) *Engine {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openEngine(t, opts)
}

// crashOpen opens an engine on what fs kept durable (fs.Crash()). The old
// engine is left running on fs; the caller closes it if it wants to.
func crashOpen(t testing.TB, fs *vfs.MemFS, opts Options) (*Engine, *vfs.MemFS) {
	t.Helper()
	c := fs.Crash()
	opts.FS = c
	return openEngine(t, opts), c
}

func mustCreate(t testing.TB, e *Engine, topic string) {
	t.Helper()
	if err := e.CreateTopic(topic); err != nil {
		t.Fatalf("CreateTopic(%q): %v", topic, err)
	}
}

// msgBytes returns size deterministic bytes derived from key: the expected
// content of a message can be recomputed from its key alone.
func msgBytes(key uint64, size int) []byte {
	b := make([]byte, size)
	x := key*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// batchOf builds an unstamped batch of msgs.
func batchOf(t testing.TB, msgs ...[]byte) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	return b
}

// genMsgs returns n messages whose keys start at key, each size bytes.
func genMsgs(key uint64, n, size int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = msgBytes(key+uint64(i), size)
	}
	return msgs
}

func mustAppend(t testing.TB, e *Engine, topic string, batch []byte) uint64 {
	t.Helper()
	off, err := e.Append(context.Background(), topic, batch)
	if err != nil {
		t.Fatalf("Append(%q): %v", topic, err)
	}
	return off
}

// model is what a test expects a topic to hold: the content of every
// acknowledged message by offset.
type model struct {
	msgs map[uint64][]byte
	next uint64 // offset after the last acknowledged message
}

func newModel() *model { return &model{msgs: map[uint64][]byte{}} }

// appendBatch appends msgs as one batch, checks the offset it got is the
// model's next, and records the messages.
func (m *model) appendBatch(t testing.TB, e *Engine, topic string, msgs [][]byte) uint64 {
	t.Helper()
	off := mustAppend(t, e, topic, batchOf(t, msgs...))
	if off != m.next {
		t.Fatalf("append got offset %d, want %d (offsets must be dense)", off, m.next)
	}
	for i, msg := range msgs {
		m.msgs[off+uint64(i)] = msg
	}
	m.next = off + uint64(len(msgs))
	return off
}

// check reads [from, m.next) and compares it message by message.
func (m *model) check(t testing.TB, e *Engine, topic string, from uint64) {
	t.Helper()
	got := readAll(t, e, topic, from, m.next)
	for i, g := range got {
		want, ok := m.msgs[g.off]
		if !ok {
			t.Fatalf("message %d: offset %d not in the model", i, g.off)
		}
		if !bytes.Equal(g.data, want) {
			t.Fatalf("offset %d: got %d bytes %.16x, want %d bytes %.16x", g.off, len(g.data), g.data, len(want), want)
		}
	}
}

// readMsg is one message read back, copied out of the mapping.
type readMsg struct {
	off  uint64
	data []byte
}

// readAll reads the messages [from, to) of topic with Read, checking that
// every chunk is made of valid batches whose offsets are dense and match
// the chunk's Range, and that exactly to-from messages come back.
func readAll(t testing.TB, e *Engine, topic string, from, to uint64) []readMsg {
	t.Helper()
	var res ReadResult
	defer res.Release()
	out := make([]readMsg, 0, to-from)
	off := from
	for iter := 0; off < to; iter++ {
		if iter > int(to-from)+10 {
			t.Fatalf("read of [%d, %d) makes no progress at %d", from, to, off)
		}
		if err := e.Read(topic, off, to-off, 1<<20, &res); err != nil {
			t.Fatalf("Read(%q, %d): %v", topic, off, err)
		}
		if len(res.Chunks) == 0 {
			t.Fatalf("Read(%q, %d) returned no chunks, end %d", topic, off, res.End)
		}
		for _, c := range res.Chunks {
			out = appendChunk(t, out, c, &off, to)
		}
		res.Release()
	}
	if uint64(len(out)) != to-from {
		t.Fatalf("read %d messages from [%d, %d)", len(out), from, to)
	}
	return out
}

// appendChunk verifies a chunk's batches and appends its messages in
// [*off, to) to out, advancing *off. The first batch may start before *off.
func appendChunk(t testing.TB, out []readMsg, c Chunk, off *uint64, to uint64) []readMsg {
	t.Helper()
	out, err := chunkMsgs(out, c, off, to)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chunkMsgs is appendChunk for any goroutine: it returns what is wrong.
func chunkMsgs(out []readMsg, c Chunk, off *uint64, to uint64) ([]readMsg, error) {
	sc := record.NewScanner(c.Data())
	expect := c.Range.First
	if expect > *off {
		return out, fmt.Errorf("chunk starts at %d, past the wanted offset %d (gap)", expect, *off)
	}
	for sc.Next() {
		h := sc.Header()
		if h.BaseOffset != expect {
			return out, fmt.Errorf("batch at offset %d, want %d (offsets must be dense)", h.BaseOffset, expect)
		}
		it := record.Messages(sc.Batch(), h)
		o := h.BaseOffset
		for msg, ok := it.Next(); ok; msg, ok = it.Next() {
			if o >= *off && o < to {
				out = append(out, readMsg{off: o, data: bytes.Clone(msg)})
				*off = o + 1
			}
			o++
		}
		if it.Err() != nil || o != h.NextOffset() {
			return out, fmt.Errorf("batch %d: %d messages, err %v", h.BaseOffset, o-h.BaseOffset, it.Err())
		}
		expect = h.NextOffset()
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("chunk %+v: %w", c.Range, err)
	}
	if expect != c.Range.Next {
		return out, fmt.Errorf("chunk %+v ends at offset %d", c.Range, expect)
	}
	if *off < c.Range.Next && c.Range.Next <= to {
		*off = c.Range.Next
	}
	return out, nil
}

// endOf returns the topic's end offset.
func endOf(t testing.TB, e *Engine, topic string) uint64 {
	t.Helper()
	_, end, err := e.Offsets(topic)
	if err != nil {
		t.Fatalf("Offsets(%q): %v", topic, err)
	}
	return end
}

func describe(t testing.TB, e *Engine, topic string) TopicInfo {
	t.Helper()
	info, err := e.Describe(topic)
	if err != nil {
		t.Fatalf("Describe(%q): %v", topic, err)
	}
	return info
}

// activeLog returns the path of the topic's active segment log.
func activeLog(t testing.TB, e *Engine, topic string) string {
	t.Helper()
	tp, err := e.topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	segs := tp.segments()
	s := segs[len(segs)-1]
	return filepath.Join(s.Dir(), segment.LogName(s.Base()))
}

// newRand returns a seeded source and logs its seed so a failure can be
// replayed.
func newRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1|1))
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// wantRange checks that err is a *RangeError for offset with range [start, end).
func wantRange(t testing.TB, err error, offset, start, end uint64) {
	t.Helper()
	var re *RangeError
	if !errors.Is(err, ErrOutOfRange) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *RangeError", err)
	}
	if re.Offset != offset || re.Start != start || re.End != end {
		t.Fatalf("RangeError %+v, want offset %d in [%d, %d)", re, offset, start, end)
	}
}

// spinUntil yields until cond holds, failing after a bounded number of
// tries. It is used only where the state to wait for has no channel (a
// goroutine blocked inside Wait or a queue filling up).
func spinUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		runtime.Gosched()
	}
}
