package server

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Promise: connections that never say Hello cannot lock a real client out
// for long: each gives its MaxConns slot back after HelloTimeout, so a
// client refused while they fill every slot is served soon after.
func TestHelloDeadlineFreesSlots(t *testing.T) {
	const silent = 500
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{MaxConns: silent, HelloTimeout: 300 * time.Millisecond})
	start := time.Now()
	conns := make([]net.Conn, 0, silent)
	for range silent {
		nc, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns = append(conns, nc)
	}
	// The slots are all taken: a real client is refused at first (unless
	// the silent ones already timed out, on a slow machine)...
	served := waitFor(20*time.Second, func() bool {
		p, err := dialPeer("tcp", ts.addr)
		if err != nil {
			return false
		}
		defer p.Close()
		_, err = p.hello("")
		return err == nil
	})
	took := time.Since(start)
	if !served {
		t.Fatalf("no client served %v after %d silent connections took every slot", took, silent)
	}
	t.Logf("a real client served %v after %d silent connections took every slot", took.Round(time.Millisecond), silent)
	// ...and every silent connection was closed by the broker.
	for i, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(ioTimeout))
		if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("silent connection %d: read %d bytes, %v; want it closed", i, n, err)
		}
	}
}

// Promise: however many connections send large requests, the broker holds
// at most MaxInFlightBytes of request bodies: a request that does not fit
// waits InFlightBytesWait, then is answered TooBusy (retriable) and the
// connection goes on; once the bytes are released, requests are served.
func TestInFlightBytesBudget(t *testing.T) {
	const body = 256 << 10
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true, MaxBody: body, MaxInFlightBytes: 2 * body,
		InFlightBytesWait: 100 * time.Millisecond, ReadTimeout: time.Second})
	work := mustDial(t, ts, "")
	work.mustProduce(t, "t", batchOf(t, "before"))

	// Two peers declare a whole MaxBody each and send a little of it: the
	// broker reserves their bytes until ReadTimeout cuts them off.
	for range 2 {
		p := mustDial(t, ts, "")
		p.mustWrite(t, append(header(body, netproto.OpProduce, 0, 0, 7), make([]byte, 100)...))
	}
	waitFor(ioTimeout, func() bool { return ts.budget.used.Load() >= 2*body })
	if used := ts.budget.used.Load(); used > 2*body {
		t.Fatalf("%d bytes held, budget %d", used, 2*body)
	}
	_, err := work.produce("t", batchOf(t, strings.Repeat("x", 1000)))
	pe := wantCode(t, err, netproto.CodeTooBusy)
	if !pe.Retriable {
		t.Fatalf("TooBusy not retriable: %+v", pe)
	}
	// The connection goes on, and once the stalled bodies are cut off
	// (ReadTimeout) the same request is served.
	ok := waitFor(ioTimeout, func() bool {
		_, err := work.produce("t", batchOf(t, "after"))
		return err == nil
	})
	if !ok {
		t.Fatal("no produce served after the stalled bodies were released")
	}
	if !waitFor(ioTimeout, func() bool { return ts.budget.used.Load() == 0 }) {
		t.Fatalf("%d bytes still held with nothing in flight", ts.budget.used.Load())
	}
}

// Promise: a connection's watches together watch at most MaxWatchedTopics
// topics (each costs a goroutine); past it a Watch gets TooBusy saying so.
func TestWatchedTopicsLimit(t *testing.T) {
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true, MaxWatchedTopics: 3})
	p := mustDial(t, ts, "")
	for _, n := range []string{"a", "b", "c", "d"} {
		p.mustProduce(t, n, batchOf(t, n))
	}
	watch := func(names ...string) error {
		req := &netproto.WatchRequest{}
		for _, n := range names {
			req.Topics = append(req.Topics, []byte(n))
		}
		_, err := p.call(netproto.OpWatch, req)
		return err
	}
	if err := watch("a", "b"); err != nil {
		t.Fatal(err)
	}
	pe := wantCode(t, watch("c", "d"), netproto.CodeTooBusy)
	if !strings.Contains(pe.Message, "limit is 3") {
		t.Fatalf("refusal does not name the limit: %q", pe.Message)
	}
	wantCode(t, watch("a", "b", "c", "d"), netproto.CodeTooBusy)
	if err := watch("c"); err != nil {
		t.Fatalf("a watch within the limit: %v", err)
	}
	p.mustOffsets(t, "a", 0)
}

// Promise: an idle connection keeps no large request buffer: after
// clients each produce one 4 MiB message and go idle, each connection
// keeps at most 64 KiB of body buffers, and the server's shared pool at
// most its bound; the rest is returned to the system.
func TestIdleConnectionsKeepNoLargeBuffers(t *testing.T) {
	const clients = 24
	e := openEngine(t, engine.Options{Fsync: engine.FsyncNever})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true})
	big := batchOf(t, string(bytes.Repeat([]byte("m"), 4<<20)))
	for range clients {
		p := mustDial(t, ts, "")
		p.mustProduce(t, "t", big)
	}
	// A body is released just after its answer is written.
	if !waitFor(ioTimeout, func() bool { return ts.budget.used.Load() == 0 }) {
		t.Fatalf("%d request bytes still counted with nothing in flight", ts.budget.used.Load())
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.conns) != clients {
		t.Fatalf("%d connections", len(ts.conns))
	}
	for c := range ts.conns {
		c.freeMu.Lock()
		kept := c.freeBytes
		c.freeMu.Unlock()
		if kept > 64<<10 {
			t.Fatalf("an idle connection keeps %d bytes of body buffers", kept)
		}
	}
	ts.bodies.mu.Lock()
	pooled := ts.bodies.bytes
	ts.bodies.mu.Unlock()
	if pooled > bigPoolBytes {
		t.Fatalf("the shared pool keeps %d bytes, bound %d", pooled, bigPoolBytes)
	}
	t.Logf("%d idle connections after a 4 MiB produce each: pool %d MiB", clients, pooled>>20)

	// Once no large body arrived for poolIdle, the pool gives its
	// mappings back.
	ts.bodies.mu.Lock()
	ts.bodies.lastGet = time.Now().Add(-poolIdle)
	ts.bodies.mu.Unlock()
	ts.bodies.trim()
	ts.bodies.mu.Lock()
	pooled = ts.bodies.bytes
	ts.bodies.mu.Unlock()
	if pooled != 0 {
		t.Fatalf("an idle pool keeps %d bytes", pooled)
	}
}

// Promise: a peer that declares a large body and sends little of it holds
// little of the budget: bytes are counted as they arrive, so the other
// clients' requests are served.
func TestStalledBodyHoldsLittleBudget(t *testing.T) {
	const maxBody = 8 << 20
	e := openEngine(t, engine.Options{Fsync: engine.FsyncNever})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true, MaxBody: maxBody, MaxInFlightBytes: maxBody,
		InFlightBytesWait: 100 * time.Millisecond})
	work := mustDial(t, ts, "")
	stall := mustDial(t, ts, "")
	stall.mustWrite(t, append(header(maxBody, netproto.OpProduce, 0, 0, 7), make([]byte, 100)...))
	waitFor(ioTimeout, func() bool { return ts.budget.used.Load() > 0 })
	if used := ts.budget.used.Load(); used > budgetStep {
		t.Fatalf("a stalled body of 100 bytes holds %d bytes of the budget", used)
	}
	work.mustProduce(t, "t", batchOf(t, string(bytes.Repeat([]byte("w"), 4<<20))))
}
