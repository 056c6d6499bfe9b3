package segment

import (
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// BenchmarkAppend writes batches of 1000 messages of 100 bytes to segments
// on the real file system, without syncing, rolling to a new segment when
// one is full.
func BenchmarkAppend(b *testing.B) {
	const msgs, msgSize = 1000, 100
	dir := b.TempDir()
	opts := Options{MaxBytes: 256 << 20, MaxEntries: 1 << 16}
	payload := make([][]byte, msgs)
	for i := range payload {
		payload[i] = msg(uint64(i), msgSize)
	}
	batch, err := record.AppendBatch(nil, payload...)
	if err != nil {
		b.Fatal(err)
	}
	bufs := [][]byte{batch}
	next := uint64(0)
	s, err := Create(vfs.OSFS{}, dir, next, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !s.Fits(len(batch), 1) {
			b.StopTimer()
			if err := s.Remove(); err != nil {
				b.Fatal(err)
			}
			if s, err = Create(vfs.OSFS{}, dir, next, opts); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		record.Stamp(batch, next, int64(i))
		if err := s.Write(bufs); err != nil {
			b.Fatal(err)
		}
		s.Commit()
		next += msgs
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*msgs/b.Elapsed().Seconds(), "msgs/s")
	s.Remove()
}

// BenchmarkFind looks up random offsets in a segment of 1000 batches of 10
// messages and takes their bytes.
func BenchmarkFind(b *testing.B) {
	e := osEnv(b)
	s := mustCreate(b, e, 0, Options{MaxBytes: 8 << 20, MaxEntries: 4096})
	defer s.Close()
	m := newModel(0)
	for i := 0; i < 1000; i++ {
		appendBatches(b, s, m, mkBatch(b, m.next(), 10, 100, int64(i)))
	}
	s.Acquire()
	defer s.Release()
	n := s.Next()
	var total int
	b.ReportAllocs()
	b.ResetTimer()
	off := uint64(0)
	for i := 0; i < b.N; i++ {
		r, err := s.Find(off, 100, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		total += len(s.Bytes(r))
		off = (off + 7919) % n
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/float64(b.N), "bytes/op")
}
