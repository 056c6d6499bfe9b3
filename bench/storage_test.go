package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkStorage measures what DESIGN.md "Replication", "Storage" decides
// on: whether a cluster node should keep one Raft log for all its groups
// (synced once per round of the node loop, the topic's segments written a
// second time, unsynced) or make each topic's segments its Raft log (one
// write per replica, but a sync per active topic per round).
//
//   - SyncFan: the disk alone. files-N: N files, each appended 4 KiB and
//     fdatasync'd, by N goroutines at once, per round (a sync per topic);
//     shared-N: one file appended N × 4 KiB and fdatasync'd once per round
//     (one sync for all groups); syncfs-N: N files each appended 4 KiB,
//     then one syncfs(2) for the file system (one sync for all topics'
//     segments, but it flushes everything dirty on the file system, other
//     programs' files too). Rounds per second, syncs per second, bytes per
//     second, and this process's CPU per round.
//   - Topics: the brokers. T topics (1, 16, 128), one producer per topic,
//     each with one batch of 10 messages of 100 bytes in flight, durable:
//     haraqa-1node is one broker process with -fsync always (the engine
//     syncs each topic's segment on its own), haraqa-r3 three broker
//     processes, replication 3 (one Raft log synced per round on each
//     node for every group). msgs/s and CPU per message of every broker
//     process and of the clients.
func BenchmarkStorage(b *testing.B) {
	b.Run("SyncFan", func(b *testing.B) {
		for _, n := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("files-%d", n), func(b *testing.B) { syncFan(b, n, fanFiles) })
			b.Run(fmt.Sprintf("shared-%d", n), func(b *testing.B) { syncFan(b, n, fanShared) })
			b.Run(fmt.Sprintf("syncfs-%d", n), func(b *testing.B) { syncFan(b, n, fanSyncfs) })
		}
	})
	b.Run("Topics", func(b *testing.B) {
		for _, t := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("haraqa-1node-%d", t), func(b *testing.B) {
				manyTopicsDurable(b, startProcess(b, "tcp", durable), t)
			})
			b.Run(fmt.Sprintf("haraqa-r3-%d", t), func(b *testing.B) {
				manyTopicsDurable(b, startHaraqaR3(b).(*haraqaBroker), t)
			})
		}
	})
}

type fanMode int

const (
	fanFiles  fanMode = iota // n files, each fdatasync'd
	fanShared                // one file, fdatasync'd once
	fanSyncfs                // n files, one syncfs
)

// syncFan runs rounds of n 4 KiB durable appends (see BenchmarkStorage).
// At most 2,000 rounds and 3 s (a tenth under -short).
func syncFan(b *testing.B, n int, mode fanMode) {
	shared := mode == fanShared
	dir := dataDir(b, "syncfan")
	files := make([]*os.File, n)
	if shared {
		files = files[:1]
	}
	for i := range files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	block := make([]byte, 4096*n)
	for i := range block {
		block[i] = byte(i * 7)
	}
	appendSync := func(f *os.File, p []byte) error {
		if _, err := f.Write(p); err != nil {
			return err
		}
		return syscall.Fdatasync(int(f.Fd()))
	}
	maxRounds, maxTime := 2000, 3*time.Second
	if testing.Short() {
		maxRounds, maxTime = 200, 300*time.Millisecond
	}
	// Workers for the files case, started once: a round is a wake-up and
	// a wait, as a node would hand each topic's sync to its writer.
	var work []chan struct{}
	done := make(chan error, n)
	if mode == fanFiles {
		for _, f := range files {
			c := make(chan struct{})
			work = append(work, c)
			go func() {
				for range c {
					done <- appendSync(f, block[:4096])
				}
			}()
		}
		defer func() {
			for _, c := range work {
				close(c)
			}
		}()
	}
	lat := newLatencies(maxRounds * b.N)
	cpu0 := selfCPU(b)
	b.ResetTimer()
	start := time.Now()
	rounds := 0
	for range b.N {
		deadline := time.Now().Add(maxTime)
		for r := 0; r < maxRounds && time.Now().Before(deadline); r++ {
			t0 := time.Now()
			switch mode {
			case fanShared:
				if err := appendSync(files[0], block); err != nil {
					b.Fatal(err)
				}
			case fanSyncfs:
				for _, f := range files {
					if _, err := f.Write(block[:4096]); err != nil {
						b.Fatal(err)
					}
				}
				if err := syncfs(files[0]); err != nil {
					b.Fatal(err)
				}
			default:
				for _, c := range work {
					c <- struct{}{}
				}
				for range work {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
			}
			lat.add(time.Since(t0))
			rounds++
		}
	}
	d := time.Since(start)
	b.StopTimer()
	cpu := selfCPU(b) - cpu0
	syncs := rounds * len(files)
	if mode == fanSyncfs {
		syncs = rounds
	}
	b.ReportMetric(float64(rounds)/d.Seconds(), "rounds/s")
	b.ReportMetric(float64(syncs)/d.Seconds(), "syncs/s")
	b.ReportMetric(float64(rounds*n*4096)/d.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(rounds), "cpu-us/round")
	b.ReportMetric(float64(cpu.Microseconds())/float64(syncs), "cpu-us/sync")
	b.ReportMetric(float64(lat.percentile(50).Microseconds()), "p50-us/round")
}

// syncfs flushes the file system holding f.
func syncfs(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}

// topicsBatchR3 is the messages in one batch of manyTopicsDurable: small
// batches, so that every round of the broker carries many topics' syncs.
const topicsBatchR3 = 10

// manyTopicsDurable produces 100-byte messages durably to t topics at
// once, one producer per topic (8 client connections shared among them),
// each with one batch in flight, for up to 3 s or 2,000,000 messages, then
// checks that every topic holds what was acknowledged to it.
func manyTopicsDurable(b *testing.B, br *haraqaBroker, t int) {
	sz := size()
	g := newGen(sz.msgSize)
	ctx := workCtx(b)
	sessions := make([]session, min(8, t))
	for i := range sessions {
		sessions[i] = dial(b, br)
	}
	topics := make([]string, t)
	for i := range topics {
		topics[i] = fmt.Sprintf("st%d-%d", i, time.Now().UnixNano()%1e6)
	}
	var mu sync.Mutex
	var next int
	if err := parallel(ctx, len(sessions), func(ctx context.Context, w int) error {
		for {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			if i >= t {
				return nil
			}
			createWithRetry(b, sessions[w], topics[i])
		}
	}); err != nil {
		b.Fatal(err)
	}
	// One message to each topic first (untimed): a cluster's topics have
	// elected their leaders and the clients know them.
	one := make([]byte, sz.msgSize)
	for i, tp := range topics {
		g.fill(one, uint64(i)<<40)
		if err := sessions[i%len(sessions)].Send(ctx, tp, one); err != nil {
			b.Fatal(err)
		}
	}
	maxFor, maxMsgs := 3*time.Second, 2_000_000
	if testing.Short() {
		maxFor, maxMsgs = 200*time.Millisecond, 20_000
	}
	srcs := make([]*idSource, t)
	cpu := startCPU(b, br)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		deadline := time.Now().Add(maxFor)
		for i := range srcs {
			srcs[i] = &idSource{max: uint64(maxMsgs / t), deadline: deadline}
		}
		if err := parallel(ctx, t, func(ctx context.Context, i int) error {
			return sessions[i%len(sessions)].(*haraqaSession).ProduceTopics(ctx, topics[i:i+1],
				srcs[i].withBase(uint64(i+1)<<40), sz.msgSize, topicsBatchR3, 1, g)
		}); err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	b.StopTimer()
	used := cpu.stop(b)
	total := 0
	for i, tp := range topics {
		n, err := sessions[0].Len(ctx, tp)
		if err != nil {
			b.Fatal(err)
		}
		if want := srcs[i].issued() + 1; n != want {
			b.Fatalf("%s holds %d messages, %d were acknowledged", tp, n, want)
		}
		total += srcs[i].issued()
	}
	b.ReportMetric(float64(total)/d.Seconds(), "msgs/s")
	used.report(b, total)
	if len(used.nodes) > 1 {
		// Per node, sorted: which node leads which topic is the cluster's.
		ns := slices.Clone(used.nodes)
		slices.Sort(ns)
		var parts []string
		for _, x := range ns {
			parts = append(parts, fmt.Sprintf("%.2f", float64(x.Microseconds())/float64(max(1, total))))
		}
		b.Logf("CPU-µs per message per node: %s", strings.Join(parts, " "))
	}
}
