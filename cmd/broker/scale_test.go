package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// The scale tests run the built broker under a descriptor limit and write
// to 20,000 topics. They take minutes: they run with HARAQA_SLOW=1 (set by
// .ci/run) and fail, not hang, past their time bounds.

const (
	scaleTopics   = 20000
	scaleConns    = 64
	scaleFirst    = 10 // messages per topic in the first round
	scaleBatch    = 5  // messages per produce in the rounds after
	scaleDuration = 30 * time.Second
)

func slowOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("HARAQA_SLOW") == "" {
		t.Skip("slow: set HARAQA_SLOW=1")
	}
}

// Promise: a broker under a descriptor limit of 20,000 takes 10 messages
// on each of 20,000 new topics and then every message written to all of
// them for 30 s: every produce is acknowledged, every acknowledged message
// reads back, the broker never holds as many descriptors as its limit,
// and nothing is logged at ERROR.
func TestScale20000TopicsLimit20000(t *testing.T) {
	slowOnly(t)
	res := runScale(t, 20000)
	if res.failed.Load() != 0 {
		t.Fatalf("%d produces failed under a limit that fits (first: %v)", res.failed.Load(), res.firstErr())
	}
}

// Promise: with the descriptor limit lowered to 1,000 the same load gets
// only clear, retriable resource errors for what does not fit — nothing
// else fails — and everything acknowledged reads back.
func TestScale20000TopicsLimit1000(t *testing.T) {
	slowOnly(t)
	res := runScale(t, 1000)
	if n := res.otherErrs.Load(); n != 0 {
		t.Fatalf("%d produces failed with something other than a resource error (first: %v)", n, res.firstErr())
	}
}

type scaleResult struct {
	acked, failed, otherErrs atomic.Int64
	mu                       sync.Mutex
	first                    error
}

func (r *scaleResult) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// scaleTopic is what the client knows of one topic: the rounds it wrote
// that were acknowledged, with their base offsets.
type scaleTopic struct {
	mu    sync.Mutex
	acked []ackedRun
}

type ackedRun struct {
	base         uint64
	round, count int
}

func scaleMsg(topic, round, j int) string { return fmt.Sprintf("t%d r%d m%d", topic, round, j) }

func runScale(t *testing.T, limit int) *scaleResult {
	dir := t.TempDir()
	p := limitedBroker(t, buildBroker(t), dir, limit, limit, "-log-level", "info")
	pid := p.cmd.Process.Pid
	stopMon := make(chan struct{})
	var peakFD atomic.Int64
	var peakKinds atomic.Pointer[map[string]int]
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		for {
			if ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil {
				if int64(len(ents)) > peakFD.Load() {
					peakFD.Store(int64(len(ents)))
					if len(ents) >= limit*95/100 {
						kinds := map[string]int{}
						for _, e := range ents {
							l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name())
							switch {
							case strings.HasSuffix(l, ".log"), strings.HasSuffix(l, ".idx"), strings.HasSuffix(l, ".tmp"):
								l = l[strings.LastIndexByte(l, '.'):]
							case strings.Contains(l, "/topics/"):
								l = "topic dir"
							case strings.Contains(l, ":["):
								l = l[:strings.Index(l, ":[")]
							}
							kinds[l]++
						}
						peakKinds.Store(&kinds)
					}
				}
			}
			select {
			case <-stopMon:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	conns := make([]*pipeConn, scaleConns)
	for i := range conns {
		c, err := dialPipe(p.sock)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns[i] = c
		defer c.close()
	}
	topics := make([]scaleTopic, scaleTopics)
	res := &scaleResult{}
	round := func(r, n int, deadline time.Time) {
		var wg sync.WaitGroup
		for ci, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := ci; i < scaleTopics; i += scaleConns {
					msgs := make([][]byte, n)
					for j := range msgs {
						msgs[j] = []byte(scaleMsg(i, r, j))
					}
					batch, err := record.AppendBatch(nil, msgs...)
					if err != nil {
						t.Error(err)
						return
					}
					topic := "svc-" + strconv.Itoa(i)
					c.produce(topic, batch, func(base uint64, err error) {
						if err != nil {
							res.failed.Add(1)
							if !strings.Contains(err.Error(), "resource limit") {
								if res.otherErrs.Add(1) <= 3 {
									t.Logf("%s round %d: not a resource error: %v", topic, r, err)
								}
							}
							res.mu.Lock()
							if res.first == nil {
								res.first = fmt.Errorf("%s round %d: %w", topic, r, err)
							}
							res.mu.Unlock()
							return
						}
						res.acked.Add(1)
						tp := &topics[i]
						tp.mu.Lock()
						tp.acked = append(tp.acked, ackedRun{base: base, round: r, count: n})
						tp.mu.Unlock()
					})
				}
				c.flush()
			}()
		}
		wg.Wait()
		for _, c := range conns {
			if err := c.drain(deadline); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
	}
	start := time.Now()
	round(0, scaleFirst, start.Add(10*time.Minute))
	t.Logf("limit %d: first round (%d topics created, %d messages each) took %v; %d acked, %d failed; peak %d descriptors",
		limit, scaleTopics, scaleFirst, time.Since(start).Round(time.Millisecond), res.acked.Load(), res.failed.Load(), peakFD.Load())
	start = time.Now()
	rounds := 1
	for time.Since(start) < scaleDuration {
		round(rounds, scaleBatch, time.Now().Add(5*time.Minute))
		rounds++
	}
	t.Logf("limit %d: %d more rounds of %d messages to every topic in %v; %d acked, %d failed; peak %d descriptors",
		limit, rounds-1, scaleBatch, time.Since(start).Round(time.Millisecond), res.acked.Load(), res.failed.Load(), peakFD.Load())

	// Every acknowledged message reads back, in its place, and nothing else.
	start = time.Now()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := ci; i < scaleTopics; i += scaleConns {
				if err := checkScaleTopic(c, i, &topics[i]); err != nil {
					if bad.Add(1) <= 5 {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("limit %d: read back %d topics in %v; peak %d descriptors", limit, scaleTopics, time.Since(start).Round(time.Millisecond), peakFD.Load())
	close(stopMon)
	<-monDone
	for _, c := range conns {
		c.close()
	}
	start = time.Now()
	p.stop(t)
	t.Logf("limit %d: stopped in %v", limit, time.Since(start).Round(time.Millisecond))
	logs := p.logText()
	if k := peakKinds.Load(); k != nil {
		t.Logf("descriptors at the peak, by kind: %v", *k)
	}
	if peakFD.Load() >= int64(limit) {
		t.Errorf("the broker held %d descriptors, its limit is %d", peakFD.Load(), limit)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("logged at ERROR: %s", line)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "requests that need more get a resource error") || strings.Contains(line, "msg=\"file limits\"") {
			t.Logf("broker: %s", line)
		}
	}
	t.Logf("broker log tail:\n%s", tail(logs, 4))
	return res
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// checkScaleTopic reads topic i from offset 0 and compares it with the
// acknowledged runs: each at its base offset, and nothing else stored.
func checkScaleTopic(c *pipeConn, i int, tp *scaleTopic) error {
	topic := "svc-" + strconv.Itoa(i)
	want := map[uint64]string{}
	for _, a := range tp.acked {
		for j := range a.count {
			want[a.base+uint64(j)] = scaleMsg(i, a.round, j)
		}
	}
	got := 0
	for off, retries := uint64(0), 0; ; {
		body, err := c.call(netproto.OpConsume, &netproto.ConsumeRequest{Topic: []byte(topic), Offset: off, Limit: 1 << 20})
		if err != nil && strings.Contains(err.Error(), "resource limit") && retries < 100 {
			// Retriable by the protocol: back off, as a client does.
			retries++
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			if len(want) == 0 && strings.Contains(err.Error(), "topic not found") {
				return nil // never created: every produce to it failed
			}
			return fmt.Errorf("%s: consume at %d: %w", topic, off, err)
		}
		var r netproto.ConsumeResponse
		if err := r.Decode(body); err != nil {
			return err
		}
		if r.BatchBytes == 0 {
			break
		}
		sc := record.NewScanner(r.Batches)
		for sc.Next() {
			h := sc.Header()
			it := record.Messages(sc.Batch(), h)
			k := uint64(0)
			for m, ok := it.Next(); ok; m, ok = it.Next() {
				o := h.BaseOffset + k
				if w, ok := want[o]; !ok || w != string(m) {
					return fmt.Errorf("%s offset %d holds %q, want %q (acknowledged: %v)", topic, o, m, w, ok)
				}
				got++
				k++
			}
			off = h.NextOffset()
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", topic, err)
		}
	}
	if got != len(want) {
		return fmt.Errorf("%s holds %d messages, %d were acknowledged", topic, got, len(want))
	}
	return nil
}

// pipeConn pipelines requests on one connection: a writer buffers frames,
// a reader goroutine answers each by its request id.
type pipeConn struct {
	nc      net.Conn
	w       *bufio.Writer
	mu      sync.Mutex
	id      uint64
	pending map[uint64]func(netproto.Header, []byte, error)
	wg      sync.WaitGroup // outstanding requests
	readErr atomic.Pointer[error]
	done    chan struct{}
	sem     chan struct{} // bounds requests in flight
}

func dialPipe(sock string) (*pipeConn, error) {
	nc, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &pipeConn{nc: nc, w: bufio.NewWriterSize(nc, 256<<10), pending: map[uint64]func(netproto.Header, []byte, error){},
		done: make(chan struct{}), sem: make(chan struct{}, 512)}
	go c.readLoop()
	hello := make(chan error, 1)
	c.send(netproto.OpHello, &netproto.HelloRequest{Version: netproto.ProtocolVersion}, func(h netproto.Header, _ []byte, err error) { hello <- err })
	c.flush()
	if err := <-hello; err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *pipeConn) readLoop() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.nc, 256<<10)
	var buf []byte
	for {
		h, body, err := netproto.ReadResponse(r, 1<<27, buf)
		if err != nil {
			c.readErr.Store(&err)
			c.mu.Lock()
			for id, f := range c.pending {
				delete(c.pending, id)
				go f(h, nil, err)
			}
			c.mu.Unlock()
			return
		}
		buf = body
		c.mu.Lock()
		f := c.pending[h.RequestID]
		delete(c.pending, h.RequestID)
		c.mu.Unlock()
		if f == nil {
			continue
		}
		var rerr error
		if h.Status != netproto.CodeOK {
			rerr = netproto.DecodeError(h.Status, body)
		}
		f(h, body, rerr)
	}
}

// send queues a request; f runs on the reader goroutine with the answer
// (body valid only during f).
func (c *pipeConn) send(op netproto.Opcode, msg netproto.Encoder, f func(netproto.Header, []byte, error)) {
	c.sem <- struct{}{}
	c.wg.Add(1)
	c.mu.Lock()
	c.id++
	id := c.id
	c.pending[id] = func(h netproto.Header, b []byte, err error) {
		defer c.wg.Done()
		defer func() { <-c.sem }()
		f(h, b, err)
	}
	frame := netproto.AppendFrame(nil, netproto.Header{Opcode: op, RequestID: id}, msg)
	_, err := c.w.Write(frame)
	if len(c.sem) == cap(c.sem) {
		err = c.w.Flush() // full: let the broker catch up
	}
	c.mu.Unlock()
	if err != nil {
		c.nc.Close()
	}
}

func (c *pipeConn) flush() {
	c.mu.Lock()
	if err := c.w.Flush(); err != nil {
		c.nc.Close()
	}
	c.mu.Unlock()
}

func (c *pipeConn) produce(topic string, batch []byte, f func(uint64, error)) {
	c.send(netproto.OpProduce, &netproto.ProduceRequest{Topic: []byte(topic), Batch: batch}, func(h netproto.Header, body []byte, err error) {
		if err != nil {
			f(0, err)
			return
		}
		var r netproto.ProduceResponse
		if err := r.Decode(body); err != nil {
			f(0, err)
			return
		}
		f(r.BaseOffset, nil)
	})
}

// call sends one request and waits for its answer (a copy of the body).
func (c *pipeConn) call(op netproto.Opcode, msg netproto.Encoder) ([]byte, error) {
	type answer struct {
		b   []byte
		err error
	}
	ch := make(chan answer, 1)
	c.send(op, msg, func(h netproto.Header, b []byte, err error) { ch <- answer{append([]byte(nil), b...), err} })
	c.flush()
	select {
	case a := <-ch:
		return a.b, a.err
	case <-time.After(2 * time.Minute):
		return nil, fmt.Errorf("no answer to %v within 2 minutes", op)
	}
}

// drain waits until every request sent was answered.
func (c *pipeConn) drain(deadline time.Time) error {
	c.flush()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		return fmt.Errorf("requests unanswered at the deadline")
	}
	if p := c.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *pipeConn) close() { c.nc.Close() }
