package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/internal/testtls"
	"github.com/haraqa/haraqa/server"
)

// tlsBroker is an in-process haraqa broker whose TCP listener speaks TLS
// (TLS 1.3, ECDSA P-256 certificate from a test CA; no client
// certificate); Dial trusts that CA.
type tlsBroker struct {
	haraqaBroker
	cfg *tls.Config
}

func (h *tlsBroker) Dial(ctx context.Context) (session, error) {
	c, err := client.Dial(ctx, h.addr, client.WithTLSConfig(h.cfg))
	if err != nil {
		return nil, err
	}
	return &haraqaSession{c: c}, nil
}

// startInProcess serves an engine with relaxed durability on a loopback
// TCP listener, wrapped in TLS when cfg is set, as inProcess does.
func startInProcess(b *testing.B, cfg *tls.Config) string {
	quiet := slog.New(slog.DiscardHandler)
	e, err := engine.Open(engine.Options{Dir: dataDir(b, "haraqa"), Fsync: policy(relaxed), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	var l net.Listener
	l, err = server.Listen("tcp://127.0.0.1:0")
	if err != nil {
		e.Close()
		b.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	if cfg != nil {
		l, addr = tls.NewListener(l, cfg), "tls://"+l.Addr().String()
	}
	srv := server.New(e, server.Options{AutoCreateTopics: true, Logger: quiet})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, server.ErrServerClosed) {
			b.Errorf("serve: %v", err)
		}
		e.Close()
	})
	return addr
}

// BenchmarkTLS: W1 (1,000,000 100-byte messages in batches of 1,000, 4
// in flight, relaxed durability) and W2 (consume them back, verified)
// against two in-process brokers of one build, one on plain TCP and one
// on TLS, in alternating rounds (and alternating which goes first), so
// that load on the shared machine falls on both alike. Reported: the
// median msgs/s of each and tls/tcp, the ratio of the medians, and the
// median CPU time this process (client and broker both) spent per message,
// which the machine's other load disturbs less than the rate.
func BenchmarkTLS(b *testing.B) {
	rounds := 5
	sz := size()
	if testing.Short() {
		rounds = 1
	}
	ca := testtls.NewCA(b, "bench CA")
	pair := ca.Server(b, "bench")
	plain := &haraqaBroker{addr: startInProcess(b, nil)}
	secure := &tlsBroker{haraqaBroker: haraqaBroker{addr: startInProcess(b, &tls.Config{Certificates: []tls.Certificate{pair.TLS}})},
		cfg: &tls.Config{RootCAs: ca.Pool()}}
	g := newGen(sz.msgSize)
	rates := map[string]map[string][]float64{"tcp": {}, "tls": {}}
	cpu := map[string]map[string][]float64{"tcp": {}, "tls": {}} // µs of this process's CPU per message
	for b.Loop() {
		for r := range rounds {
			order := []string{"tcp", "tls"}
			if r%2 == 1 {
				order = []string{"tls", "tcp"}
			}
			for _, name := range order {
				var br broker = plain
				if name == "tls" {
					br = secure
				}
				w1, w2, c1, c2 := tlsRound(b, br, g, sz.w1Msgs, sz.msgSize)
				rates[name]["W1"] = append(rates[name]["W1"], w1)
				rates[name]["W2"] = append(rates[name]["W2"], w2)
				cpu[name]["W1"] = append(cpu[name]["W1"], c1)
				cpu[name]["W2"] = append(cpu[name]["W2"], c2)
			}
		}
	}
	for _, w := range []string{"W1", "W2"} {
		tcp, tl := medianOf(rates["tcp"][w]), medianOf(rates["tls"][w])
		b.ReportMetric(tcp, w+"-tcp-msgs/s")
		b.ReportMetric(tl, w+"-tls-msgs/s")
		b.ReportMetric(tl/tcp, w+"-tls/tcp")
		ctcp, ctls := medianOf(cpu["tcp"][w]), medianOf(cpu["tls"][w])
		b.ReportMetric(ctcp, w+"-tcp-cpu-µs/msg")
		b.ReportMetric(ctls, w+"-tls-cpu-µs/msg")
		b.Logf("%s msgs/s, plain TCP: %s; CPU µs/msg %.3v", w, millions(rates["tcp"][w]), cpu["tcp"][w])
		b.Logf("%s msgs/s, TLS:       %s; CPU µs/msg %.3v", w, millions(rates["tls"][w]), cpu["tls"][w])
	}
}

// tlsRound produces n messages into a new topic of br, reads them back
// verified, deletes the topic and returns both rates and the process's CPU
// µs per message in each.
func tlsRound(b *testing.B, br broker, g *gen, n, size int) (w1, w2, cpu1, cpu2 float64) {
	b.Helper()
	ctx := workCtx(b)
	s := dial(b, br)
	topic := fmt.Sprintf("tls-%d", time.Now().UnixNano())
	if err := s.CreateTopic(ctx, topic); err != nil {
		b.Fatal(err)
	}
	c0, start := selfCPU(b), time.Now()
	if err := s.Produce(ctx, topic, &idSource{max: uint64(n)}, size, depth, g); err != nil {
		b.Fatal(err)
	}
	w1, cpu1 = float64(n)/time.Since(start).Seconds(), float64((selfCPU(b)-c0).Microseconds())/float64(n)
	tr, check := verifier(g, size, n)
	c0, start = selfCPU(b), time.Now()
	if err := s.Read(ctx, topic, n, size, check); err != nil {
		b.Fatal(err)
	}
	w2, cpu2 = float64(n)/time.Since(start).Seconds(), float64((selfCPU(b)-c0).Microseconds())/float64(n)
	if err := tr.complete(); err != nil {
		b.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, topic); err != nil {
		b.Fatal(err)
	}
	return w1, w2, cpu1, cpu2
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
