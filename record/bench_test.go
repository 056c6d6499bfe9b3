package record_test

import (
	"testing"

	"github.com/haraqa/haraqa/record"
)

const (
	benchMsgs    = 1000
	benchMsgSize = 100
)

func reportMsgs(b *testing.B, perOp int) {
	b.Helper()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)*float64(perOp)/s, "msgs/s")
	}
}

func benchBatch(b *testing.B) ([][]byte, []byte) {
	b.Helper()
	msgs := genMsgs(benchMsgs, func(int) int { return benchMsgSize })
	return msgs, appendBatch(b, nil, msgs...)
}

func BenchmarkBuild(b *testing.B) {
	msgs, batch := benchBatch(b)
	var bld record.Builder
	bld.Reset()
	for _, m := range msgs { // warm-up: grow the buffer to its working size
		bld.Add(m)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		bld.Reset()
		for _, m := range msgs {
			bld.Add(m)
		}
		if _, err := bld.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	reportMsgs(b, benchMsgs)
}

func BenchmarkAppendBatch(b *testing.B) {
	msgs, batch := benchBatch(b)
	dst := make([]byte, 0, len(batch))
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := record.AppendBatch(dst, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	reportMsgs(b, benchMsgs)
}

func BenchmarkVerify(b *testing.B) {
	_, batch := benchBatch(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := record.Verify(batch); err != nil {
			b.Fatal(err)
		}
	}
	reportMsgs(b, benchMsgs)
}

func BenchmarkIter(b *testing.B) {
	_, batch := benchBatch(b)
	h, err := record.Verify(batch)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		it := record.Messages(batch, &h)
		n := 0
		for _, ok := it.Next(); ok; _, ok = it.Next() {
			n++
		}
		if n != benchMsgs || it.Err() != nil {
			b.Fatal(n, it.Err())
		}
	}
	reportMsgs(b, benchMsgs)
}

func BenchmarkScanner(b *testing.B) {
	_, batch := benchBatch(b)
	var region []byte
	for range 64 {
		region = append(region, batch...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(region)))
	for b.Loop() {
		s := record.NewScanner(region)
		for s.Next() {
		}
		if s.Err() != nil {
			b.Fatal(s.Err())
		}
	}
	reportMsgs(b, 64*benchMsgs)
}
