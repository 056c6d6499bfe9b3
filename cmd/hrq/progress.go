package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 200 * time.Millisecond

// meter counts what a benchmark has done so far; any goroutine may add.
type meter struct {
	msgs, bytes, failed atomic.Uint64
}

// progress draws a meter as one line on a terminal:
//
//	42% |████████            | (420000/1000000, 210345 msgs/s) acked, 21.0 MB/s, ETA 2s
//
// It redraws on a ticker of its own, so a stalled benchmark shows it.
type progress struct {
	bar   *progressbar.ProgressBar
	m     *meter
	total uint64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startProgress draws m's progress towards total on w until finish.
// label names what the count is (acked, consumed).
func startProgress(w io.Writer, label string, m *meter, total uint64) *progress {
	bar := progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(plainWriter{w}),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msgs"),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionClearOnFinish(),
	)
	p := &progress{bar: bar, m: m, total: total, start: time.Now(), stop: make(chan struct{})}
	bar.Describe(label + ", " + p.rates())
	p.wg.Add(1)
	go p.run(label)
	return p
}

func (p *progress) run(label string) {
	defer p.wg.Done()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.bar.Describe(label + ", " + p.rates())
			p.bar.Set64(int64(min(p.m.msgs.Load(), p.total)))
		}
	}
}

// rates returns "12.3 MB/s, ETA 4s" for the progress so far.
func (p *progress) rates() string {
	secs := time.Since(p.start).Seconds()
	n := p.m.msgs.Load()
	mbps := float64(p.m.bytes.Load()) / 1e6 / max(secs, 1e-9)
	eta := "?"
	if n > 0 && p.total > n {
		left := time.Duration(float64(p.total-n) / (float64(n) / secs) * float64(time.Second))
		eta = left.Round(time.Second).String()
	} else if p.total <= n {
		eta = "0s"
	}
	return fmt.Sprintf("%.1f MB/s, ETA %s", mbps, eta)
}

// finish stops redrawing and clears the line.
func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
	p.bar.Finish()
}

// plainWriter hides the *os.File under a writer, so that the progress bar
// does not fsync the terminal after every redraw.
type plainWriter struct{ w io.Writer }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

// status prints a meter as a plain line every so often, for a stderr that
// is no terminal (a log file, a CI job): a benchmark that stops making
// progress says so instead of going quiet.
//
//	hrq: bench produce "t": 420000/1000000 acked, 0 failed, 210345 msgs/s, 21.0 MB/s; no acknowledgement for 20s
type status struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// startStatus prints what's progress towards total on w every interval
// until finish. idle, if not nil, says how long messages have waited with
// no acknowledgement (0: none wait).
func startStatus(w io.Writer, what, label string, m *meter, total uint64, every time.Duration, idle func() time.Duration) *status {
	s := &status{stop: make(chan struct{})}
	start := time.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			secs := max(time.Since(start).Seconds(), 1e-9)
			n := m.msgs.Load()
			line := fmt.Sprintf("hrq: %s: %d/%d %s, %d failed, %.0f msgs/s, %.1f MB/s", what, n, total, label,
				m.failed.Load(), float64(n)/secs, float64(m.bytes.Load())/1e6/secs)
			if idle != nil {
				if d := idle(); d >= time.Second {
					line += fmt.Sprintf("; no acknowledgement for %s", d.Round(time.Second))
				}
			}
			fmt.Fprintln(w, line)
		}
	}()
	return s
}

// finish stops the status lines.
func (s *status) finish() {
	close(s.stop)
	s.wg.Wait()
}
