package bench

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkR3: three-node clusters on this machine, every message on
// three replicas, each synced before the ack. haraqa-r3: three broker
// processes (-node-id, -peers; fsync=always, Raft log synced on every
// node), clients given the seed list (each connects to a random node;
// followers forward to the leader). nats-r3: three embedded NATS servers
// in a cluster, JetStream R3 streams, file storage, sync always.
//
//   - W5-R3: 8 producers, 100-byte messages, batches and in-flight as W5,
//     for 2 s; every message read back and checked.
//   - W4D-R3: one producer, one message at a time: the latency of one
//     replicated durable append.
func BenchmarkR3(b *testing.B) {
	for _, s := range []struct {
		name  string
		start func(b *testing.B) broker
	}{{"haraqa-r3", startHaraqaR3}, {"nats-r3", startNATSR3}} {
		b.Run(s.name, func(b *testing.B) {
			br := s.start(b)
			b.Run("W5-R3", func(b *testing.B) { w5r3(b, br) })
			b.Run("W4D-R3", func(b *testing.B) { w4dr3(b, br) })
		})
	}
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startHaraqaR3 starts a three-node cluster. Its cluster ports are picked
// free before the nodes start, so another process can take one meanwhile:
// the start is then tried again with new ports (at most 3 times).
func startHaraqaR3(b *testing.B) broker {
	for attempt := 1; ; attempt++ {
		var peers []string
		for i := 1; i <= 3; i++ {
			peers = append(peers, fmt.Sprintf("%d=%s", i, freeAddr(b)))
		}
		var addrs []string
		var pids []int
		var started []*haraqaBroker
		var err error
		for i := 1; i <= 3 && err == nil; i++ {
			var h *haraqaBroker
			h, err = tryStartProcess(b, "tcp", durable, "-node-id", fmt.Sprint(i), "-peers", strings.Join(peers, ","))
			if err == nil {
				started = append(started, h)
				addrs = append(addrs, strings.TrimPrefix(h.addr, "tcp://"))
				pids = append(pids, h.pid)
			}
		}
		if err == nil {
			return &haraqaBroker{addr: "tcp://" + strings.Join(addrs, ","), pids: pids}
		}
		for _, h := range started {
			h.stop()
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			b.Fatal(err)
		}
		b.Logf("a cluster port was taken before its node bound it; starting the cluster again with new ports")
	}
}

func startNATSR3(b *testing.B) broker {
	var routes []*url.URL
	var cports []int
	for range 3 {
		_, port, _ := net.SplitHostPort(freeAddr(b))
		var p int
		fmt.Sscan(port, &p)
		cports = append(cports, p)
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var urls []string
	for i := range 3 {
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("bench-%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   dataDir(b, "nats-r3"),
			SyncAlways: true,
			MaxPayload: 8 << 20,
			NoLog:      true,
			NoSigs:     true,
			Cluster:    natsserver.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: cports[i]},
			Routes:     routes,
		}
		ns, err := natsserver.NewServer(opts)
		if err != nil {
			b.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(20 * time.Second) {
			ns.Shutdown()
			b.Fatal("nats: server not ready in 20s")
		}
		b.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		urls = append(urls, ns.ClientURL())
	}
	return &natsR3{url: strings.Join(urls, ",")}
}

type natsR3 struct{ url string }

func (n *natsR3) Dial(ctx context.Context) (session, error) {
	nc, err := nats.Connect(n.url, nats.Timeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsR3Session{&natsSession{nc: nc, js: js}}, nil
}

type natsR3Session struct{ *natsSession }

// CreateTopic creates an R3 stream, retrying while the JetStream cluster
// elects its meta leader.
func (s *natsR3Session) CreateTopic(ctx context.Context, topic string) error {
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = s.js.CreateStream(actx, jetstream.StreamConfig{Name: topic, Subjects: []string{topic},
			Storage: jetstream.FileStorage, Replicas: 3})
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// createWithRetry creates topic, retrying while a cluster elects leaders.
func createWithRetry(b *testing.B, s session, topic string) {
	ctx := workCtx(b)
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = s.CreateTopic(ctx, topic); err == nil {
			return
		}
	}
	b.Fatal(err)
}

func w5r3(b *testing.B, br broker) {
	sz := size()
	g := newGen(sz.msgSize)
	ctx := workCtx(b)
	topic := fmt.Sprintf("w5r3-%d", time.Now().UnixNano()%1e6)
	sessions := make([]session, w5Producers)
	for i := range sessions {
		sessions[i] = dial(b, br)
	}
	createWithRetry(b, sessions[0], topic)
	var srcs []*idSource
	b.ReportAllocs()
	cpu := startCPU(b, br)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		round := make([]*idSource, w5Producers)
		deadline := time.Now().Add(sz.w5For)
		for p := range round {
			round[p] = &idSource{max: uint64(sz.w5Max), deadline: deadline}
		}
		err := parallel(ctx, w5Producers, func(ctx context.Context, p int) error {
			return sessions[p].Produce(ctx, topic, round[p].withBase(uint64(len(srcs)+p)<<40), sz.msgSize, depth, g)
		})
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, round...)
	}
	d := time.Since(start)
	b.StopTimer()
	used := cpu.stop(b)
	total := verifyProducers(b, sessions[0], g, topic, srcs, sz.msgSize)
	reportRate(b, total, sz.msgSize, d)
	used.report(b, total)
}

// cpuMeter measures the CPU time (user+system) each broker process of a
// cluster and this benchmark process (the clients) use over a run.
type cpuMeter struct {
	pids   []int
	nodes  []time.Duration
	client time.Duration
}

func startCPU(b *testing.B, br broker) *cpuMeter {
	m := &cpuMeter{client: selfCPU(b)}
	if h, ok := br.(*haraqaBroker); ok {
		m.pids = h.pids
		if len(m.pids) == 0 && h.pid != 0 {
			m.pids = []int{h.pid}
		}
	}
	for _, pid := range m.pids {
		m.nodes = append(m.nodes, procCPU(b, pid))
	}
	return m
}

// stop returns the CPU time used since startCPU.
func (m *cpuMeter) stop(b *testing.B) *cpuMeter {
	u := &cpuMeter{pids: m.pids, client: selfCPU(b) - m.client}
	for i, pid := range m.pids {
		u.nodes = append(u.nodes, procCPU(b, pid)-m.nodes[i])
	}
	return u
}

// report reports CPU-µs per message: of the busiest and the least busy
// broker process (for a cluster: the leader and a follower, when one node
// leads every topic), of all broker processes together, and of this
// process (the clients, and for in-process systems the broker too).
func (u *cpuMeter) report(b *testing.B, msgs int) {
	if msgs == 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(msgs) }
	if len(u.nodes) > 0 {
		lo, hi, sum := u.nodes[0], u.nodes[0], time.Duration(0)
		for _, d := range u.nodes {
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		b.ReportMetric(per(hi), "node-max-cpu-us/msg")
		b.ReportMetric(per(lo), "node-min-cpu-us/msg")
		b.ReportMetric(per(sum), "nodes-cpu-us/msg")
	}
	b.ReportMetric(per(u.client), "client-cpu-us/msg")
}

func w4dr3(b *testing.B, br broker) {
	sz := size()
	g := newGen(sz.msgSize)
	ctx := workCtx(b)
	s := dial(b, br)
	topic := fmt.Sprintf("w4dr3-%d", time.Now().UnixNano()%1e6)
	createWithRetry(b, s, topic)
	msg := make([]byte, sz.msgSize)
	total := max(1, b.N*sz.w4Msgs/5)
	for i := range 100 {
		g.fill(msg, uint64(total+i))
		if err := s.Send(ctx, topic, msg); err != nil {
			b.Fatal(err)
		}
	}
	lat := newLatencies(total)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		g.fill(msg, uint64(i))
		t0 := time.Now()
		if err := s.Send(ctx, topic, msg); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	d := time.Since(start)
	b.StopTimer()
	verifyTopic(b, s, g, topic, total+100, sz.msgSize)
	reportRate(b, total, sz.msgSize, d)
	lat.report(b)
}
