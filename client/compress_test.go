package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

var codecs = []record.Codec{record.CodecNone, record.CodecS2, record.CodecZstd}

// storedHeaders scans every segment of topic in the broker's data
// directory and returns the headers of the batches as stored.
func storedHeaders(t testing.TB, dir, topic string) []record.Header {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "topics", topic, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no segments of %q: %v", topic, err)
	}
	slices.Sort(logs)
	var hs []record.Header
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := record.NewScanner(b)
		for s.Next() {
			hs = append(hs, *s.Header())
		}
		if s.Err() != nil {
			t.Fatalf("%s: %v", name, s.Err())
		}
	}
	return hs
}

// testMessage is message i of the extended tests: a key on most, headers
// on some, a timestamp on all but every fifth.
func testMessage(i int) client.Message {
	m := client.Message{Value: logLine(uint64(i))}
	if i%3 != 0 {
		m.Key = fmt.Appendf(nil, "user-%d", i%50)
	}
	for j := range i % 4 {
		m.Headers = append(m.Headers, client.Header{Key: fmt.Sprintf("h%d", j), Value: fmt.Appendf(nil, "%d-%d", i, j)})
	}
	if i%5 != 0 {
		m.Timestamp = time.Unix(0, 1700000000000000000+int64(i)*1000)
	}
	return m
}

func checkMessage(t testing.TB, got client.Message, want client.Message, off uint64) {
	t.Helper()
	if got.Offset != off || !bytes.Equal(got.Value, want.Value) || !bytes.Equal(got.Key, want.Key) ||
		!got.Timestamp.Equal(want.Timestamp) || len(got.Headers) != len(want.Headers) {
		t.Fatalf("offset %d: got %d %q key %q ts %v %v, want key %q ts %v %v", off, got.Offset, got.Value, got.Key,
			got.Timestamp, got.Headers, want.Key, want.Timestamp, want.Headers)
	}
	if want.Key == nil && got.Key != nil {
		t.Fatalf("offset %d: key %q, want none", off, got.Key)
	}
	for i := range want.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			t.Fatalf("offset %d header %d: %v, want %v", off, i, got.Headers[i], want.Headers[i])
		}
	}
	if got.Time.IsZero() || got.Time.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("offset %d: append time %v", off, got.Time)
	}
}

// TestCompressionRoundTrip produces with every codec, in batches of 1 and
// 10,000 messages, plain and extended, and reads everything back; the
// batches are stored compressed.
func TestCompressionRoundTrip(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, "tcp", engine.Options{Dir: dir, Fsync: engine.FsyncNever}, server.Options{})
	for _, codec := range codecs {
		c := b.dial(client.WithCompression(codec))
		ctx := testCtx(t)
		for _, n := range []int{1, 10_000} {
			t.Run(fmt.Sprintf("%v/plain/%d", codec, n), func(t *testing.T) {
				topic := fmt.Sprintf("plain-%v-%d", codec, n)
				createTopic(t, c, topic)
				msgs := make([][]byte, n)
				for i := range msgs {
					msgs[i] = logLine(uint64(i))
				}
				if n == 1 {
					msgs[0] = manyLines(10) // a lone log line does not shrink
				}
				if _, err := c.Produce(ctx, topic, msgs...); err != nil {
					t.Fatal(err)
				}
				var buf client.ConsumeBuffer
				for off := uint64(0); off < uint64(n); {
					got, err := c.Consume(ctx, topic, off, 0, &buf)
					if err != nil {
						t.Fatal(err)
					}
					for m := range got.All() {
						checkMessage(t, m, client.Message{Value: msgs[off]}, off)
						off++
					}
				}
				checkStored(t, storedHeaders(t, dir, topic), codec, false, n)
			})
			t.Run(fmt.Sprintf("%v/extended/%d", codec, n), func(t *testing.T) {
				topic := fmt.Sprintf("ext-%v-%d", codec, n)
				createTopic(t, c, topic)
				msgs := make([]client.Message, n)
				for i := range msgs {
					msgs[i] = testMessage(i + 1)
				}
				if n == 1 {
					msgs[0].Value = manyLines(10)
				}
				if _, err := c.ProduceMessages(ctx, topic, msgs...); err != nil {
					t.Fatal(err)
				}
				var buf client.ConsumeBuffer
				for off := uint64(0); off < uint64(n); {
					got, err := c.Consume(ctx, topic, off, 0, &buf)
					if err != nil {
						t.Fatal(err)
					}
					for m := range got.All() {
						checkMessage(t, m, msgs[off], off)
						off++
					}
				}
				checkStored(t, storedHeaders(t, dir, topic), codec, true, n)
			})
		}
	}
}

// manyLines returns n log lines in one message.
func manyLines(n int) []byte {
	var b []byte
	for i := range n {
		b = append(append(b, logLine(uint64(i))...), '\n')
	}
	return b
}

// checkStored checks that the one stored batch holds n messages under
// codec (or uncompressed, when it would not shrink).
func checkStored(t testing.TB, hs []record.Header, codec record.Codec, ext bool, n int) {
	t.Helper()
	if len(hs) != 1 || hs[0].Count != uint32(n) || hs[0].Extended() != ext {
		t.Fatalf("stored %d batches: %+v", len(hs), hs)
	}
	h := hs[0]
	if h.Codec() != codec {
		t.Fatalf("stored with %v, want %v", h.Codec(), codec)
	}
	t.Logf("%d messages, %v: %d raw bytes stored as %d (%.1fx)", n, codec, h.RawLen, h.PayloadLen, float64(h.RawLen)/float64(h.PayloadLen))
}

// TestProducerCompressionAndMessages mixes Send and SendMessage in a
// compressing Producer and reads every field back through a Consumer.
func TestProducerCompressionAndMessages(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			b := startBroker(t, "unix", engine.Options{Dir: dir, Fsync: engine.FsyncNever, SegmentBytes: 256 << 10}, server.Options{})
			c := b.dial()
			ctx := testCtx(t)
			createTopic(t, c, "mixed")
			var acks ackLog
			p := client.NewProducer(c, "mixed", client.ProducerCompression(codec), client.ProducerMaxMessages(300),
				client.ProducerOnAck(acks.onAck))
			const n = 5000
			want := make([]client.Message, n)
			for i := range n {
				if i%7 == 0 {
					want[i] = client.Message{Value: logLine(uint64(i))}
					if err := p.Send(ctx, want[i].Value); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want[i] = testMessage(i)
				if err := p.SendMessage(ctx, want[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			acks.dense(t, n)
			cs := client.NewConsumer(c, "mixed", 0, client.ConsumeLimit(700))
			off := uint64(0)
			for m, err := range cs.Messages(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				checkMessage(t, m, want[off], off)
				if off++; off == n {
					break
				}
			}
			// A batch of one or two messages that would not shrink is
			// stored uncompressed; the others use the codec.
			hs := storedHeaders(t, dir, "mixed")
			for _, h := range hs {
				if h.Codec() != codec && (h.Codec() != record.CodecNone || h.Count > 2) {
					t.Fatalf("batch at %d of %d messages stored with %v", h.BaseOffset, h.Count, h.Codec())
				}
			}
		})
	}
}

// forgeBatch builds a batch around payload with valid hashes: a broken
// producer's batch, which the broker accepts.
func forgeBatch(t testing.TB, flags uint16, count, rawLen uint32, payload []byte) []byte {
	t.Helper()
	var b record.Builder
	b.Add([]byte("x"))
	good, _ := b.Finish()
	out := make([]byte, record.SizeFor(len(payload)))
	copy(out, good[:record.HeaderSize])
	le := func(off int, v uint64, size int) {
		for i := range size {
			out[off+i] = byte(v >> (8 * i))
		}
	}
	le(6, uint64(flags), 2)
	le(8, uint64(len(payload)), 4)
	le(12, uint64(count), 4)
	le(44, uint64(rawLen), 4)
	le(48, xxhash.Sum64(payload), 8)
	copy(out[record.HeaderSize:], payload)
	record.Stamp(out, 0, 0)
	if _, err := record.Verify(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConsumeBadCompressed stores compressed batches that pass the hash
// but not the decoder (garbage, a decompression bomb, a raw length that
// lies or exceeds the client's limit): Consume refuses each with a clear
// error naming the offsets, and the connection carries on.
func TestConsumeBadCompressed(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial(client.WithMaxBody(netBody))
	ctx := testCtx(t)
	raw := appendPlain(logLine(1), logLine(2))
	var zb record.Builder
	zb.Add(logLine(1))
	zb.Add(logLine(2))
	good, _ := zb.FinishCodec(record.CodecZstd)
	gh, _ := record.Verify(good)
	zpayload := good[record.HeaderSize : record.HeaderSize+int(gh.PayloadLen)]
	var bomb record.Builder
	bomb.Add(make([]byte, 32<<20)) // 32 MiB of zeros: a few KiB compressed
	bombBatch, _ := bomb.FinishCodec(record.CodecS2)
	bh, _ := record.Verify(bombBatch)
	bombPayload := bombBatch[record.HeaderSize : record.HeaderSize+int(bh.PayloadLen)]
	tests := []struct {
		name  string
		batch []byte
		want  error
		text  string
	}{
		{"garbage", forgeBatch(t, uint16(record.CodecZstd), 2, uint32(len(raw)), []byte("not a zstd frame at all")), client.ErrCorrupt, "magic number"},
		{"raw length lies", forgeBatch(t, uint16(record.CodecZstd), 2, uint32(len(raw))+5, zpayload), client.ErrCorrupt, "raw_len"},
		{"bomb under a small raw length", forgeBatch(t, uint16(record.CodecS2), 1, 1000, bombPayload), client.ErrCorrupt, "s2 block declares"},
		{"bomb over the client limit", forgeBatch(t, uint16(record.CodecS2), 1, bh.RawLen, bombPayload), client.ErrMessageTooLarge, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := strings.ReplaceAll(tt.name, " ", "-")
			createTopic(t, c, topic)
			off, err := c.ProduceBatch(ctx, topic, tt.batch)
			if err != nil {
				t.Fatalf("the broker refused a batch with valid hashes: %v", err)
			}
			good := appendPlain([]byte("after"))
			if _, err := c.ProduceBatch(ctx, topic, good); err != nil {
				t.Fatal(err)
			}
			_, err = c.Consume(ctx, topic, off, 0, nil)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("consume: %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			t.Log(err)
			// The next batch reads fine: the connection carries on.
			msgs, err := c.Consume(ctx, topic, off+uint64(record.CountOf(tt.batch)), 0, nil)
			if err != nil || msgs.Len() != 1 || string(msgs.At(0).Value) != "after" {
				t.Fatalf("after the bad batch: %v", err)
			}
		})
	}
}

// netBody is the client's frame limit in TestConsumeBadCompressed: above
// the bomb's compressed size, below its raw size.
const netBody = 16 << 20

func appendPlain(msgs ...[]byte) []byte {
	b, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		panic(err)
	}
	return b
}

// TestConsumeFromTime: a Consumer started at a time yields first the
// first message appended at or after it, across segments.
func TestConsumeFromTime(t *testing.T) {
	eopts := engine.Options{SegmentBytes: 8 << 10, Fsync: engine.FsyncNever}
	b := startBroker(t, "tcp", eopts, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "times")
	const batches, per = 120, 9
	for i := range batches {
		msgs := make([][]byte, per)
		for j := range msgs {
			msgs[j] = payload(i*per + j)
		}
		if _, err := c.Produce(ctx, "times", msgs...); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// The append time of every message, read back.
	times := make([]time.Time, 0, batches*per)
	var buf client.ConsumeBuffer
	for off := uint64(0); off < batches*per; {
		msgs, err := c.Consume(ctx, "times", off, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for m := range msgs.All() {
			times = append(times, m.Time)
		}
		off = msgs.Next()
	}
	if segs, _ := filepath.Glob(filepath.Join(b.EngineOptions.Dir, "topics", "times", "*.log")); len(segs) < 4 {
		t.Fatalf("%d segments; the test wants several", len(segs))
	}
	firstAtOrAfter := func(at time.Time) uint64 {
		for i, tm := range times {
			if !tm.Before(at) {
				return uint64(i)
			}
		}
		return uint64(len(times))
	}
	probes := []time.Time{times[0].Add(-time.Hour), times[0]}
	for _, i := range []int{1, per - 1, per, 5 * per, 40*per + 3, len(times) / 2, len(times) - 1} {
		probes = append(probes, times[i], times[i].Add(1), times[i].Add(-1))
	}
	for _, at := range probes {
		want := firstAtOrAfter(at)
		if got, err := c.OffsetAt(ctx, "times", at); err != nil || got != want {
			t.Fatalf("OffsetAt(%v) = %d, %v; want %d", at, got, err, want)
		}
		if want == uint64(len(times)) {
			continue // the end: below
		}
		cs := client.NewConsumer(c, "times", 999_999, client.ConsumeFrom(at))
		for m, err := range cs.Messages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Offset != want || m.Time.Before(at) || (want > 0 && !times[want-1].Before(at)) {
				t.Fatalf("from %v: first message %d at %v, want %d", at, m.Offset, m.Time, want)
			}
			if !bytes.Equal(m.Value, payload(int(want))) {
				t.Fatalf("from %v: message %q", at, m.Value)
			}
			break
		}
	}
	// A time after the last message starts at the end: the Consumer waits
	// there and yields the next message produced.
	cs := client.NewConsumer(c, "times", 0, client.ConsumeFrom(times[len(times)-1].Add(time.Nanosecond)), client.ConsumeWait(5*time.Second))
	go func() {
		time.Sleep(100 * time.Millisecond)
		c.Produce(ctx, "times", []byte("late"))
	}()
	for m, err := range cs.Messages(ctx) {
		if err != nil || m.Offset != batches*per || string(m.Value) != "late" {
			t.Fatalf("from after the end: %d %q %v", m.Offset, m.Value, err)
		}
		break
	}
}
