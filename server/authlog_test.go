package server

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// countLines counts the log records whose message starts with prefix.
type countLines struct {
	prefix string
	n      *atomic.Int64
}

func (h countLines) Enabled(context.Context, slog.Level) bool { return true }
func (h countLines) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countLines) WithGroup(string) slog.Handler      { return h }

// A client hammering the broker with wrong tokens cannot flood its log:
// refused Hellos are logged at most one line a second (the next line
// counts the ones left out), and every one is still refused.
func TestRefusedHellosLogRateLimited(t *testing.T) {
	e := openEngine(t, engine.Options{})
	var lines atomic.Int64
	ts := startServer(t, e, "tcp", Options{Token: "s3cret", Logger: slog.New(countLines{"server: refused a connection", &lines})})
	const tries = 200
	start := time.Now()
	for range tries {
		p := mustDialRaw(t, ts)
		p.mustSend(t, netproto.OpHello, 1, &netproto.HelloRequest{Version: 1, Token: []byte("wrong")})
		expectRefused(t, p, netproto.CodeUnauthorized)
		p.Close()
	}
	// One line per started second of the run at most.
	limit := int64(time.Since(start)/time.Second) + 1
	if n := lines.Load(); n < 1 || n > limit {
		t.Fatalf("%d refused Hellos logged %d lines in %v, want 1..%d", tries, n, time.Since(start), limit)
	}
}
