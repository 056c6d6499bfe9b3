package server

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/segment"
)

// Promise: one damaged batch with no healthy copy hides nothing before it
// from a consumer. A consume whose byte budget covers the damage returns
// the good batches before it; the consume that starts at the damage gets
// Corrupt with the damaged offsets in Start and End, and a consume at End
// reads on.
func TestConsumeStopsBeforeDamageAndNamesIt(t *testing.T) {
	for _, mode := range modes {
		t.Run(modeName(mode), func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, engine.Options{Dir: dir, SegmentBytes: 64 << 10})
			if err := e.CreateTopic("t"); err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, e, "unix", Options{ConsumeMode: mode})
			p := mustDial(t, ts, "")
			var size int64
			for i := range 40 {
				msgs := make([]string, 10)
				for j := range msgs {
					msgs[j] = fmt.Sprintf("m%04d-%090d", i*10+j, 0)
				}
				b := batchOf(t, msgs...)
				size = int64(len(b))
				p.mustProduce(t, "t", b)
			}
			// Flip a byte of batch 12 (offsets 120..129) in the log.
			log := filepath.Join(dir, "topics", "t", segment.LogName(0))
			f, err := os.OpenFile(log, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var one [1]byte
			if _, err := f.ReadAt(one[:], 12*size+200); err != nil {
				t.Fatal(err)
			}
			one[0] ^= 1
			if _, err := f.WriteAt(one[:], 12*size+200); err != nil {
				t.Fatal(err)
			}
			f.Close()

			resp := p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: 0, MaxBytes: 1 << 20})
			msgs, err := decodeBatches(resp.Batches)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 120 || msgs[119].off != 119 {
				t.Fatalf("consume from 0 returned %d messages, want the 120 before the damage", len(msgs))
			}
			for _, off := range []uint64{120, 125} {
				_, err := p.consume(netproto.ConsumeRequest{Topic: []byte("t"), Offset: off, MaxBytes: 1 << 20})
				pe := wantCode(t, err, netproto.CodeCorrupt)
				if pe.Start != 120 || pe.End != 130 || pe.Retriable {
					t.Fatalf("consume at %d: %+v, want Start 120, End 130, not retriable", off, pe)
				}
			}
			resp = p.mustConsume(t, netproto.ConsumeRequest{Topic: []byte("t"), Offset: 130, MaxBytes: 1 << 20})
			if msgs, err := decodeBatches(resp.Batches); err != nil || len(msgs) != 270 {
				t.Fatalf("consume after the damage: %d messages, %v; want 270", len(msgs), err)
			}
		})
	}
}
