// Package retry holds the two helpers every retry loop in this module
// shares: the exponential delay before the next attempt and a sleep that
// ends early when its context does. The client and the hrq tool use it.
package retry

import (
	"context"
	"time"
)

// Backoff returns the delay before attempt n+1 after n failures in a row
// (n >= 1): first·2^(n-1), capped at limit. An n below 1 is taken as 1.
func Backoff(n int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d > 0 && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Sleep waits d or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
