package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var quiet = slog.New(slog.DiscardHandler)

// testBroker is an engine behind a Kafka listener on a loopback port.
type testBroker struct {
	e    *engine.Engine
	s    *Server
	addr string
}

func startBroker(t testing.TB, opts Options) *testBroker {
	t.Helper()
	e, err := engine.Open(engine.Options{Dir: t.TempDir(), Logger: quiet, Fsync: engine.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s := New(e, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		e.Close()
	})
	return &testBroker{e: e, s: s, addr: ln.Addr().String()}
}

// rawClient speaks Kafka frames with kmsg, one request at a time unless
// the test pipelines by hand.
type rawClient struct {
	t    testing.TB
	c    net.Conn
	r    *bufio.Reader
	corr int32
	f    *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, r: bufio.NewReader(c), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("test"))}
}

// send writes req at its set version and returns its correlation id.
func (rc *rawClient) send(req kmsg.Request) int32 {
	rc.t.Helper()
	rc.corr++
	if _, err := rc.c.Write(rc.f.AppendRequest(nil, req, rc.corr)); err != nil {
		rc.t.Fatal(err)
	}
	return rc.corr
}

// readFrame reads one response frame: correlation id and the rest.
func (rc *rawClient) readFrame() (int32, []byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(rc.r, size[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.r, b); err != nil {
		return 0, nil, err
	}
	if len(b) < 4 {
		return 0, nil, errors.New("short frame")
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

// do sends req and decodes its answer at the same version.
func (rc *rawClient) do(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	corr := rc.send(req)
	got, body, err := rc.readFrame()
	if err != nil {
		rc.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if got != corr {
		rc.t.Fatalf("correlation %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		if len(body) == 0 || body[0] != 0 {
			rc.t.Fatalf("flexible response header: %x", body[:min(len(body), 4)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		rc.t.Fatalf("decode %s v%d answer: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}
