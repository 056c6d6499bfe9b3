package client

import (
	"bytes"
	"context"
	"sync"
)

// Writer is an io.Writer that sends every line written to it as one
// message of a Producer, without its trailing newline. A line may arrive
// in pieces across Writes; the piece after the last newline waits for the
// rest. A line longer than the Producer's batch size is sent in pieces of
// that size. Use it under log.New or slog.NewJSONHandler; it is safe for
// concurrent use, and each Write is one call of the Producer's Send (in
// the background context: Write blocks while the Producer's buffer is
// full).
type Writer struct {
	p      *Producer
	mu     sync.Mutex
	line   []byte // guarded by mu: the partial line
	closed bool   // guarded by mu
}

// NewWriter returns a Writer that sends lines through p.
func NewWriter(p *Producer) *Writer { return &Writer{p: p} }

// Write sends the complete lines in b and keeps the rest for the next
// Write. It returns how many bytes of b were taken and the Producer's
// error, if Send failed.
func (w *Writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.line = append(w.line, b...)
			if len(w.line) >= w.p.mp.cfg.maxBytes {
				if err := w.sendLine(); err != nil {
					return n - len(b), err
				}
			}
			break
		}
		var err error
		if len(w.line) > 0 {
			w.line = append(w.line, b[:i]...)
			err = w.sendLine()
		} else {
			err = w.p.Send(context.Background(), b[:i])
		}
		if err != nil {
			return n - len(b), err
		}
		b = b[i+1:]
	}
	return n, nil
}

// sendLine sends the partial line; mu is held.
func (w *Writer) sendLine() error {
	err := w.p.Send(context.Background(), w.line)
	w.line = w.line[:0]
	return err
}

// Flush waits until every complete line written so far is stored (see
// Producer.Flush); a partial line stays buffered.
func (w *Writer) Flush(ctx context.Context) error { return w.p.Flush(ctx) }

// Close sends the partial line, if any, as a message of its own and
// flushes the Producer; it does not close the Producer. Later Writes fail
// with ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	var err error
	if len(w.line) > 0 {
		err = w.sendLine()
	}
	w.mu.Unlock()
	if ferr := w.p.Flush(context.Background()); err == nil {
		err = ferr
	}
	return err
}
