package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
)

// bigBatches produces n batches of one message of size bytes each to topic
// and returns the length of one batch.
func bigBatches(t *testing.T, p *peer, topic string, n, size int) int {
	t.Helper()
	msg := make([]byte, size)
	var blen int
	for i := range n {
		for j := range msg {
			msg[j] = byte(i + j)
		}
		b, err := record.AppendBatch(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		blen = len(b)
		p.mustProduce(t, topic, b)
	}
	return blen
}

// aheadUsed sums the consumes answered with a response read ahead.
func aheadUsed(ts *testServer) int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var n int64
	for c := range ts.conns {
		n += c.aheadUsed.Load()
	}
	return n
}

// A client reading large messages one response at a time gets each
// response after the first from a read the broker did while it was still
// writing the previous one (verified then), not from a read begun when
// the request came; what it gets is the same.
func TestLargeConsumeReadAhead(t *testing.T) {
	old := aheadFresh
	t.Cleanup(func() { aheadFresh = old }) // after the server's cleanup: its connections read it
	aheadFresh = time.Minute               // a loaded test machine may take long between two requests
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			const n, size = 8, 1 << 20
			bigBatches(t, p, "big", n, size)
			var off uint64
			responses := 0
			for off < n {
				resp := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("big"), Offset: off, MaxBytes: 3 << 20})
				msgs, err := decodeBatches(resp.Batches)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) == 0 || msgs[0].off != off || resp.End != n {
					t.Fatalf("consume at %d: %d messages, end %d", off, len(msgs), resp.End)
				}
				for _, m := range msgs {
					if len(m.val) != size || m.val[0] != byte(m.off) {
						t.Fatalf("message %d: %d bytes, first %d", m.off, len(m.val), m.val[0])
					}
				}
				off = msgs[len(msgs)-1].off + 1
				responses++
			}
			if got := aheadUsed(ts); got != int64(responses-1) {
				t.Fatalf("%d of %d consumes answered with a response read ahead; want %d", got, responses, responses-1)
			}
		})
	}
}

// Promise: a batch is verified again before it is sent once the broker's
// read ahead of it is older than aheadFresh: a batch damaged after the
// read ahead is never sent, and the consume is told where the damage is.
func TestLargeConsumeReadAheadStaleIsVerifiedAgain(t *testing.T) {
	old := aheadFresh
	t.Cleanup(func() { aheadFresh = old }) // after the server's cleanup: its connections read it
	aheadFresh = time.Nanosecond
	dir := t.TempDir()
	e := openEngine(t, engine.Options{Dir: dir})
	if err := e.CreateTopic("big"); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, e, "unix", Options{})
	p := mustDial(t, ts, "")
	const n, size = 6, 1 << 20
	blen := bigBatches(t, p, "big", n, size)
	// Offsets 0 and 1; the broker reads 2 and 3 ahead.
	resp := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("big"), Offset: 0, MaxBytes: 3 << 20})
	if msgs, err := decodeBatches(resp.Batches); err != nil || len(msgs) != 2 {
		t.Fatalf("first consume: %d messages, %v", len(msgs), err)
	}
	// Damage offset 2's message in the log, after it was read ahead.
	f, err := os.OpenFile(filepath.Join(dir, "topics", "big", segment.LogName(0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	pos := int64(2*blen + blen/2)
	if _, err := f.ReadAt(one[:], pos); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 1
	if _, err := f.WriteAt(one[:], pos); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = p.consume(netproto.ConsumeRequest{Topic: []byte("big"), Offset: 2, MaxBytes: 3 << 20})
	pe := wantCode(t, err, netproto.CodeCorrupt)
	if pe.Start != 2 || pe.End != 3 {
		t.Fatalf("consume at 2: %+v, want the damage at [2, 3)", pe)
	}
	if got := aheadUsed(ts); got != 0 {
		t.Fatalf("%d consumes answered with a stale read ahead", got)
	}
}

// Promise: a consume is answered with the topic's own messages: a response
// read ahead from a topic that was deleted and created again under the
// same name, with as many messages, is never sent for the new topic.
func TestLargeConsumeReadAheadTopicRecreated(t *testing.T) {
	old := aheadFresh
	t.Cleanup(func() { aheadFresh = old }) // after the server's cleanup: its connections read it
	aheadFresh = time.Minute               // the read ahead stays fresh: only the topic's identity can refuse it
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	const n, size = 6, 1 << 20
	bigBatches(t, p, "big", n, size)
	// Offsets 0 and 1; the broker reads 2 and 3 ahead.
	resp := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("big"), Offset: 0, MaxBytes: 3 << 20})
	if msgs, err := decodeBatches(resp.Batches); err != nil || len(msgs) != 2 {
		t.Fatalf("first consume: %d messages, %v", len(msgs), err)
	}
	if err := e.DeleteTopic("big"); err != nil {
		t.Fatal(err)
	}
	// The new topic's messages: every byte 0xA5, unlike any of the old ones'.
	msg := make([]byte, size)
	for j := range msg {
		msg[j] = 0xA5
	}
	for range n {
		b, err := record.AppendBatch(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		p.mustProduce(t, "big", b)
	}
	resp = p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("big"), Offset: 2, MaxBytes: 3 << 20})
	msgs, err := decodeBatches(resp.Batches)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("consume at 2: %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if m.val[0] != 0xA5 || m.val[size-1] != 0xA5 {
			t.Fatalf("offset %d of the new topic answered with the deleted topic's message (first byte %#x)", m.off, m.val[0])
		}
	}
	if got := aheadUsed(ts); got != 0 {
		t.Fatalf("%d consumes answered with a read ahead of the deleted topic", got)
	}
}
