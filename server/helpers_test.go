package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// The tests talk to the server over raw sockets with frames built by
// netproto, never through package client: they pin down the wire behaviour
// itself. Every wait is bounded by ioTimeout.

// networks are the transports the end-to-end tests run on.
var networks = []string{"tcp", "unix"}

// ioTimeout bounds every read and write a test client does.
const ioTimeout = 10 * time.Second

// modes are the consume modes, by name.
var modes = []ConsumeMode{ConsumeWritev, ConsumeSendfile}

func modeName(m ConsumeMode) string {
	if m == ConsumeSendfile {
		return "sendfile"
	}
	return "writev"
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openEngine opens an engine in a fresh temp dir (unless opts.Dir is set)
// and closes it when the test ends.
func openEngine(t testing.TB, opts engine.Options) *engine.Engine {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	e, err := engine.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testServer is a Server serving one listener on a goroutine.
type testServer struct {
	*Server
	e       *engine.Engine
	network string
	addr    string
	served  chan error // Serve's result
}

// listen opens a listener on 127.0.0.1 or on a Unix socket in a temp dir.
func listen(t testing.TB, network string) net.Listener {
	t.Helper()
	var addr string
	switch network {
	case "tcp":
		addr = "tcp://127.0.0.1:0"
	case "unix":
		addr = "unix://" + filepath.Join(t.TempDir(), "s.sock")
	default:
		t.Fatalf("unknown network %q", network)
	}
	l, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startServer serves e on a new listener of the given network. The server
// is closed when the test ends, and Serve must have returned by then.
func startServer(t testing.TB, e *engine.Engine, network string, opts Options) *testServer {
	t.Helper()
	l := listen(t, network)
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	ts := &testServer{Server: New(e, opts), e: e, network: network, addr: l.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- ts.Serve(l) }()
	t.Cleanup(func() {
		ts.Close()
		select {
		case <-ts.served:
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return ts
}

// peer is a protocol client on a raw socket. Its methods return errors
// rather than failing the test, so that goroutines may use them; the
// must* helpers fail the test.
type peer struct {
	nc   net.Conn
	wbuf []byte
	rbuf []byte
	next uint64 // last request id used
}

func dialPeer(network, addr string) (*peer, error) {
	nc, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	return &peer{nc: nc, rbuf: make([]byte, 0, 64<<10)}, nil
}

func (p *peer) Close() error { return p.nc.Close() }

// writeRaw writes bytes as they are.
func (p *peer) writeRaw(b []byte) error {
	p.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := p.nc.Write(b)
	return err
}

// send writes one request frame.
func (p *peer) send(op netproto.Opcode, id uint64, msg netproto.Encoder) error {
	p.wbuf = netproto.AppendFrame(p.wbuf[:0], netproto.Header{Opcode: op, RequestID: id}, msg)
	return p.writeRaw(p.wbuf)
}

// recv reads one response frame within timeout. The body aliases the
// peer's buffer until the next recv.
func (p *peer) recv(timeout time.Duration) (netproto.Header, []byte, error) {
	p.nc.SetReadDeadline(time.Now().Add(timeout))
	h, body, err := netproto.ReadResponse(p.nc, netproto.DefaultMaxBody, p.rbuf)
	if cap(body) > cap(p.rbuf) {
		p.rbuf = body[:0]
	}
	return h, body, err
}

// call sends one request with a fresh id and reads its answer, which must
// echo the id and opcode; watch events before it are skipped. A non-OK status comes back as a *netproto.Error.
func (p *peer) call(op netproto.Opcode, msg netproto.Encoder) ([]byte, error) {
	p.next++
	if err := p.send(op, p.next, msg); err != nil {
		return nil, err
	}
	h, body, err := p.recv(ioTimeout)
	// Watch events are pushes, not answers: a test that wants them reads
	// them with recv; call skips them (a bounded number).
	for i := 0; err == nil && h.Opcode == netproto.OpWatchEvent && i < 1000; i++ {
		h, body, err = p.recv(ioTimeout)
	}
	if err != nil {
		return nil, err
	}
	if h.RequestID != p.next || h.Opcode != op {
		return nil, fmt.Errorf("answer %v id %d to %v id %d", h.Opcode, h.RequestID, op, p.next)
	}
	if h.Status != netproto.CodeOK {
		return nil, netproto.DecodeError(h.Status, body)
	}
	return body, nil
}

// callInto is call that decodes a success into out.
func (p *peer) callInto(op netproto.Opcode, msg netproto.Encoder, out netproto.Message) error {
	body, err := p.call(op, msg)
	if err != nil {
		return err
	}
	return out.Decode(body)
}

func (p *peer) hello(token string) (netproto.HelloResponse, error) {
	var resp netproto.HelloResponse
	err := p.callInto(netproto.OpHello, &netproto.HelloRequest{Version: netproto.ProtocolVersion, Token: []byte(token)}, &resp)
	return resp, err
}

func (p *peer) produce(topic string, batch []byte) (netproto.ProduceResponse, error) {
	var resp netproto.ProduceResponse
	err := p.callInto(netproto.OpProduce, &netproto.ProduceRequest{Topic: []byte(topic), Batch: batch}, &resp)
	return resp, err
}

// consume returns the response with Batches copied out of the read buffer.
func (p *peer) consume(req netproto.ConsumeRequest) (netproto.ConsumeResponse, error) {
	var resp netproto.ConsumeResponse
	err := p.callInto(netproto.OpConsume, &req, &resp)
	resp.Batches = append([]byte(nil), resp.Batches...)
	return resp, err
}

func (p *peer) offsets(topic string, tm int64) (netproto.OffsetsResponse, error) {
	var resp netproto.OffsetsResponse
	err := p.callInto(netproto.OpOffsets, &netproto.OffsetsRequest{Topic: []byte(topic), Time: tm}, &resp)
	return resp, err
}

// expectEnd reads until the server ends the connection and returns the
// frames it sent first: at most max of them, else an error.
func (p *peer) expectEnd(maxFrames int, timeout time.Duration) ([]netproto.Header, []*netproto.Error, error) {
	var hs []netproto.Header
	var errs []*netproto.Error
	deadline := time.Now().Add(timeout)
	for {
		h, body, err := p.recv(time.Until(deadline))
		if errors.Is(err, io.EOF) || isReset(err) {
			return hs, errs, nil
		}
		if err != nil {
			return hs, errs, fmt.Errorf("after %d frames: %w", len(hs), err)
		}
		hs = append(hs, h)
		var pe *netproto.Error
		if h.Status != netproto.CodeOK {
			pe = netproto.DecodeError(h.Status, body)
		}
		errs = append(errs, pe)
		if len(hs) > maxFrames {
			return hs, errs, fmt.Errorf("%d frames before the connection closed, want at most %d", len(hs), maxFrames)
		}
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// mustDial dials ts, does the Hello exchange with token and closes the
// peer when the test ends.
func mustDial(t testing.TB, ts *testServer, token string) *peer {
	t.Helper()
	p := mustDialRaw(t, ts)
	p.mustHello(t, token)
	return p
}

// mustDialRaw dials ts without a Hello.
func mustDialRaw(t testing.TB, ts *testServer) *peer {
	t.Helper()
	p, err := dialPeer(ts.network, ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// expectRefused checks that the next frame is one error of the given code
// and that the server then closes the connection.
func expectRefused(t testing.TB, p *peer, code netproto.Code) *netproto.Error {
	t.Helper()
	hs, errs, err := p.expectEnd(1, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || errs[0] == nil || errs[0].Code != code {
		t.Fatalf("got frames %+v errors %v, want one %v error then close", hs, errs, code)
	}
	return errs[0]
}

// wantCode checks that err is a protocol error of the given code.
func wantCode(t testing.TB, err error, code netproto.Code) *netproto.Error {
	t.Helper()
	var pe *netproto.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("got error %v, want code %v", err, code)
	}
	return pe
}

// The must* methods fail the test on any error, from the test goroutine.

func (p *peer) mustSend(t testing.TB, op netproto.Opcode, id uint64, msg netproto.Encoder) {
	t.Helper()
	if err := p.send(op, id, msg); err != nil {
		t.Fatalf("send %v: %v", op, err)
	}
}

func (p *peer) mustWrite(t testing.TB, b []byte) {
	t.Helper()
	if err := p.writeRaw(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (p *peer) mustCall(t testing.TB, op netproto.Opcode, msg netproto.Encoder, out netproto.Message) {
	t.Helper()
	var err error
	if out != nil {
		err = p.callInto(op, msg, out)
	} else {
		_, err = p.call(op, msg)
	}
	if err != nil {
		t.Fatalf("%v: %v", op, err)
	}
}

func (p *peer) mustHello(t testing.TB, token string) netproto.HelloResponse {
	t.Helper()
	resp, err := p.hello(token)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	return resp
}

func (p *peer) mustProduce(t testing.TB, topic string, batch []byte) netproto.ProduceResponse {
	t.Helper()
	resp, err := p.produce(topic, batch)
	if err != nil {
		t.Fatalf("produce to %q: %v", topic, err)
	}
	return resp
}

func (p *peer) mustConsume(t testing.TB, req netproto.ConsumeRequest) netproto.ConsumeResponse {
	t.Helper()
	resp, err := p.consume(req)
	if err != nil {
		t.Fatalf("consume %q at %d: %v", req.Topic, req.Offset, err)
	}
	return resp
}

func (p *peer) mustOffsets(t testing.TB, topic string, tm int64) netproto.OffsetsResponse {
	t.Helper()
	resp, err := p.offsets(topic, tm)
	if err != nil {
		t.Fatalf("offsets of %q: %v", topic, err)
	}
	return resp
}

// nowAfter returns a time strictly after every append time stamped so far
// and waits until the clock has passed it, so that the next append is
// stamped later.
func nowAfter(t testing.TB) int64 {
	t.Helper()
	tm := time.Now().UnixNano()
	if !waitFor(time.Second, func() bool { return time.Now().UnixNano() > tm }) {
		t.Fatal("the clock does not move")
	}
	return tm
}

// batchOf builds one batch of msgs.
func batchOf(t testing.TB, msgs ...string) []byte {
	t.Helper()
	bs := make([][]byte, len(msgs))
	for i, m := range msgs {
		bs[i] = []byte(m)
	}
	b, err := record.AppendBatch(nil, bs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// message is one stored message with its offset.
type message struct {
	off uint64
	val string
}

// decodeBatches verifies back-to-back batches and returns their messages.
func decodeBatches(b []byte) ([]message, error) {
	var out []message
	sc := record.NewScanner(b)
	for sc.Next() {
		h := sc.Header()
		it := record.Messages(sc.Batch(), h)
		off := h.BaseOffset
		for {
			m, ok := it.Next()
			if !ok {
				break
			}
			out = append(out, message{off, string(m)})
			off++
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if off != h.NextOffset() {
			return nil, fmt.Errorf("batch at %d holds %d messages, header says %d", h.BaseOffset, off-h.BaseOffset, h.Count)
		}
	}
	return out, sc.Err()
}

// engineMessages reads every message of topic straight from the engine.
func engineMessages(t testing.TB, e *engine.Engine, topic string) []message {
	t.Helper()
	start, end, err := e.Offsets(topic)
	if err != nil {
		t.Fatal(err)
	}
	var res engine.ReadResult
	defer res.Release()
	var out []message
	for off := start; off < end; {
		if err := e.Read(topic, off, end-off, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
		for _, ch := range res.Chunks {
			ms, err := decodeBatches(ch.Data())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.off >= off {
					out = append(out, m)
				}
			}
		}
		off = res.Next()
	}
	return out
}

// waitFor polls cond every 5ms until it holds or timeout passes; for
// states nothing can be awaited on (a server goroutine finishing).
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shutdown shuts ts down within ioTimeout and checks Serve's result.
func shutdown(t testing.TB, ts *testServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-ts.served:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
		ts.served <- err // for the cleanup
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return after Shutdown")
	}
}
