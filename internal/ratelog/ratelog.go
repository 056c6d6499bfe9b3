// Package ratelog spaces log lines a client can cause: a flood of bad
// requests or failed logins must not flood the broker's log. One Limiter
// per kind of line; a line not logged is counted, and the next line that
// is logged says how many were left out.
package ratelog

import (
	"sync"
	"time"
)

// Every is the spacing the broker's listeners use: at most one line per
// kind per second.
const Every = time.Second

// Limiter lets one line through per Every. The zero value is ready.
type Limiter struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
	now     func() time.Time // tests
}

// Allow reports whether a line may be logged now and, if so, how many
// were left out since the last one logged.
func (l *Limiter) Allow() (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if !l.last.IsZero() && now.Sub(l.last) < Every {
		l.dropped++
		return false, 0
	}
	dropped, l.last, l.dropped = l.dropped, now, 0
	return true, dropped
}
