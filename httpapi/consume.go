package httpapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// defaultLimit is a consume's limit when it names none.
const defaultLimit = 1000

// position is where a consume or stream starts and how much it reads.
type position struct {
	offset uint64
	limit  uint64
	wait   time.Duration
}

// startOf reads offset= or from_time= (the first offset appended at or
// after it); with neither, reading starts at the topic's start.
func (a *API) startOf(topic string, q url.Values) (uint64, error) {
	if s := q.Get("offset"); s != "" {
		off, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, &inputError{msg: "offset: want an unsigned integer"}
		}
		return off, nil
	}
	if s := q.Get("from_time"); s != "" {
		tm, err := parseTime(s)
		if err != nil {
			return 0, &inputError{msg: "from_time: " + err.Error()}
		}
		return a.svc.OffsetAt(topic, tm)
	}
	start, _, err := a.svc.Offsets(topic)
	return start, err
}

// parseTime reads RFC 3339 or Unix nanoseconds.
func parseTime(s string) (time.Time, error) {
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(0, ns), nil
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 or Unix nanoseconds")
	}
	return tm, nil
}

// parseWait reads a duration ("5s", "250ms") or milliseconds ("250").
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if ms, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("wait: want a duration (5s, 250ms) or milliseconds")
	}
	return d, nil
}

// consume handles GET /topics/{topic}/messages: the messages from offset
// on, at most limit, as NDJSON (or a JSON array when Accept asks for
// application/json), with Next-Offset naming where to read next.
func (a *API) consume(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	q := r.URL.Query()
	var pos position
	var err error
	pos.offset, err = a.startOf(topic, q)
	if err != nil {
		a.paramFailed(w, err)
		return
	}
	pos.limit = defaultLimit
	if s := q.Get("limit"); s != "" {
		if pos.limit, err = strconv.ParseUint(s, 10, 64); err != nil || pos.limit == 0 {
			badRequest(w, "limit: want an integer above 0")
			return
		}
		pos.limit = min(pos.limit, uint64(a.opts.MaxMessages))
	}
	if pos.wait, err = parseWait(q.Get("wait")); err != nil {
		badRequest(w, err.Error())
		return
	}
	pos.wait = min(pos.wait, a.opts.MaxWait)

	res := &engine.ReadResult{}
	defer res.Release()
	err = a.svc.Read(topic, pos.offset, pos.limit, a.opts.MaxConsumeBytes, res)
	if err == nil && len(res.Chunks) == 0 && pos.wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), pos.wait)
		werr := a.svc.Wait(ctx, topic, pos.offset)
		cancel()
		switch {
		case werr == nil:
			err = a.svc.Read(topic, pos.offset, pos.limit, a.opts.MaxConsumeBytes, res)
		case !errors.Is(werr, context.DeadlineExceeded) && !errors.Is(werr, context.Canceled):
			err = werr
		}
	}
	if err != nil {
		a.failErr(w, err)
		return
	}
	next := pos.offset
	if len(res.Chunks) > 0 {
		next = min(pos.offset+pos.limit, res.Next())
	}
	asArray := wantsJSON(r.Header.Get("Accept"))
	h := w.Header()
	h.Set("Next-Offset", strconv.FormatUint(next, 10))
	if asArray {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	bw := bufio.NewWriterSize(&deadlineWriter{w: w, rc: rc, timeout: a.opts.WriteTimeout}, 64<<10)
	enc := encoder{w: bw, array: asArray, sent: &a.consumed}
	if asArray {
		bw.WriteByte('[')
	}
	if err := enc.chunks(res, pos.offset, next); err != nil {
		// The status is sent: the body ends short of Next-Offset. Closing
		// the connection tells the client it is cut.
		a.opts.Logger.Error("httpapi: consume cut short", "topic", topic, "err", err)
		panic(http.ErrAbortHandler)
	}
	if asArray {
		bw.WriteString("]\n")
	}
	bw.Flush()
}

// paramFailed answers a bad parameter or a service error.
// deadlineWriter gives each write WriteTimeout: a client that takes
// nothing for that long is cut off instead of holding the handler (and
// the read it pins) forever.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}

func (a *API) paramFailed(w http.ResponseWriter, err error) {
	var ie *inputError
	if errors.As(err, &ie) {
		badRequest(w, ie.Error())
		return
	}
	a.failErr(w, err)
}

// wantsJSON reports whether an Accept header prefers a JSON array to
// NDJSON.
func wantsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "application/json":
			return true
		case "application/x-ndjson", "application/ndjson", "*/*":
			return false
		}
	}
	return false
}

// encoder writes messages as JSON objects: one per line, or the elements
// of an array.
type encoder struct {
	w       *bufio.Writer
	array   bool
	n       int    // messages written
	buf     []byte // one message's JSON
	raw     []byte // decompression scratch
	lastOff uint64 // offset of the last message written
	sse     bool   // Server-Sent Events: "id:" and "data:" lines
	// deliveries, when set, is written with each message (group fetch).
	deliveries uint32
	sent       *atomic.Uint64 // counts the messages written, if set
}

// chunks writes the messages of res in [from, to).
func (e *encoder) chunks(res *engine.ReadResult, from, to uint64) error {
	if e.sent != nil {
		n0 := e.n
		defer func() { e.sent.Add(uint64(e.n - n0)) }()
	}
	for _, c := range res.Chunks {
		data := c.Data()
		for len(data) > 0 {
			h, err := record.ParseHeader(data)
			if err != nil {
				return err
			}
			size := h.Size()
			if size > len(data) {
				return fmt.Errorf("%w: batch at offset %d runs past the chunk", record.ErrCorrupt, h.BaseOffset)
			}
			if err := e.batch(data[:size], &h, from, to); err != nil {
				return err
			}
			data = data[size:]
		}
	}
	return nil
}

// batch writes the messages of one batch in [from, to).
func (e *encoder) batch(b []byte, h *record.Header, from, to uint64) error {
	if h.NextOffset() <= from || h.BaseOffset >= to {
		return nil
	}
	raw, err := record.Decompress(e.raw[:0], b, h, 0)
	if err != nil {
		return err
	}
	if h.Codec() != record.CodecNone {
		e.raw = raw
	}
	var it record.Iter
	it.ResetPayload(raw, h)
	off := h.BaseOffset
	for m, ok := it.NextMessage(); ok; m, ok = it.NextMessage() {
		if off >= from && off < to {
			if err := e.message(off, h.AppendTime, &m); err != nil {
				return err
			}
		}
		off++
	}
	return it.Err()
}

// message writes one message.
func (e *encoder) message(off uint64, appendTime int64, m *record.Message) error {
	b := e.buf[:0]
	if e.sse {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, off, 10)
		b = append(b, "\ndata: "...)
	} else if e.array && e.n > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"offset":`...)
	b = strconv.AppendUint(b, off, 10)
	b = append(b, `,"append_time":`...)
	b = strconv.AppendInt(b, appendTime, 10)
	if e.deliveries != 0 {
		b = append(b, `,"deliveries":`...)
		b = strconv.AppendUint(b, uint64(e.deliveries), 10)
	}
	if m.Timestamp != 0 {
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, m.Timestamp, 10)
	}
	if m.Key != nil {
		b = appendBytesField(b, "key", m.Key)
	}
	if m.NumHeaders() > 0 {
		b = append(b, `,"headers":{`...)
		hi := m.Headers()
		for i := 0; ; i++ {
			k, v, ok := hi.Next()
			if !ok {
				break
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v)
		}
		b = append(b, '}')
	}
	b = appendBytesField(b, "value", m.Value)
	b = append(b, '}')
	if e.sse {
		b = append(b, "\n\n"...)
	} else if !e.array {
		b = append(b, '\n')
	}
	e.buf = b
	e.n++
	e.lastOff = off
	_, err := e.w.Write(b)
	return err
}

// appendBytesField appends ,"name":"text" for valid UTF-8, else
// ,"name_b64":"base64".
func appendBytesField(b []byte, name string, v []byte) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	if utf8.Valid(v) {
		b = append(b, '"', ':')
		return appendString(b, v)
	}
	b = append(b, `_b64":"`...)
	b = base64Append(b, v)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight ASCII bytes that need no escape at a time.
		for i+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[i:])
			if x&highs != 0 || !plain8(x) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func base64Append(b, v []byte) []byte { return base64.StdEncoding.AppendEncode(b, v) }
