package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// The benchmarks drive the server over loopback TCP and a Unix socket with
// raw netproto frames. The client side allocates nothing per request
// (frames are built once and only their request id is patched; responses
// are read into one reused buffer), so allocs/op is the server's.

const (
	benchMsgSize  = 100
	benchBatchLen = 1000 // messages per batch
	benchDepth    = 8    // requests in flight
)

// benchBatch returns one batch of benchBatchLen messages of benchMsgSize bytes.
func benchBatch(b testing.TB) []byte {
	msgs := make([][]byte, benchBatchLen)
	for i := range msgs {
		msgs[i] = bytes.Repeat([]byte{byte('a' + i%26)}, benchMsgSize)
	}
	batch, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

// pipeline sends n requests, keeping depth of them in flight, and checks
// every answer. frame(i) returns request i's frame; its id is patched in.
func pipeline(b testing.TB, p *peer, n, depth int, frame func(i int) []byte, check func(h netproto.Header, body []byte) error) {
	sent, got := 0, 0
	send := func() {
		f := frame(sent)
		binary.LittleEndian.PutUint64(f[8:], uint64(sent))
		if _, err := p.nc.Write(f); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	for sent < min(depth, n) {
		send()
	}
	p.nc.SetReadDeadline(time.Now().Add(time.Minute))
	for got < n {
		h, body, err := netproto.ReadResponse(p.nc, netproto.DefaultMaxBody, p.rbuf)
		if err != nil {
			b.Fatal(err)
		}
		p.rbuf = body[:0]
		if h.Status != netproto.CodeOK {
			b.Fatalf("request %d: %v", h.RequestID, netproto.DecodeError(h.Status, body))
		}
		if err := check(h, body); err != nil {
			b.Fatal(err)
		}
		got++
		if sent < n {
			send()
		}
	}
}

func benchServer(b *testing.B, network string, mode ConsumeMode, eopts engine.Options) (*engine.Engine, *peer) {
	e := openEngine(b, eopts)
	ts := startServer(b, e, network, Options{AutoCreateTopics: true, ConsumeMode: mode})
	return e, mustDial(b, ts, "")
}

func reportRate(b *testing.B, msgsPerOp, bytesPerOp int) {
	s := b.Elapsed().Seconds()
	if s == 0 {
		return
	}
	b.ReportMetric(float64(b.N*msgsPerOp)/s, "msgs/s")
	b.ReportMetric(float64(b.N*bytesPerOp)/s/1e6, "MB/s")
}

// BenchmarkProduce: one op is one produce of a batch of 1,000 100-byte
// messages, 8 requests in flight on one connection, acknowledged under
// the engine's default policy (fsync always, with group commit).
func BenchmarkProduce(b *testing.B) {
	for _, network := range networks {
		b.Run(network, func(b *testing.B) {
			_, p := benchServer(b, network, ConsumeWritev, engine.Options{})
			batch := benchBatch(b)
			var frames [benchDepth][]byte
			for i := range frames {
				frames[i] = netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpProduce},
					&netproto.ProduceRequest{Topic: []byte("bench"), Batch: batch})
			}
			check := func(h netproto.Header, body []byte) error {
				var pr netproto.ProduceResponse
				if err := pr.Decode(body); err != nil || pr.Count != benchBatchLen {
					return fmt.Errorf("produce answer %+v: %v", pr, err)
				}
				return nil
			}
			pipeline(b, p, benchDepth, benchDepth, func(i int) []byte { return frames[i%benchDepth] }, check) // warm up
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			pipeline(b, p, b.N, benchDepth, func(i int) []byte { return frames[i%benchDepth] }, check)
			b.StopTimer()
			reportRate(b, benchBatchLen, len(batch))
		})
	}
}

// BenchmarkConsume: one op is one consume answered with k batches of
// 1,000 100-byte messages (k = 1 or 16), 8 requests in flight on one
// connection, cycling over 64 stored batches (about 6.5 MB, in the page
// cache), in both consume modes.
func BenchmarkConsume(b *testing.B) {
	const stored = 64
	for _, network := range networks {
		for _, mode := range modes {
			for _, k := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/batches=%d", network, modeName(mode), k), func(b *testing.B) {
					e, p := benchServer(b, network, mode, engine.Options{Fsync: engine.FsyncNever})
					batch := benchBatch(b)
					size := k * len(batch)
					if err := e.CreateTopic("bench"); err != nil {
						b.Fatal(err)
					}
					for range stored {
						if _, err := e.Append(b.Context(), "bench", bytes.Clone(batch)); err != nil {
							b.Fatal(err)
						}
					}
					var frames [stored / 16 * 16][]byte
					for i := range frames {
						frames[i] = netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpConsume}, &netproto.ConsumeRequest{
							Topic: []byte("bench"), Offset: uint64(i % (stored - k + 1) * benchBatchLen), Limit: uint32(k * benchBatchLen), MaxBytes: uint32(size)})
					}
					check := func(h netproto.Header, body []byte) error {
						var cr netproto.ConsumeResponse
						if err := cr.Decode(body); err != nil || int(cr.BatchBytes) != size || !bytes.Equal(cr.Batches[:4], []byte("HRQB")) {
							return fmt.Errorf("consume answer of %d bytes, want %d: %v", cr.BatchBytes, size, err)
						}
						return nil
					}
					frame := func(i int) []byte { return frames[i%len(frames)] }
					pipeline(b, p, len(frames), benchDepth, frame, check) // warm up
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					pipeline(b, p, b.N, benchDepth, frame, check)
					b.StopTimer()
					reportRate(b, k*benchBatchLen, size)
				})
			}
		}
	}
}

// BenchmarkRoundTrip measures steady-state allocations per request: one
// small produce (10 messages) or consume at a time over TCP, request then
// answer. allocs/op counts the whole process, and the client allocates
// nothing, so it is the server's (and engine's) count per request.
func BenchmarkRoundTrip(b *testing.B) {
	for _, op := range []string{"produce", "consume"} {
		for _, mode := range modes {
			if op == "produce" && mode == ConsumeSendfile {
				continue
			}
			b.Run(op+"/"+modeName(mode), func(b *testing.B) {
				_, p := benchServer(b, "tcp", mode, engine.Options{Fsync: engine.FsyncNever})
				frame, check := roundTripFrames(b, p, op)
				pipeline(b, p, 100, 1, frame, check) // warm up pools and buffers
				b.ReportAllocs()
				b.ResetTimer()
				pipeline(b, p, b.N, 1, frame, check)
			})
		}
	}
}

// roundTripFrames prepares op's request frame and answer check on p.
func roundTripFrames(t testing.TB, p *peer, op string) (func(int) []byte, func(netproto.Header, []byte) error) {
	msgs := make([]string, 10)
	for i := range msgs {
		msgs[i] = string(bytes.Repeat([]byte{'m'}, benchMsgSize))
	}
	batch := batchOf(t, msgs...)
	p.mustProduce(t, "rt", batch)
	var f []byte
	var check func(netproto.Header, []byte) error
	switch op {
	case "produce":
		f = netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpProduce}, &netproto.ProduceRequest{Topic: []byte("rt"), Batch: batch})
		check = func(h netproto.Header, body []byte) error {
			if len(body) != 12 {
				return fmt.Errorf("produce answer of %d bytes", len(body))
			}
			return nil
		}
	case "consume":
		f = netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpConsume}, &netproto.ConsumeRequest{Topic: []byte("rt"), Limit: 10})
		check = func(h netproto.Header, body []byte) error {
			if len(body) != netproto.ConsumeResponseFixedSize+len(batch) {
				return fmt.Errorf("consume answer of %d bytes", len(body))
			}
			return nil
		}
	}
	return func(int) []byte { return f }, check
}
