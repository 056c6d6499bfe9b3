package httpapi

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// bodyKind is how a produce body is split into messages.
type bodyKind int

const (
	kindNDJSON bodyKind = iota // one JSON text per line, stored as the line's bytes
	kindText                   // one message per line, any bytes
	kindJSON                   // a JSON array of strings or message objects
	kindBinary                 // the whole body is one message
)

// kindOf reads a produce's Content-Type.
func kindOf(contentType string) (bodyKind, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return kindNDJSON, true
	case "text/plain":
		return kindText, true
	case "application/json":
		return kindJSON, true
	case "application/octet-stream":
		return kindBinary, true
	}
	return 0, false
}

// formats are the words of ?format=, which overrides Content-Type.
var formats = map[string]bodyKind{"ndjson": kindNDJSON, "text": kindText, "json": kindJSON, "binary": kindBinary}

// budgetStep is the unit in which a produce takes in-flight bytes as its
// batch grows.
const budgetStep = 1 << 20

// produceResult is the answer to a stored produce.
type produceResult struct {
	Topic      string `json:"topic"`
	BaseOffset uint64 `json:"base_offset"`
	Count      int    `json:"count"`
	NextOffset uint64 `json:"next_offset"`
}

// inputError is bad input in a produce body: a 400 naming the line (or
// array element), or 413 when too large is set.
type inputError struct {
	line     int
	msg      string
	tooLarge bool
}

func (e *inputError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

// errBusy reports that the produces in flight hold the byte budget.
var errBusy = errors.New("httpapi: too many message bytes in flight; retry later")

// produce handles POST /topics/{topic}/messages: the body becomes one
// batch, appended whole or not at all, answered once stored.
func (a *API) produce(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := engine.ValidTopic(topic); err != nil {
		badRequest(w, err.Error())
		return
	}
	kind, ok := kindOf(r.Header.Get("Content-Type"))
	if f := r.URL.Query().Get("format"); f != "" {
		// For shippers that cannot set Content-Type (or send a wrong one).
		kind, ok = formats[f]
		if !ok {
			badRequest(w, fmt.Sprintf("format %q: want ndjson, text, json or binary", f))
			return
		}
	}
	if !ok {
		fail(w, http.StatusUnsupportedMediaType, apiError{Error: fmt.Sprintf("Content-Type %q: want application/x-ndjson, text/plain, application/json or application/octet-stream (or say ?format=)", r.Header.Get("Content-Type"))})
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 256 {
		badRequest(w, "Idempotency-Key longer than 256 bytes")
		return
	}
	if r.ContentLength > a.opts.MaxBodyBytes {
		fail(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("body of %d bytes, the limit is %d", r.ContentLength, a.opts.MaxBodyBytes)})
		return
	}
	if n := a.inflight.Add(1); int(n) > a.opts.MaxInFlight {
		a.inflight.Add(-1)
		fail(w, http.StatusTooManyRequests, apiError{Error: fmt.Sprintf("%d produce requests in flight, the limit is %d; retry later", n-1, a.opts.MaxInFlight), Retriable: true})
		return
	}
	defer a.inflight.Add(-1)

	// A slow body (slow-loris) ends at the deadline: the read fails and
	// nothing is stored. A writer that wraps the connection's and cannot
	// set deadlines still has the elapsed-time check of timedReader.
	deadline := time.Now().Add(a.opts.RequestTimeout)
	http.NewResponseController(w).SetReadDeadline(deadline)
	// MaxBytesReader tells the server, through the writer it made, to
	// close the connection after a body over the limit.
	sw := w
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		sw = u.Unwrap()
	}
	body := http.MaxBytesReader(sw, r.Body, a.opts.MaxBodyBytes)
	in, closeIn, err := decoded(&timedReader{r: body, deadline: deadline}, r.Header.Get("Content-Encoding"))
	if err != nil {
		a.bodyFailed(w, err)
		return
	}
	defer closeIn()
	in = &limitedReader{r: in, left: a.opts.MaxBodyBytes}

	b := a.getBuilder()
	defer a.putBuilder(b)
	s := sink{a: a, b: b}
	defer s.release()
	switch kind {
	case kindNDJSON, kindText:
		err = a.readLines(in, &s, kind == kindNDJSON)
	case kindJSON:
		err = a.readJSON(in, &s)
	case kindBinary:
		_, err = b.AddFrom(in, int(min(a.opts.MaxBodyBytes, int64(record.MaxBatchSize))))
		if err == nil {
			err = s.grew()
		}
	}
	if err != nil {
		a.bodyFailed(w, err)
		return
	}
	batch, err := b.Finish()
	if err != nil {
		badRequest(w, "the body holds no message")
		return
	}
	if key != "" {
		record.SetProducer(batch, producerIDFor(key), 0)
	}
	base, err := a.append(r, topic, batch)
	if err != nil {
		a.failErr(w, err)
		return
	}
	n := b.Len()
	a.produced.Add(uint64(n))
	writeJSON(w, http.StatusOK, produceResult{Topic: topic, BaseOffset: base, Count: n, NextOffset: base + uint64(n)})
}

// append queues the batch, creating the topic when it is missing and
// auto-create is on, and waits until it is stored.
func (a *API) append(r *http.Request, topic string, batch []byte) (uint64, error) {
	ctx := r.Context()
	p, err := a.svc.Enqueue(ctx, topic, batch)
	if err != nil && a.opts.AutoCreateTopics && errors.Is(err, engine.ErrTopicNotFound) {
		cerr := a.svc.CreateTopic(topic)
		if cerr == nil {
			a.opts.Logger.Info("topic created", "topic", topic, "remote", r.RemoteAddr, "by", "auto-create on HTTP produce")
		}
		if cerr == nil || errors.Is(cerr, engine.ErrTopicExists) {
			p, err = a.svc.Enqueue(ctx, topic, batch)
		} else {
			err = cerr
		}
	}
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// producerIDFor maps an Idempotency-Key onto an idempotent producer id: a
// retry with the same key is the same producer's batch 0 again, which the
// engine answers with the offset it stored it at.
func producerIDFor(key string) uint64 {
	id := xxhash.Sum64String("haraqa/http Idempotency-Key\x00"+key) >> 1
	if id == 0 {
		id = 1
	}
	return id
}

// bodyFailed answers a body that could not be read or split.
func (a *API) bodyFailed(w http.ResponseWriter, err error) {
	var ie *inputError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ie):
		code := http.StatusBadRequest
		if ie.tooLarge {
			code = http.StatusRequestEntityTooLarge
		}
		fail(w, code, apiError{Error: ie.Error(), Line: ie.line})
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		fail(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("zstd body with a window over %d MiB (RFC 9659); nothing stored", maxZstdWindow>>20)})
	case errors.As(err, &mbe), errors.Is(err, errDecodedTooLarge), errors.Is(err, record.ErrTooLarge):
		fail(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("body over the limit of %d bytes (as sent or decompressed)", a.opts.MaxBodyBytes)})
	case errors.Is(err, errBusy):
		fail(w, http.StatusTooManyRequests, apiError{Error: err.Error(), Retriable: true})
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, errSlowBody):
		w.Header().Set("Connection", "close")
		fail(w, http.StatusRequestTimeout, apiError{Error: fmt.Sprintf("body not received within %s; nothing stored", a.opts.RequestTimeout)})
	case errors.Is(err, errBadEncoding):
		fail(w, http.StatusUnsupportedMediaType, apiError{Error: err.Error()})
	default:
		badRequest(w, "reading the body: "+err.Error()+"; nothing stored")
	}
}

var (
	errDecodedTooLarge = errors.New("httpapi: decompressed body over the limit")
	errSlowBody        = errors.New("httpapi: body not received in time")
	errBadEncoding     = errors.New("httpapi: unsupported Content-Encoding (want gzip, zstd or identity)")
)

// maxZstdWindow is the largest zstd window a body may ask for.
const maxZstdWindow = 8 << 20

// decoded returns the body decompressed per its Content-Encoding.
func decoded(body io.Reader, encoding string) (io.Reader, func(), error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return body, func() {}, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case "zstd":
		// The window is allocated as the frame header asks: past 8 MiB
		// (the zstd content coding's limit, RFC 9659) a 10-byte body
		// could take hundreds of MiB.
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("%w: %q", errBadEncoding, encoding)
}

// limitedReader fails once more than left bytes were read from r: it
// bounds a decompressed body (a small gzip body may inflate enormously).
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errDecodedTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errDecodedTooLarge
	}
	return n, err
}

// timedReader fails reads after the deadline, for connections whose
// read deadline could not be set.
type timedReader struct {
	r        io.Reader
	deadline time.Time
}

func (t *timedReader) Read(p []byte) (int, error) {
	if time.Now().After(t.deadline) {
		return 0, errSlowBody
	}
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && time.Now().After(t.deadline) {
		return n, fmt.Errorf("%w: %w", errSlowBody, err)
	}
	return n, err
}

// sink is the batch a produce builds, with the in-flight bytes it holds.
type sink struct {
	a    *API
	b    *record.Builder
	held int64
}

// grew takes in-flight bytes for the batch's growth; errBusy when the
// budget is spent.
func (s *sink) grew() error {
	size := int64(s.b.Size())
	if size <= s.held {
		return nil
	}
	step := (size - s.held + budgetStep - 1) / budgetStep * budgetStep
	if s.a.heldBytes.Add(step) > s.a.opts.MaxInFlightBytes {
		s.a.heldBytes.Add(-step)
		return errBusy
	}
	s.held += step
	return nil
}

func (s *sink) release() { s.a.heldBytes.Add(-s.held) }

// add appends one plain message from line n of the body.
func (s *sink) add(n int, msg []byte) error {
	if s.b.Len() >= s.a.opts.MaxMessages {
		return &inputError{line: n, msg: fmt.Sprintf("more than %d messages in one request", s.a.opts.MaxMessages), tooLarge: true}
	}
	if err := s.b.Add(msg); err != nil {
		return err
	}
	if s.b.Size()-int(s.held) > 0 {
		return s.grew()
	}
	return nil
}

// readLines splits an NDJSON or text body into messages, one per line.
// A line ends at \n; a \r before it is dropped; empty lines are skipped.
// NDJSON lines must each be one JSON text.
func (a *API) readLines(in io.Reader, s *sink, ndjson bool) error {
	br := a.getReader(in)
	defer a.putReader(br)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return &inputError{line: n, msg: fmt.Sprintf("longer than the %d-byte line limit", a.opts.MaxLineBytes)}
		}
		if err != nil && err != io.EOF {
			return err
		}
		msg := line
		if len(msg) > 0 && msg[len(msg)-1] == '\n' {
			msg = msg[:len(msg)-1]
		}
		if len(msg) > 0 && msg[len(msg)-1] == '\r' {
			msg = msg[:len(msg)-1]
		}
		if len(msg) > a.opts.MaxLineBytes {
			return &inputError{line: n, msg: fmt.Sprintf("longer than the %d-byte line limit", a.opts.MaxLineBytes)}
		}
		if len(msg) > 0 && !(ndjson && blank(msg)) {
			if ndjson && !validJSON(msg) {
				return &inputError{line: n, msg: "not valid JSON (application/x-ndjson wants one JSON text per line; send text/plain for other lines)"}
			}
			if aerr := s.add(n, msg); aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// blank reports whether a line holds only JSON whitespace.
func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// readerPool keeps the line readers: each has a buffer of the line limit.
var readerPools sync.Map // buffer size → *sync.Pool

func (a *API) getReader(in io.Reader) *bufio.Reader {
	size := a.opts.MaxLineBytes + 2 // the line, \r and \n
	p, _ := readerPools.LoadOrStore(size, &sync.Pool{})
	if br, ok := p.(*sync.Pool).Get().(*bufio.Reader); ok {
		br.Reset(in)
		return br
	}
	return bufio.NewReaderSize(in, size)
}

func (a *API) putReader(br *bufio.Reader) {
	br.Reset(nil)
	p, _ := readerPools.Load(br.Size())
	if p != nil {
		p.(*sync.Pool).Put(br)
	}
}

// keepBuilderBytes bounds the builders kept for reuse: one that grew
// larger for a big body is dropped, its memory returned.
const keepBuilderBytes = 4 << 20

func (a *API) getBuilder() *record.Builder {
	b, _ := a.builders.Get().(*record.Builder)
	if b == nil {
		b = new(record.Builder)
	}
	b.Reset()
	return b
}

func (a *API) putBuilder(b *record.Builder) {
	if b.Size() <= keepBuilderBytes {
		a.builders.Put(b)
	}
}
