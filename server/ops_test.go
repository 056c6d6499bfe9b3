package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Promise (PROTOCOL.md, Connection 1): Hello comes first on every
// connection. It answers version 1, the server's MaxBody and ServerID; a
// client speaking a higher version gets version 1. With a Token configured
// a wrong or missing token gets Unauthorized and the connection closes; a
// first frame other than Hello gets Unauthorized and closes whether or not
// a Token is set, without the server reading its body; version 0 gets
// UnsupportedVersion and closes.
func TestHello(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			open := startServer(t, e, network, Options{MaxBody: 1 << 20, ServerID: "test-broker"})
			locked := startServer(t, e, network, Options{Token: "s3cret"})

			t.Run("no token", func(t *testing.T) {
				p := mustDialRaw(t, open)
				resp, err := p.hello("")
				if err != nil || resp.Version != 1 || resp.MaxBody != 1<<20 || string(resp.ServerID) != "test-broker" {
					t.Fatalf("hello: %+v %v", resp, err)
				}
				// A token the server does not need is ignored.
				p = mustDialRaw(t, open)
				p.mustHello(t, "anything")
				_, err = p.offsets("missing", 0)
				wantCode(t, err, netproto.CodeTopicNotFound) // the session works
			})
			t.Run("newer client", func(t *testing.T) {
				p := mustDialRaw(t, open)
				var resp netproto.HelloResponse
				if err := p.callInto(netproto.OpHello, &netproto.HelloRequest{Version: 7}, &resp); err != nil || resp.Version != 1 {
					t.Fatalf("hello v7: %+v %v", resp, err)
				}
			})
			t.Run("version 0", func(t *testing.T) {
				p := mustDialRaw(t, open)
				p.mustSend(t, netproto.OpHello, 1, &netproto.HelloRequest{Version: 0})
				expectRefused(t, p, netproto.CodeUnsupportedVersion)
			})
			t.Run("no hello", func(t *testing.T) {
				p := mustDialRaw(t, open)
				p.mustSend(t, netproto.OpOffsets, 1, &netproto.OffsetsRequest{Topic: []byte("t")})
				expectRefused(t, p, netproto.CodeUnauthorized)
			})
			t.Run("right token", func(t *testing.T) {
				p := mustDialRaw(t, locked)
				p.mustHello(t, "s3cret")
				_, err := p.offsets("missing", 0)
				wantCode(t, err, netproto.CodeTopicNotFound)
			})
			for _, tok := range []string{"wrong", "", "s3cret-and-more", "s3cre"} {
				t.Run("token "+tok, func(t *testing.T) {
					p := mustDialRaw(t, locked)
					p.mustSend(t, netproto.OpHello, 1, &netproto.HelloRequest{Version: 1, Token: []byte(tok)})
					expectRefused(t, p, netproto.CodeUnauthorized)
				})
			}
			t.Run("token, no hello", func(t *testing.T) {
				// The produce declares a 1 MiB body that never comes: the
				// refusal must not wait for it.
				p := mustDialRaw(t, locked)
				h := netproto.Header{BodyLen: 1 << 20, Opcode: netproto.OpProduce, RequestID: 9}
				p.mustWrite(t, h.AppendTo(nil))
				start := time.Now()
				pe := expectRefused(t, p, netproto.CodeUnauthorized)
				if d := time.Since(start); d > 5*time.Second { // ReadTimeout 30 s, HelloTimeout 10 s
					t.Fatalf("refusal took %v: the server waited for the body (%v)", d, pe)
				}
			})
		})
	}
}

// Promise: a produced batch is acknowledged with contiguous base offsets
// and its count; a consume returns whole, verified batches holding the
// produced messages; Limit 0 means no message limit; the batch holding a
// mid-batch offset comes first; and ConsumeWritev and ConsumeSendfile send
// byte-identical responses.
func TestProduceConsume(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			wv := startServer(t, e, network, Options{AutoCreateTopics: true, ConsumeMode: ConsumeWritev})
			sf := startServer(t, e, network, Options{ConsumeMode: ConsumeSendfile})
			p := mustDial(t, wv, "")

			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 1))
			var want []message
			for i := range 20 {
				msgs := make([]string, 1+rng.IntN(20))
				for j := range msgs {
					msgs[j] = fmt.Sprintf("b%d-m%d-%s", i, j, strings.Repeat("x", rng.IntN(500)))
				}
				resp := p.mustProduce(t, "events", batchOf(t, msgs...))
				if resp.BaseOffset != uint64(len(want)) || resp.Count != uint32(len(msgs)) {
					t.Fatalf("batch %d: acked %+v, want base %d count %d", i, resp, len(want), len(msgs))
				}
				for _, m := range msgs {
					want = append(want, message{uint64(len(want)), m})
				}
			}
			end := uint64(len(want))

			all := map[string][]byte{}
			for name, ts := range map[string]*testServer{"writev": wv, "sendfile": sf} {
				c := mustDial(t, ts, "")
				resp := c.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("events")})
				if resp.Start != 0 || resp.End != end {
					t.Fatalf("%s: range [%d, %d), want [0, %d)", name, resp.Start, resp.End, end)
				}
				got, err := decodeBatches(resp.Batches)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: consumed %d messages, want all %d", name, len(got), len(want))
				}
				all[name] = resp.Batches

				// A mid-batch offset: the batch holding it comes first.
				mid := want[len(want)/2].off
				resp = c.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("events"), Offset: mid, Limit: 1})
				got, err = decodeBatches(resp.Batches)
				if err != nil || len(got) == 0 || got[0].off > mid || got[len(got)-1].off < mid {
					t.Fatalf("%s: consume at %d got %d messages from %v: %v", name, mid, len(got), got[:min(1, len(got))], err)
				}
				// MaxBytes of 1 still returns the first whole batch.
				resp = c.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("events"), MaxBytes: 1})
				if got, err = decodeBatches(resp.Batches); err != nil || len(got) == 0 || got[0].off != 0 {
					t.Fatalf("%s: MaxBytes 1: %d messages, %v", name, len(got), err)
				}
				// At the end: an empty answer at once.
				resp = c.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("events"), Offset: end})
				if resp.BatchBytes != 0 || resp.End != end {
					t.Fatalf("%s: consume at end: %+v", name, resp)
				}
			}
			if !bytes.Equal(all["writev"], all["sendfile"]) {
				t.Fatalf("writev and sendfile responses differ: %d and %d bytes", len(all["writev"]), len(all["sendfile"]))
			}
		})
	}
}

// Promise: CreateTopic, DeleteTopic, Topics (prefix and regexp), Offsets
// (with a time lookup) and their errors over the wire: TopicExists,
// TopicNotFound, Malformed for a bad regexp, UnknownOpcode for the reserved
// InitProducer; these errors answer only their request.
func TestAdmin(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{})
			p := mustDial(t, ts, "")
			create := func(name string) error {
				_, err := p.call(netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte(name)})
				return err
			}
			list := func(prefix, re string) ([]string, error) {
				var resp netproto.TopicsResponse
				err := p.callInto(netproto.OpTopics, &netproto.TopicsRequest{Prefix: []byte(prefix), Regexp: []byte(re)}, &resp)
				var names []string
				for _, n := range resp.Names {
					names = append(names, string(n))
				}
				return names, err
			}
			for _, n := range []string{"alpha", "alpha2", "beta", "alps"} {
				if err := create(n); err != nil {
					t.Fatal(err)
				}
			}
			wantCode(t, create("alpha"), netproto.CodeTopicExists)

			for _, c := range []struct{ prefix, re, want string }{
				{"", "", "alpha alpha2 alps beta"},
				{"al", "", "alpha alpha2 alps"},
				{"", "a2$", "alpha2"},
				{"al", "^alp", "alpha alpha2 alps"},
				{"al", "s", "alps"},
				{"zz", "", ""},
				{"", "^b", "beta"},
			} {
				names, err := list(c.prefix, c.re)
				if err != nil || strings.Join(names, " ") != c.want {
					t.Fatalf("topics(%q, %q) = %q, %v; want %q", c.prefix, c.re, names, err, c.want)
				}
			}
			_, err := list("", "a(")
			wantCode(t, err, netproto.CodeMalformed)
			_, err = list("", strings.Repeat("a", 2000))
			wantCode(t, err, netproto.CodeMalformed)

			// Offsets: empty topic, then with data, then time lookups.
			if o := p.mustOffsets(t, "alpha", 0); o != (netproto.OffsetsResponse{}) {
				t.Fatalf("empty topic offsets %+v", o)
			}
			p.mustProduce(t, "alpha", batchOf(t, "a", "b"))
			between := nowAfter(t)
			second := p.mustProduce(t, "alpha", batchOf(t, "c"))
			o := p.mustOffsets(t, "alpha", between)
			if o.Start != 0 || o.End != 3 || o.AtTime != second.BaseOffset {
				t.Fatalf("offsets at %d: %+v, want [0, 3) at %d", between, o, second.BaseOffset)
			}
			if o := p.mustOffsets(t, "alpha", 1); o.AtTime != 0 {
				t.Fatalf("offsets at time 1: %+v, want AtTime 0", o)
			}
			if o := p.mustOffsets(t, "alpha", time.Now().Add(time.Hour).UnixNano()); o.AtTime != 3 {
				t.Fatalf("offsets an hour ahead: %+v, want AtTime = End = 3", o)
			}
			_, err = p.offsets("nope", 0)
			wantCode(t, err, netproto.CodeTopicNotFound)

			// Delete: gone from the list, its offsets and a second delete fail.
			if _, err := p.call(netproto.OpDeleteTopic, &netproto.DeleteTopicRequest{Topic: []byte("alpha")}); err != nil {
				t.Fatal(err)
			}
			_, err = p.call(netproto.OpDeleteTopic, &netproto.DeleteTopicRequest{Topic: []byte("alpha")})
			wantCode(t, err, netproto.CodeTopicNotFound)
			_, err = p.offsets("alpha", 0)
			wantCode(t, err, netproto.CodeTopicNotFound)
			if names, err := list("alpha", ""); err != nil || len(names) != 1 || names[0] != "alpha2" {
				t.Fatalf("after delete: %q %v", names, err)
			}
			// InitProducer hands out a fresh nonzero producer id each time.
			var ids [2]uint64
			for i := range ids {
				body, err := p.call(netproto.OpInitProducer, &netproto.InitProducerRequest{})
				if err != nil {
					t.Fatal(err)
				}
				var ip netproto.InitProducerResponse
				if err := ip.Decode(body); err != nil || ip.ProducerID == 0 {
					t.Fatalf("InitProducer: %+v %v", ip, err)
				}
				ids[i] = ip.ProducerID
			}
			if ids[0] == ids[1] {
				t.Fatalf("two InitProducer calls gave the same id %d", ids[0])
			}

			// Recreated, it starts empty.
			if err := create("alpha"); err != nil {
				t.Fatal(err)
			}
			if o := p.mustOffsets(t, "alpha", 0); o.End != 0 {
				t.Fatalf("recreated topic: %+v", o)
			}
		})
	}
}

// Promise (PROTOCOL.md, Truncate): whole segments below the cut go; with
// both BeforeOffset and BeforeTime the later cut wins; a cut at End
// empties the topic; a cut past End is OffsetOutOfRange.
func TestTruncate(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			// One batch per segment, so that every batch boundary can be cut.
			e := openEngine(t, engine.Options{SegmentEntries: 1})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			var times []int64 // a time between batch i-1 and batch i
			for i := range 5 {
				times = append(times, nowAfter(t))
				p.mustProduce(t, "t", batchOf(t, fmt.Sprint(i, "a"), fmt.Sprint(i, "b")))
			}
			truncate := func(off uint64, tm int64) (uint64, error) {
				var resp netproto.TruncateResponse
				err := p.callInto(netproto.OpTruncate, &netproto.TruncateRequest{Topic: []byte("t"), BeforeOffset: off, BeforeTime: tm}, &resp)
				return resp.Start, err
			}
			// Offset cut 2 (batch 1), time cut before batch 2 (offset 4): 4 wins.
			if start, err := truncate(2, times[2]); err != nil || start != 4 {
				t.Fatalf("truncate(2, t2) = %d, %v; want 4", start, err)
			}
			// Offset cut 8, time cut before batch 3 (offset 6): 8 wins.
			if start, err := truncate(8, times[3]); err != nil || start != 8 {
				t.Fatalf("truncate(8, t3) = %d, %v; want 8", start, err)
			}
			o := p.mustOffsets(t, "t", 0)
			if o.Start != 8 || o.End != 10 {
				t.Fatalf("offsets after truncate: %+v", o)
			}
			_, err := p.consume(netproto.ConsumeRequest{Topic: []byte("t"), Offset: 2})
			pe := wantCode(t, err, netproto.CodeOffsetOutOfRange)
			if pe.Start != 8 || pe.End != 10 {
				t.Fatalf("out of range error %+v", pe)
			}
			_, err = truncate(11, 0)
			wantCode(t, err, netproto.CodeOffsetOutOfRange)
			if start, err := truncate(10, 0); err != nil || start != 10 {
				t.Fatalf("truncate at end = %d, %v", start, err)
			}
			if o := p.mustOffsets(t, "t", 0); o.Start != 10 || o.End != 10 {
				t.Fatalf("offsets after truncating everything: %+v", o)
			}
		})
	}
}

// Promise (PROTOCOL.md, Watch): a Watch is answered with an empty response,
// then one event per topic with its range at registration, then an event
// after each change of End (produce) and Start (truncate); a watch of a
// missing topic is refused with TopicNotFound and registers nothing; a
// watched topic that is deleted gets TopicNotFound on the watch's id.
func TestWatch(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{SegmentEntries: 1})
			ts := startServer(t, e, network, Options{})
			prod := mustDial(t, ts, "")
			for _, n := range []string{"a", "b"} {
				prod.mustCall(t, netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte(n)}, nil)
			}
			prod.mustProduce(t, "b", batchOf(t, "x", "y"))

			w := mustDial(t, ts, "")
			_, err := w.call(netproto.OpWatch, &netproto.WatchRequest{Topics: [][]byte{[]byte("a"), []byte("nope")}})
			wantCode(t, err, netproto.CodeTopicNotFound)

			// Repeated names count once.
			req := &netproto.WatchRequest{Topics: [][]byte{[]byte("a"), []byte("b"), []byte("a")}}
			if _, err := w.call(netproto.OpWatch, req); err != nil {
				t.Fatalf("watch: %v", err)
			}
			watchID := w.next
			next := func() netproto.WatchEvent {
				t.Helper()
				h, body, err := w.recv(5 * time.Second)
				if err != nil {
					t.Fatalf("waiting for a watch event: %v", err)
				}
				var ev netproto.WatchEvent
				if h.Opcode != netproto.OpWatchEvent || h.RequestID != watchID || h.Status != 0 || ev.Decode(body) != nil {
					t.Fatalf("frame %+v is not an event of watch %d", h, watchID)
				}
				ev.Topic = bytes.Clone(ev.Topic)
				return ev
			}
			first := map[string]netproto.WatchEvent{}
			for range 2 {
				ev := next()
				first[string(ev.Topic)] = ev
			}
			if first["a"].End != 0 || first["b"].Start != 0 || first["b"].End != 2 || len(first) != 2 {
				t.Fatalf("first events %+v", first)
			}
			prod.mustProduce(t, "a", batchOf(t, "1", "2", "3"))
			if ev := next(); string(ev.Topic) != "a" || ev.End != 3 {
				t.Fatalf("event after produce: %+v", ev)
			}
			prod.mustProduce(t, "b", batchOf(t, "z"))
			if ev := next(); string(ev.Topic) != "b" || ev.End != 3 {
				t.Fatalf("event after produce: %+v", ev)
			}
			var tr netproto.TruncateResponse
			prod.mustCall(t, netproto.OpTruncate, &netproto.TruncateRequest{Topic: []byte("b"), BeforeOffset: 2}, &tr)
			if ev := next(); string(ev.Topic) != "b" || ev.Start != tr.Start || ev.Start != 2 || ev.End != 3 {
				t.Fatalf("event after truncate to %d: %+v", tr.Start, ev)
			}
			// The watching connection still answers other requests.
			if o, err := w.offsets("a", 0); err != nil || o.End != 3 {
				t.Fatalf("offsets on the watch connection: %+v %v", o, err)
			}
			// A watched topic that is deleted ends its part of the watch
			// with TopicNotFound on the watch's id.
			prod.mustCall(t, netproto.OpDeleteTopic, &netproto.DeleteTopicRequest{Topic: []byte("a")}, nil)
			h, body, err := w.recv(5 * time.Second)
			if err != nil || h.RequestID != watchID || h.Status != netproto.CodeTopicNotFound {
				t.Fatalf("after deleting a watched topic: %+v %v %v", h, err, netproto.DecodeError(h.Status, body))
			}
		})
	}
}

// Promise (PROTOCOL.md, Connection 2): a client may send 100 requests
// before reading any answer; each is answered exactly once with its id and
// opcode, in any order.
func TestPipelining(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			p.mustProduce(t, "t", batchOf(t, "seed"))

			const n = 100
			ops := map[uint64]netproto.Opcode{}
			var frames []byte
			for i := range uint64(n) {
				id := 1000 + i*7 // ids need only be unique
				var op netproto.Opcode
				var msg netproto.Encoder
				switch i % 5 {
				case 0, 1:
					op, msg = netproto.OpProduce, &netproto.ProduceRequest{Topic: []byte("t"), Batch: batchOf(t, fmt.Sprint("m", i))}
				case 2:
					op, msg = netproto.OpConsume, &netproto.ConsumeRequest{Topic: []byte("t"), Offset: 0}
				case 3:
					op, msg = netproto.OpOffsets, &netproto.OffsetsRequest{Topic: []byte("t")}
				case 4:
					op, msg = netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte(fmt.Sprint("new", i))}
				}
				ops[id] = op
				frames = netproto.AppendFrame(frames, netproto.Header{Opcode: op, RequestID: id}, msg)
			}
			if err := p.writeRaw(frames); err != nil {
				t.Fatal(err)
			}
			var bases []uint64
			for range n {
				h, body, err := p.recv(ioTimeout)
				if err != nil {
					t.Fatalf("after %d answers: %v", n-len(ops), err)
				}
				op, ok := ops[h.RequestID]
				if !ok || op != h.Opcode || h.Status != 0 {
					t.Fatalf("unexpected answer %+v (pending %v)", h, ok)
				}
				delete(ops, h.RequestID)
				if op == netproto.OpProduce {
					var pr netproto.ProduceResponse
					if err := pr.Decode(body); err != nil {
						t.Fatal(err)
					}
					bases = append(bases, pr.BaseOffset)
				}
			}
			slices.Sort(bases)
			for i, b := range bases {
				if b != uint64(i+1) {
					t.Fatalf("produce offsets %v are not 1..40", bases)
				}
			}
			if len(ops) != 0 {
				t.Fatalf("unanswered: %v", ops)
			}
		})
	}
}

// Promise: produces pipelined on one connection to one topic are stored in
// the order they were sent (a producer's messages keep their order), and
// each acknowledgement gives the offset its batch was stored at.
func TestPipelinedProduceOrder(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, network, Options{AutoCreateTopics: true})
			p := mustDial(t, ts, "")
			p.mustProduce(t, "t", batchOf(t, "first"))
			const n = 300
			var frames []byte
			for i := range n {
				frames = netproto.AppendFrame(frames, netproto.Header{Opcode: netproto.OpProduce, RequestID: uint64(i)},
					&netproto.ProduceRequest{Topic: []byte("t"), Batch: batchOf(t, fmt.Sprint(i))})
			}
			p.mustWrite(t, frames)
			acked := map[uint64]uint64{} // request id -> base offset
			for range n {
				h, body, err := p.recv(ioTimeout)
				var pr netproto.ProduceResponse
				if err != nil || h.Status != 0 || pr.Decode(body) != nil {
					t.Fatalf("answer %+v: %v", h, err)
				}
				acked[h.RequestID] = pr.BaseOffset
			}
			stored := engineMessages(t, e, "t")
			for i := range n {
				want := message{uint64(i + 1), fmt.Sprint(i)}
				if stored[i+1] != want || acked[uint64(i)] != want.off {
					t.Fatalf("request %d acked at %d; offset %d holds %v, want %q (sent order)", i, acked[uint64(i)], i+1, stored[i+1], want.val)
				}
			}
		})
	}
}
