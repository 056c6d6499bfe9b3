package client_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

type batchBytes struct {
	mu sync.Mutex
	n  []int
}

func (h *batchBytes) OnBatchProduced(_ string, _ uint64, _, bytes int, _ time.Duration, _ error) {
	h.mu.Lock()
	h.n = append(h.n, bytes)
	h.mu.Unlock()
}

// A large single message, which Produce sends from the caller's memory
// in pieces, is stored and read back byte for byte, whatever its length
// around the alignment and the threshold, and the hooks see the whole
// batch's size; one over the frame limit is refused before sending.
func TestProduceLargeSingleMessageRoundTrip(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	hook := new(batchBytes)
	c := b.dial(client.WithHooks(hook))
	ctx := testCtx(t)
	createTopic(t, c, "big")
	sizes := []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 100003, 1 << 20, 1<<20 + 7}
	for i, n := range sizes {
		msg := make([]byte, n)
		for j := range msg {
			msg[j] = byte(j*31 + i)
		}
		off, err := c.Produce(ctx, "big", msg)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if off != uint64(i) {
			t.Fatalf("%d bytes: offset %d, want %d", n, off, i)
		}
		want, _ := record.AppendBatch(nil, msg)
		hook.mu.Lock()
		got := hook.n[len(hook.n)-1]
		hook.mu.Unlock()
		if got != len(want) {
			t.Fatalf("%d bytes: hook saw a %d-byte batch, want %d", n, got, len(want))
		}
	}
	var buf client.ConsumeBuffer
	for i, n := range sizes {
		m, err := c.Consume(ctx, "big", uint64(i), 1, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if m.Len() != 1 || len(m.At(0).Value) != n {
			t.Fatalf("offset %d: %d messages", i, m.Len())
		}
		for j, v := range m.At(0).Value {
			if v != byte(j*31+i) {
				t.Fatalf("offset %d: byte %d differs", i, j)
			}
		}
	}
	small := b.dial(client.WithMaxBody(256 << 10))
	if _, err := small.Produce(ctx, "big", bytes.Repeat([]byte{1}, 300<<10)); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("message over the frame limit: %v, want ErrMessageTooLarge", err)
	}
}
