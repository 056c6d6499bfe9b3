package ratelog

import (
	"testing"
	"time"
)

// A flood of lines within a second logs one, and the next one logged
// after the second says how many were left out.
func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := Limiter{now: func() time.Time { return now }}
	if ok, d := l.Allow(); !ok || d != 0 {
		t.Fatalf("first line: %v %d", ok, d)
	}
	for i := range 500 {
		now = now.Add(time.Millisecond)
		if ok, _ := l.Allow(); ok {
			t.Fatalf("line %d within the second logged", i)
		}
	}
	now = now.Add(Every)
	if ok, d := l.Allow(); !ok || d != 500 {
		t.Fatalf("after the second: %v, %d left out, want true, 500", ok, d)
	}
}
