package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

// damageBatch flips a payload byte of batch number k (counting from 0) of
// topic's first segment on disk; the broker sees it through its mapping.
func damageBatch(t *testing.T, dir, topic string, k int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "topics", topic, fmt.Sprintf("%020d.log", 0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pos int64
	var hdr [record.HeaderSize]byte
	for range k + 1 {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			t.Fatal(err)
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
		pos += int64(h.Size())
		k--
	}
	if _, err := f.WriteAt([]byte{0xff}, pos+record.HeaderSize+3); err != nil {
		t.Fatal(err)
	}
}

// Promise: a Consumer told to skip damage reads every good message of a
// topic, reports the damaged offsets it skipped (as the error it yields),
// and goes on; without the option the damage ends the iteration after
// every message before it was yielded.
func TestConsumerSkipsNamedDamage(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, "unix", engine.Options{Dir: dir}, server.Options{})
	c := b.dial()
	createTopic(t, c, "t")
	produceN(t, c, "t", 100, 10) // batches of 10: offsets 10k..10k+9
	damageBatch(t, dir, "t", 4)  // offsets 40..49

	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("skip=%v", skip), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
			defer cancel()
			opts := []client.ConsumeOption{client.ConsumeWait(10 * time.Millisecond)}
			if skip {
				opts = append(opts, client.ConsumeSkipCorrupt())
			}
			cs := client.NewConsumer(c, "t", 0, opts...)
			var got []uint64
			var errs []*client.Error
			for m, err := range cs.Messages(ctx) {
				if err != nil {
					var e *client.Error
					if !errors.As(err, &e) || !errors.Is(err, client.ErrCorrupt) {
						t.Fatalf("error %v, want a corruption *Error", err)
					}
					errs = append(errs, e)
					continue
				}
				if !bytes.Equal(m.Value, payload(int(m.Offset))) {
					t.Fatalf("offset %d: wrong value", m.Offset)
				}
				got = append(got, m.Offset)
				if m.Offset == 99 {
					break
				}
			}
			if len(errs) != 1 || errs[0].Code != netproto.CodeCorrupt || errs[0].Start != 40 || errs[0].End != 50 {
				t.Fatalf("errors %+v, want one naming [40, 50)", errs)
			}
			want := 40
			if skip {
				want = 90
			}
			if len(got) != want {
				t.Fatalf("got %d messages, want %d", len(got), want)
			}
			for i, off := range got {
				exp := uint64(i)
				if i >= 40 {
					exp += 10 // past the damaged offsets
				}
				if off != exp {
					t.Fatalf("message %d has offset %d, want %d", i, off, exp)
				}
			}
			if skip && cs.Offset() != 100 {
				t.Fatalf("Offset() = %d after the last message, want 100", cs.Offset())
			}
		})
	}
}
