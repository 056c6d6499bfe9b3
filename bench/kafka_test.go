package bench

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/kafka"
	"github.com/haraqa/haraqa/server"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkKafka: the Kafka listener (package kafka) next to the native
// protocol, one broker in this process serving both (engine with
// fsync=never, as W1; listeners with their defaults):
//
//   - produce 1,000,000 messages of 100 bytes: native, 1,000-message
//     batches over 4 client connections (one Produce in flight on each);
//     franz-go (kgo), one client, its defaults (idempotent, acks=all,
//     batches up to 1 MB) but no compression (its default is snappy; the
//     native client sends uncompressed batches too); kcat, the lines from
//     stdin (librdkafka's defaults: no compression).
//   - fetch them back, each from its own topic: native Consume, 10,000 a
//     request, one connection; franz-go, one consumer; kcat -C -e.
//
// msgs/s, and cpu-µs/msg: the CPU time of this process (client and
// broker together) and of its children (kcat) per message, which a
// machine shared with other work does not inflate as much as wall time.
// Every run checks the topic's length after producing and the
// count, order and content of what it read (kcat: its output byte for
// byte). kcat missing: its rows are skipped.
func BenchmarkKafka(b *testing.B) {
	total := 1_000_000
	if testing.Short() {
		total = 10_000
	}
	const size, perBatch, conns, perRead = 100, 1000, 4, 10_000
	quiet := slog.New(slog.DiscardHandler)
	e, err := engine.Open(engine.Options{Dir: dataDir(b, "haraqa-kafka"), Fsync: engine.FsyncNever, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	nl, err := server.Listen("tcp://127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(e, server.Options{AutoCreateTopics: true, Logger: quiet})
	go srv.Serve(nl)
	defer srv.Close()
	kl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ks := kafka.New(e, kafka.Options{AutoCreateTopics: true, Logger: quiet})
	go ks.Serve(kl)
	defer ks.Close()
	native, kaddr := "tcp://"+nl.Addr().String(), kl.Addr().String()

	// Message i: "%09d" then 'x' up to 100 bytes.
	values := make([][]byte, total)
	var lines bytes.Buffer
	for i := range values {
		v := fmt.Appendf(nil, "%09d", i)
		v = append(v, bytes.Repeat([]byte("x"), size-len(v))...)
		values[i] = v
		lines.Write(v)
		lines.WriteByte('\n')
	}
	check := func(b *testing.B, i int, v []byte) {
		if i >= total || !bytes.Equal(v, values[i]) {
			b.Fatalf("message %d: %q", i, v)
		}
	}
	kcatPath, kcatErr := exec.LookPath("kcat")
	last := map[string]string{}
	for _, via := range []string{"native", "franz-go", "kcat"} {
		b.Run("produce/"+via, func(b *testing.B) {
			if via == "kcat" && kcatErr != nil {
				skipMissing(b, "kcat is not installed (apt-get install -y kcat)")
			}
			for i := 0; i < b.N; i++ {
				kafkaRuns++
				topic := "kafka-" + via + "-" + strconv.Itoa(kafkaRuns)
				last[via] = topic
				ctx := workCtx(b)
				var d time.Duration
				var cpu cpuClock
				cpu.start()
				switch via {
				case "native":
					cs := make([]*client.Client, conns)
					for j := range cs {
						c, err := client.Dial(ctx, native)
						if err != nil {
							b.Fatal(err)
						}
						defer c.Close()
						cs[j] = c
					}
					_, d = feed(b, total/perBatch, conns, func(w, j int) error {
						_, err := cs[w].Produce(ctx, topic, values[j*perBatch:(j+1)*perBatch]...)
						return err
					})
				case "franz-go":
					cl, err := kgo.NewClient(kgo.SeedBrokers(kaddr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic),
						kgo.MaxBufferedRecords(total), kgo.ProducerBatchCompression(kgo.NoCompression()))
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					for _, v := range values {
						cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
							if err != nil {
								b.Errorf("produce: %v", err)
							}
						})
					}
					if err := cl.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					d = time.Since(start)
					cl.Close()
				case "kcat":
					cmd := exec.CommandContext(ctx, kcatPath, "-b", kaddr, "-P", "-t", topic)
					cmd.Stdin = bytes.NewReader(lines.Bytes())
					start := time.Now()
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("kcat: %v\n%s", err, out)
					}
					d = time.Since(start)
				}
				if _, end, err := e.Offsets(topic); err != nil || end != uint64(total) {
					b.Fatalf("%s holds %d messages (%v), want %d", topic, end, err, total)
				}
				reportRate(b, total, size, d)
				cpu.report(b, total)
			}
		})
	}
	for _, via := range []string{"native", "franz-go", "kcat"} {
		b.Run("fetch/"+via, func(b *testing.B) {
			if via == "kcat" && kcatErr != nil {
				skipMissing(b, "kcat is not installed (apt-get install -y kcat)")
			}
			for i := 0; i < b.N; i++ {
				topic := last[via]
				ctx := workCtx(b)
				var d time.Duration
				var cpu cpuClock
				cpu.start()
				switch via {
				case "native":
					c, err := client.Dial(ctx, native)
					if err != nil {
						b.Fatal(err)
					}
					var buf client.ConsumeBuffer
					seen := 0
					tr := newTracker(total) // 4 connections produced: batches in any order
					start := time.Now()
					for next := uint64(0); next < uint64(total); {
						ms, err := c.Consume(ctx, topic, next, perRead, &buf)
						if err != nil {
							b.Fatal(err)
						}
						for m := range ms.All() {
							id, err := strconv.Atoi(string(m.Value[:min(9, len(m.Value))]))
							if err != nil || tr.add(uint64(id)) != nil {
								b.Fatalf("message %d: %q: not one sent, or read twice", seen, m.Value)
							}
							check(b, id, m.Value)
							seen++
						}
						next = ms.Next()
					}
					d = time.Since(start)
					c.Close()
				case "franz-go":
					cl, err := kgo.NewClient(kgo.SeedBrokers(kaddr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
					if err != nil {
						b.Fatal(err)
					}
					seen := 0
					start := time.Now()
					for seen < total {
						fs := cl.PollFetches(ctx)
						if ctx.Err() != nil {
							b.Fatalf("read %d of %d: %v", seen, total, ctx.Err())
						}
						fs.EachError(func(t string, p int32, err error) { b.Fatalf("fetch: %v", err) })
						fs.EachRecord(func(r *kgo.Record) {
							check(b, seen, r.Value)
							seen++
						})
					}
					d = time.Since(start)
					cl.Close()
				case "kcat":
					cmd := exec.CommandContext(ctx, kcatPath, "-b", kaddr, "-C", "-t", topic, "-e", "-q")
					start := time.Now()
					out, err := cmd.Output()
					if err != nil {
						b.Fatalf("kcat: %v", err)
					}
					d = time.Since(start)
					if !bytes.Equal(out, lines.Bytes()) {
						b.Fatalf("kcat read %d bytes, want %d identical", len(out), lines.Len())
					}
				}
				reportRate(b, total, size, d)
				cpu.report(b, total)
			}
		})
	}
}

// cpuClock measures the CPU time of this process and its waited-for
// children between start and report.
type cpuClock struct{ at time.Duration }

func cpuNow() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

func (c *cpuClock) start() { c.at = cpuNow() }

func (c *cpuClock) report(b *testing.B, n int) {
	b.ReportMetric(float64((cpuNow()-c.at).Microseconds())/float64(n), "cpu-µs/msg")
}

// kafkaRuns numbers BenchmarkKafka's topics across -count runs.
var kafkaRuns int

// skipMissing skips a benchmark whose third-party program is missing, or
// fails it under HARAQA_REQUIRE_TOOLS=1 (.ci/run, after .ci/install-deps),
// so that CI never passes a benchmark by not running it.
func skipMissing(b *testing.B, reason string) {
	b.Helper()
	if os.Getenv("HARAQA_REQUIRE_TOOLS") == "1" {
		b.Fatal("HARAQA_REQUIRE_TOOLS=1 and " + reason)
	}
	b.Skip(reason)
}
