package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// countLines counts the lines of a /proc file (mappings).
func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	return bytes.Count(b, []byte("\n"))
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// BenchmarkOpenManyTopics measures that opening a many-topic
// data directory (many topics and segments) takes bounded time,
// descriptors and mappings. Full size is 10,000 topics × 10 segments
// (100,000 segments), built on tmpfs when /dev/shm exists; -short uses 200
// topics × 4 segments. Reported: open time, and the descriptors, mappings
// and goroutines the open engine holds beyond the process's baseline.
func BenchmarkOpenManyTopics(b *testing.B) {
	topics, segs := 10000, 10
	if testing.Short() {
		topics, segs = 200, 4
	}
	root := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "haraqa-scale-"); err == nil {
			root = d
			b.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	if root == "" {
		root = b.TempDir()
	}
	opts := Options{Dir: root, Fsync: FsyncNever, SegmentEntries: 1, SegmentBytes: 1 << 20,
		ScrubBytesPerSec: -1, Logger: quietLogger()}
	e, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	batch := batchOf(b, msgBytes(1, 100))
	start := time.Now()
	for i := range topics {
		name := fmt.Sprintf("topic-%05d", i)
		if err := e.CreateTopic(name); err != nil {
			b.Fatal(err)
		}
		for range segs {
			if _, err := e.Append(context.Background(), name, bytes.Clone(batch)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d topics × %d segments in %v under %s", topics, segs, time.Since(start).Round(time.Millisecond), root)
	fds0, maps0, g0 := countFDs(), countLines("/proc/self/maps"), runtime.NumGoroutine()
	var fds, maps, gs int
	b.ResetTimer()
	for range b.N {
		e, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fds, maps, gs = countFDs()-fds0, countLines("/proc/self/maps")-maps0, runtime.NumGoroutine()-g0
		if n := len(e.Topics("")); n != topics {
			b.Fatalf("%d topics after open, want %d", n, topics)
		}
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
	b.ReportMetric(float64(fds), "fds")
	b.ReportMetric(float64(maps), "maps")
	b.ReportMetric(float64(gs), "goroutines")
	b.ReportMetric(float64(topics*segs), "segments")
}
