package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
)

// keepAlive is how often an idle stream sends a comment (SSE) or an empty
// line (NDJSON), so that proxies keep it open and a gone client is noticed.
const keepAlive = 15 * time.Second

// stream handles GET /topics/{topic}/stream: it follows the topic from
// offset= (or from_time=, or Last-Event-ID + 1, or the topic's end) as
// Server-Sent Events when Accept asks for text/event-stream, else as
// chunked NDJSON, until the client goes.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	q := r.URL.Query()
	var off uint64
	var err error
	switch last := r.Header.Get("Last-Event-ID"); {
	case last != "":
		id, perr := strconv.ParseUint(strings.TrimSpace(last), 10, 64)
		if perr != nil {
			badRequest(w, "Last-Event-ID: want the offset of the last event received")
			return
		}
		off = id + 1
	case q.Get("offset") != "" || q.Get("from_time") != "":
		off, err = a.startOf(topic, q)
	default:
		_, off, err = logsvc.LatestOffsets(a.svc, topic) // new messages only
	}
	if err != nil {
		a.paramFailed(w, err)
		return
	}
	if _, _, err := a.svc.Offsets(topic); err != nil {
		a.failErr(w, err)
		return
	}
	if n := a.streams.Add(1); int(n) > a.opts.MaxStreams {
		a.streams.Add(-1)
		fail(w, http.StatusTooManyRequests, apiError{Error: fmt.Sprintf("%d streams open, the limit is %d", n-1, a.opts.MaxStreams), Retriable: true})
		return
	}
	defer a.streams.Add(-1)

	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	h := w.Header()
	if sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// A stream lives as long as the client reads: each flush gets
	// WriteTimeout, and a client that takes nothing for that long is
	// dropped (its place under MaxStreams freed).
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() error {
		rc.SetWriteDeadline(time.Now().Add(a.opts.WriteTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	if sse {
		bw.WriteString("retry: 1000\n\n")
	}
	if flush() != nil {
		return
	}
	enc := encoder{w: bw, sse: sse, sent: &a.consumed}
	res := &engine.ReadResult{}
	defer res.Release()
	ctx := r.Context()
	for ctx.Err() == nil {
		err := a.svc.Read(topic, off, uint64(a.opts.MaxMessages), a.opts.MaxConsumeBytes, res)
		var re *engine.RangeError
		if errors.As(err, &re) && off < re.Start {
			off = re.Start // retention passed the follower: go on from the start
			continue
		}
		if err != nil {
			a.streamError(bw, sse, err)
			flush()
			return
		}
		if len(res.Chunks) > 0 {
			rc.SetWriteDeadline(time.Now().Add(a.opts.WriteTimeout)) // bw writes through when full
			next := res.Next()
			if err := enc.chunks(res, off, next); err != nil {
				a.streamError(bw, sse, err)
				flush()
				return
			}
			res.Release()
			off = next
			if flush() != nil {
				return
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, keepAlive)
		werr := a.svc.Wait(wctx, topic, off)
		cancel()
		switch {
		case werr == nil:
		case errors.Is(werr, context.DeadlineExceeded) && ctx.Err() == nil:
			if sse {
				bw.WriteString(": keep-alive\n\n")
			} else {
				bw.WriteString("\n")
			}
			if flush() != nil {
				return
			}
		case ctx.Err() != nil:
			return
		default:
			a.streamError(bw, sse, werr)
			flush()
			return
		}
	}
}

// streamError ends a stream with an error event (SSE) or an error line.
func (a *API) streamError(bw *bufio.Writer, sse bool, err error) {
	_, e := statusOf(err)
	b := []byte(`{"error":`)
	b = appendString(b, []byte(e.Error))
	b = append(b, '}')
	if sse {
		bw.WriteString("event: error\ndata: ")
		bw.Write(b)
		bw.WriteString("\n\n")
		return
	}
	bw.Write(append(b, '\n'))
}
