package retry

import (
	"context"
	"testing"
	"time"
)

// The delay doubles from the first one and never passes the cap, however
// many failures came before.
func TestBackoff(t *testing.T) {
	first, limit := 100*time.Millisecond, 5*time.Second
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i, w := range want {
		if got := Backoff(i+1, first, limit); got != w*time.Millisecond {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	for _, n := range []int{0, -1} {
		if got := Backoff(n, first, limit); got != first {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, first)
		}
	}
	for _, n := range []int{31, 32, 33, 64, 1 << 30} {
		if got := Backoff(n, first, limit); got != limit {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, limit)
		}
	}
}

// Sleep returns false at once when its context ends, true when the time
// passed.
func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep with a live context = false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context = true")
	}
}
