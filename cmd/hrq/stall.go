package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// stalledError ends a produce whose messages the broker stopped storing:
// the Producer would otherwise resend them for as long as it runs.
type stalledError struct {
	after   time.Duration
	pending uint64
}

func (e stalledError) Error() string {
	return fmt.Sprintf("no acknowledgement for %s; %d messages not stored (--timeout sets the wait)", e.after, e.pending)
}

// stallGuard cancels a produce once messages have waited for an
// acknowledgement for longer than timeout with none arriving. A quiet
// input is no stall: the clock runs only while messages wait.
type stallGuard struct {
	timeout    time.Duration
	sent, done atomic.Uint64 // messages handed to Send; acked or failed
	since      atomic.Int64  // unix nanoseconds of the last ack, or of the first wait after none was pending
	cancel     context.CancelCauseFunc
	stop       chan struct{}
}

// guardStalls returns ctx, cancelled when the produce stalls for timeout
// (0: never), and the guard to report sends and acks to. Call close when
// the produce is over.
func guardStalls(ctx context.Context, timeout time.Duration) (context.Context, *stallGuard) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &stallGuard{timeout: timeout, cancel: cancel, stop: make(chan struct{})}
	g.since.Store(time.Now().UnixNano())
	if timeout > 0 {
		go g.run()
	}
	return ctx, g
}

// sending counts a message about to be sent.
func (g *stallGuard) sending() {
	if g.sent.Load() == g.done.Load() {
		g.since.Store(time.Now().UnixNano()) // nothing was waiting: the clock starts now
	}
	g.sent.Add(1)
}

// finished counts n messages acknowledged or failed.
func (g *stallGuard) finished(n int) {
	g.since.Store(time.Now().UnixNano())
	g.done.Add(uint64(n))
}

func (g *stallGuard) run() {
	t := time.NewTicker(min(g.timeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		waiting := g.sent.Load() - min(g.done.Load(), g.sent.Load())
		if waiting > 0 && time.Since(time.Unix(0, g.since.Load())) > g.timeout {
			g.cancel(stalledError{after: g.timeout, pending: waiting})
			return
		}
	}
}

// waiting returns how long messages have waited with no acknowledgement
// (0 when none waits).
func (g *stallGuard) waiting() time.Duration {
	if g.sent.Load() <= g.done.Load() {
		return 0
	}
	return time.Since(time.Unix(0, g.since.Load()))
}

// close stops the guard and releases its context.
func (g *stallGuard) close() {
	close(g.stop)
	g.cancel(nil)
}

// stalled returns the guard's error if it cancelled ctx, else nil.
func stalled(ctx context.Context) error {
	if err, ok := context.Cause(ctx).(stalledError); ok {
		return err
	}
	return nil
}
