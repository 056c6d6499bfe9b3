package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

func TestProduceConsumeOne(t *testing.T) {
	networks(t, engine.Options{}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "one")
		before := time.Now()
		off, err := c.Produce(ctx, "one", []byte("hello"))
		if err != nil || off != 0 {
			t.Fatalf("produce: offset %d, %v", off, err)
		}
		var buf client.ConsumeBuffer
		msgs, err := c.Consume(ctx, "one", 0, 10, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if msgs.Len() != 1 || msgs.Next() != 1 || msgs.Start != 0 || msgs.End != 1 {
			t.Fatalf("got %d messages, next %d, range [%d, %d)", msgs.Len(), msgs.Next(), msgs.Start, msgs.End)
		}
		m := msgs.At(0)
		if m.Offset != 0 || !bytes.Equal(m.Value, []byte("hello")) {
			t.Fatalf("message %d %q", m.Offset, m.Value)
		}
		if m.Time.Before(before.Add(-time.Second)) || m.Time.After(time.Now().Add(time.Second)) {
			t.Fatalf("append time %v, produced at %v", m.Time, before)
		}
	})
}

// produceN produces n messages payload(0..n-1) in batches of per.
func produceN(t testing.TB, c *client.Client, topic string, n, per int) {
	t.Helper()
	ctx := testCtx(t)
	msgs := make([][]byte, 0, per)
	for i := 0; i < n; i += per {
		msgs = msgs[:0]
		for j := i; j < min(i+per, n); j++ {
			msgs = append(msgs, payload(j))
		}
		off, err := c.Produce(ctx, topic, msgs...)
		if err != nil {
			t.Fatal(err)
		}
		if off != uint64(i) {
			t.Fatalf("batch at %d got base offset %d", i, off)
		}
	}
}

// consumeAll reads [from, to) with reads of at most limit messages and
// checks every message against payload.
func consumeAll(t testing.TB, c *client.Client, topic string, from, to uint64, limit int, opts ...client.ConsumeOption) {
	t.Helper()
	ctx := testCtx(t)
	var buf client.ConsumeBuffer
	for off := from; off < to; {
		msgs, err := c.Consume(ctx, topic, off, limit, &buf, opts...)
		if err != nil {
			t.Fatalf("consume at %d: %v", off, err)
		}
		if msgs.Len() == 0 || (limit > 0 && msgs.Len() > limit) {
			t.Fatalf("consume at %d, limit %d: %d messages", off, limit, msgs.Len())
		}
		for m := range msgs.All() {
			if m.Offset != off || !bytes.Equal(m.Value, payload(int(off))) {
				t.Fatalf("want offset %d %q, got %d %q", off, payload(int(off)), m.Offset, m.Value)
			}
			off++
		}
		if msgs.Next() != off {
			t.Fatalf("next %d, want %d", msgs.Next(), off)
		}
	}
}

func TestProduceConsume100k(t *testing.T) {
	const n = 100_000
	networks(t, engine.Options{Fsync: engine.FsyncNever}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		createTopic(t, c, "many")
		produceN(t, c, "many", n, 1000)
		start, end, err := c.Offsets(testCtx(t), "many")
		if err != nil || start != 0 || end != n {
			t.Fatalf("offsets [%d, %d), %v", start, end, err)
		}
		consumeAll(t, c, "many", 0, n, 0) // as much as the byte limit allows
		consumeAll(t, c, "many", 0, n, 0, client.ConsumeMaxBytes(64<<10))
		consumeAll(t, c, "many", 12_345, 20_000, 777) // trimmed at both ends
	})
}

func TestConsumeAcrossSegments(t *testing.T) {
	eopts := engine.Options{SegmentBytes: 64 << 10, Fsync: engine.FsyncNever}
	networks(t, eopts, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		createTopic(t, c, "segs")
		const n = 5000 // about 140 KiB per 1000 messages: many segments
		produceN(t, c, "segs", n, 7)
		for _, limit := range []int{1, 3, 50, 1000, 0} {
			consumeAll(t, c, "segs", 0, n, limit)
		}
		// Reads that start inside a batch and end inside a later one.
		for _, from := range []uint64{1, 6, 8, 999, 4990} {
			consumeAll(t, c, "segs", from, min(from+600, n), 600)
		}
		consumeAll(t, c, "segs", 0, n, 0, client.ConsumeMaxBytes(1))
	})
}

func TestOffsetOutOfRange(t *testing.T) {
	eopts := engine.Options{SegmentBytes: 64 << 10, SegmentEntries: 4}
	networks(t, eopts, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		createTopic(t, c, "range")
		produceN(t, c, "range", 3000, 100)
		var buf client.ConsumeBuffer
		check := func(off, start, end uint64) {
			t.Helper()
			_, err := c.Consume(ctx, "range", off, 1, &buf)
			var e *client.Error
			if !errors.Is(err, client.ErrOffsetOutOfRange) || !errors.As(err, &e) {
				t.Fatalf("consume at %d: %v", off, err)
			}
			if e.Code != netproto.CodeOffsetOutOfRange || e.Start != start || e.End != end || e.Retriable || client.IsRetriable(err) {
				t.Fatalf("consume at %d: %+v", off, e)
			}
		}
		check(3001, 0, 3000)
		check(1<<62, 0, 3000)
		// At the end: no messages, no error.
		msgs, err := c.Consume(ctx, "range", 3000, 1, &buf)
		if err != nil || msgs.Len() != 0 || msgs.Next() != 3000 || msgs.End != 3000 {
			t.Fatalf("at the end: %v %v", msgs, err)
		}
		start, err := c.TruncateBefore(ctx, "range", 2000)
		if err != nil || start == 0 || start > 2000 {
			t.Fatalf("truncate: start %d, %v", start, err)
		}
		check(start-1, start, 3000)
		check(0, start, 3000)
		consumeAll(t, c, "range", start, 3000, 0)
	})
}

func TestTopicAdmin(t *testing.T) {
	eopts := engine.Options{SegmentBytes: 64 << 10, SegmentEntries: 4}
	networks(t, eopts, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		for _, name := range []string{"app.logs", "app.metrics", "app-1", "other"} {
			createTopic(t, c, name)
		}
		if err := c.CreateTopic(ctx, "app.logs"); !errors.Is(err, client.ErrTopicExists) {
			t.Fatalf("create twice: %v", err)
		}
		for _, bad := range []string{"", "..", "a/b", "spa ce", strings.Repeat("x", 250)} {
			if err := c.CreateTopic(ctx, bad); !errors.Is(err, client.ErrBadTopicName) {
				t.Fatalf("create %q: %v", bad, err)
			}
		}
		lists := []struct {
			prefix, re string
			want       []string
		}{
			{"", "", []string{"app-1", "app.logs", "app.metrics", "other"}},
			{"app.", "", []string{"app.logs", "app.metrics"}},
			{"app", `\d$`, []string{"app-1"}},
			{"", "^o", []string{"other"}},
			{"zzz", "", []string{}},
		}
		for _, l := range lists {
			got, err := c.ListTopics(ctx, l.prefix, l.re)
			if err != nil || !slices.Equal(got, l.want) {
				t.Fatalf("list %q %q: %q, %v", l.prefix, l.re, got, err)
			}
		}
		if _, err := c.ListTopics(ctx, "", "(("); !errors.Is(err, client.ErrMalformed) {
			t.Fatalf("bad regexp: %v", err)
		}

		// Offsets and times: two rounds of data a little apart in time.
		produceN(t, c, "other", 1000, 50)
		time.Sleep(20 * time.Millisecond)
		mid := time.Now()
		time.Sleep(20 * time.Millisecond)
		if _, err := c.Produce(ctx, "other", payload(1000), payload(1001)); err != nil {
			t.Fatal(err)
		}
		if s, e, err := c.Offsets(ctx, "other"); err != nil || s != 0 || e != 1002 {
			t.Fatalf("offsets [%d, %d), %v", s, e, err)
		}
		for _, tc := range []struct {
			at   time.Time
			want uint64
		}{{mid, 1000}, {time.Time{}, 0}, {time.Now().Add(time.Hour), 1002}} {
			if off, err := c.OffsetAt(ctx, "other", tc.at); err != nil || off != tc.want {
				t.Fatalf("offset at %v: %d, %v; want %d", tc.at, off, err, tc.want)
			}
		}
		start, err := c.TruncateBeforeTime(ctx, "other", mid)
		if err != nil || start == 0 || start > 1000 {
			t.Fatalf("truncate before time: %d, %v", start, err)
		}
		if s, _, _ := c.Offsets(ctx, "other"); s != start {
			t.Fatalf("start %d after truncating to %d", s, start)
		}
		if _, err := c.TruncateBefore(ctx, "other", 5000); !errors.Is(err, client.ErrOffsetOutOfRange) {
			t.Fatalf("truncate past the end: %v", err)
		}

		if err := c.DeleteTopic(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteTopic(ctx, "other"); !errors.Is(err, client.ErrTopicNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		for _, err := range []error{
			func() error { _, _, err := c.Offsets(ctx, "other"); return err }(),
			func() error { _, err := c.Produce(ctx, "other", []byte("x")); return err }(),
			func() error { _, err := c.Consume(ctx, "other", 0, 1, nil); return err }(),
		} {
			var e *client.Error
			if !errors.Is(err, client.ErrTopicNotFound) || !errors.As(err, &e) || e.Code != netproto.CodeTopicNotFound {
				t.Fatalf("deleted topic: %v", err)
			}
		}
	})
}

func TestConsumeCorrupt(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("broker-verifies=%v", !skip), func(t *testing.T) {
			dir := t.TempDir()
			b := startBroker(t, "tcp", engine.Options{Dir: dir, SkipReadVerify: skip}, server.Options{})
			c := b.dial()
			ctx := testCtx(t)
			createTopic(t, c, "bad")
			produceN(t, c, "bad", 10, 5)
			// Flip a payload byte of the second batch on disk; the broker
			// reads the file through a shared mapping and sees it.
			f, err := os.OpenFile(filepath.Join(dir, "topics", "bad", fmt.Sprintf("%020d.log", 0)), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var hdr [record.HeaderSize]byte
			if _, err := f.ReadAt(hdr[:], 0); err != nil {
				t.Fatal(err)
			}
			h, err := record.ParseHeader(hdr[:])
			if err != nil {
				t.Fatal(err)
			}
			pos := int64(h.Size()) + record.HeaderSize + 3
			if _, err := f.WriteAt([]byte{0xff}, pos); err != nil {
				t.Fatal(err)
			}
			f.Close()
			consumeAll(t, c, "bad", 0, 5, 5) // the first batch is intact
			_, err = c.Consume(ctx, "bad", 7, 1, nil)
			var e *client.Error
			if !errors.Is(err, client.ErrCorrupt) || !errors.As(err, &e) || e.Code != netproto.CodeCorrupt {
				t.Fatalf("corrupt batch: %v", err)
			}
			t.Log(err)
			// The connection carries on.
			consumeAll(t, c, "bad", 0, 5, 5)
		})
	}
}

// A Consumer hands over every message of the batches it verified before
// it reports a damaged batch after them in the same response: a damaged
// batch withholds nothing that came before it, and nothing of it or after
// it is yielded. (The broker here does not verify what it sends, so the
// client is the one that finds the damage.)
func TestConsumerYieldsVerifiedBatchesBeforeDamage(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, "tcp", engine.Options{Dir: dir, SkipReadVerify: true}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "bad")
	produceN(t, c, "bad", 15, 5)
	f, err := os.OpenFile(filepath.Join(dir, "topics", "bad", fmt.Sprintf("%020d.log", 0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [record.HeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	h, err := record.ParseHeader(hdr[:])
	if err != nil {
		t.Fatal(err)
	}
	// A payload byte of the second batch (offsets 5..9).
	if _, err := f.WriteAt([]byte{0xff}, int64(h.Size())+record.HeaderSize+3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cs := client.NewConsumer(c, "bad", 0, client.ConsumeWait(time.Millisecond))
	var got []uint64
	var failed error
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			failed = err
			break
		}
		if string(m.Value) != string(payload(int(m.Offset))) {
			t.Fatalf("message %d: %q", m.Offset, m.Value)
		}
		got = append(got, m.Offset)
	}
	if !errors.Is(failed, client.ErrCorrupt) {
		t.Fatalf("after %v: %v, want ErrCorrupt", got, failed)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4]" || cs.Offset() != 5 {
		t.Fatalf("yielded %v before the damage, offset %d; want [0 1 2 3 4], offset 5", got, cs.Offset())
	}
}

func TestUnauthorized(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{Token: "s3cret"})
	ctx := testCtx(t)
	for _, opts := range [][]client.Option{nil, {client.WithToken("wrong")}} {
		c, err := client.Dial(ctx, b.Addr, opts...)
		if !errors.Is(err, client.ErrUnauthorized) || client.IsRetriable(err) || c != nil {
			t.Fatalf("dial %v: %v", opts, err)
		}
	}
	c := b.dial(client.WithToken("s3cret"))
	createTopic(t, c, "ok")
}

func TestDialErrors(t *testing.T) {
	ctx := testCtx(t)
	_, err := client.Dial(ctx, "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, client.ErrDisconnected) || !client.IsRetriable(err) {
		t.Fatalf("dial nowhere: %v", err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	if _, err := client.Dial(short, b.Addr); err == nil {
		t.Fatal("dial with a cancelled context worked")
	}
	plain := strings.TrimPrefix(b.Addr, "tcp://") // host:port means TCP
	c, err := client.Dial(ctx, plain, client.WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.CreateTopic(ctx, "x"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("close twice: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{MaxBody: 64 << 10})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "big")
	_, err := c.Produce(ctx, "big", make([]byte, 100<<10))
	if !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("produce over the broker's limit: %v", err)
	}
	// Nothing was sent: the connection is fine.
	produceN(t, c, "big", 100, 10)
	if _, err := c.ProduceBatch(ctx, "big", []byte("short")); !errors.Is(err, client.ErrBatchInvalid) {
		t.Fatalf("short batch: %v", err)
	}
	consumeAll(t, c, "big", 0, 100, 0)
}

func TestProduceInvalidBatch(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	createTopic(t, c, "t")
	bad, _ := record.AppendBatch(nil, []byte("x"))
	bad[record.HeaderSize] ^= 1
	_, err := c.ProduceBatch(ctx, "t", bad)
	if err == nil || client.IsRetriable(err) {
		t.Fatalf("batch with a bad checksum: %v", err)
	}
	if !errors.Is(err, client.ErrBatchInvalid) {
		t.Fatalf("batch with a bad checksum: %v", err)
	}
}

// TestPipelined runs many calls at once on one Client: every response
// must reach its own caller.
func TestPipelined(t *testing.T) {
	networks(t, engine.Options{Fsync: engine.FsyncNever}, server.Options{}, func(t *testing.T, b *broker) {
		c := b.dial()
		ctx := testCtx(t)
		const topics, rounds = 8, 200
		var wg sync.WaitGroup
		for i := range topics {
			topic := fmt.Sprintf("p%d", i)
			createTopic(t, c, topic)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf client.ConsumeBuffer
				for r := range rounds {
					off, err := c.Produce(ctx, topic, payload(2*r), payload(2*r+1))
					if err != nil || off != uint64(2*r) {
						t.Errorf("%s: produce %d: %d, %v", topic, r, off, err)
						return
					}
					msgs, err := c.Consume(ctx, topic, off, 2, &buf)
					if err != nil || msgs.Len() != 2 || !bytes.Equal(msgs.At(1).Value, payload(2*r+1)) {
						t.Errorf("%s: consume %d: %v", topic, r, err)
						return
					}
					if _, end, err := c.Offsets(ctx, topic); err != nil || end != off+2 {
						t.Errorf("%s: offsets: %d, %v", topic, end, err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}
