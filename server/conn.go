package server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/netproto"
)

// conn is one client connection. A reader goroutine reads frames one after
// another; each request is handled on its own goroutine (at most
// MaxInFlight at once), and responses are written whole under wmu in
// whatever order they finish, matched by request id. The reader answers
// itself a produce it can store directly and a consume that needs no wait
// when nothing more is buffered (one request at a time: no hand-off).
type conn struct {
	s  *Server
	nc net.Conn

	sem       chan struct{} // in-flight slots; the reader takes one before it reads a frame
	watches   atomic.Int32
	watched   atomic.Int32              // topics the watches watch together (MaxWatchedTopics)
	authed    bool                      // reader goroutine only
	principal *auth.Principal           // the client, with Options.Auth; set at Hello
	hdr       [netproto.HeaderSize]byte // reader goroutine only

	wmu    sync.Mutex  // serialises writes to nc
	broken bool        // guarded by wmu: a write failed, nc is closed
	wbuf   []byte      // guarded by wmu: scratch for small responses
	sf     *sendfileOp // guarded by wmu: built at the first sendfile

	br   *bufio.Reader // reads of nc: small pipelined frames cost one syscall for many
	acks chan ackJob   // produces awaiting their ack; reader goroutine sends
	// unacked counts the produces sent to acks and not yet answered: the
	// reader answers a produce itself only when none is, so that answers
	// keep the order of the requests.
	unacked atomic.Int64
	// spawned counts the handler goroutines started (tests).
	spawned atomic.Int64
	// yields counts direct produces that let a woken long poll run before
	// their ack (tests).
	yields atomic.Int64
	// ahead is a consume response read ahead by the reader (readahead.go);
	// aheadUsed counts the consumes answered with one (tests).
	ahead     atomic.Pointer[readAhead]
	aheadUsed atomic.Int64
	// links are the recent consumes a ConsumeNext may follow (chain.go).
	links links

	freeMu    sync.Mutex
	free      [][]byte  // small body buffers to reuse (bodies.go)
	freeBytes int       // capacity held in free
	helloBy   time.Time // the Hello must be read whole by then (HelloTimeout)

	// topic is the last topic name a request of this connection used, kept
	// so that a stream of requests to one topic does not allocate its name.
	topic atomic.Pointer[string]

	handlers sync.WaitGroup
	// ctx ends with the connection; appends run under it. pollCtx, its
	// child, also ends at Shutdown, so that long polls and watches return.
	ctx, pollCtx       context.Context
	cancel, pollCancel context.CancelFunc
	stopped            atomic.Bool // stop reading after the current frame
	refused            atomic.Bool // an error frame ends the connection: linger before closing
}

// maxYieldWaiters is the most long polls a direct produce lets run
// before its ack (see serve).
const maxYieldWaiters = 2

// readBuf is the size of a connection's read buffer.
const readBuf = 32 << 10

// bodyStep is the largest body read into a buffer on the Go heap; a
// larger one is read into a memory mapping (bodies.go).
const bodyStep = 64 << 10

// maxHelloBody is the largest HelloRequest body: a version and a token.
const maxHelloBody = 4 + netproto.MaxString

// After an error frame that ends a connection, the server half-closes it and
// discards up to lingerBytes of input for up to lingerTime before it closes:
// closing a TCP socket with unread input sends a reset, and a reset can
// destroy the error frame before the peer reads it.
const (
	lingerTime  = 250 * time.Millisecond
	lingerBytes = 1 << 20
)

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, br: bufio.NewReaderSize(nc, readBuf), sem: make(chan struct{}, s.opts.MaxInFlight),
		helloBy: time.Now().Add(s.opts.HelloTimeout)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.pollCtx, c.pollCancel = context.WithCancel(c.ctx)
	return c
}

// getBuf returns a kept small body buffer, or nil.
func (c *conn) getBuf() []byte {
	c.freeMu.Lock()
	defer c.freeMu.Unlock()
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		c.freeBytes -= cap(b)
		return b
	}
	return nil
}

// putBuf releases a body read by readBody: its bytes go back to the
// server's budget, and its buffer is kept (a small one, while the
// connection keeps less than connKeepBytes), pooled or unmapped (a mapped
// one). Nothing may use body afterwards.
func (c *conn) putBuf(body []byte) {
	c.s.budget.release(int64(len(body)))
	if cap(body) == 0 {
		return
	}
	if mapped(body) {
		c.s.bodies.put(body)
		return
	}
	c.freeMu.Lock()
	if c.freeBytes+cap(body) <= connKeepBytes {
		c.free = append(c.free, body[:0])
		c.freeBytes += cap(body)
	}
	c.freeMu.Unlock()
}

// topicName returns b as a string, reusing the connection's last topic name
// when it is the same.
func (c *conn) topicName(b []byte) string {
	if p := c.topic.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	c.topic.Store(&s)
	return s
}

// stopReading makes the reader stop after the frame it is on (Shutdown, or
// a request that ends the connection).
func (c *conn) stopReading() {
	c.stopped.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// endAfterError ends the connection after a handler answered a request that
// does not decode: the reader stops, requests in flight are answered, and
// the connection closes as after a refused frame.
func (c *conn) endAfterError() {
	c.refused.Store(true)
	c.stopReading()
}

func (c *conn) serve() {
	defer c.s.forget(c)
	defer c.close()
	defer c.handlers.Wait()
	defer c.dropAhead()
	defer func() {
		if c.acks != nil {
			close(c.acks) // the acker answers what is queued, then ends
		}
	}()
	defer c.cancel()
	for !c.stopped.Load() {
		select {
		case c.sem <- struct{}{}:
		case <-c.pollCtx.Done():
			return
		}
		h, body, err := c.readFrame()
		if err == errBusy {
			// Skipped for want of room under MaxInFlightBytes.
			ok := c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeTooBusy, "the broker holds too many request bytes; retry"))
			<-c.sem
			if !ok {
				return
			}
			continue
		}
		if err != nil {
			<-c.sem
			c.readFailed(h, err)
			return
		}
		if c.s.debug {
			c.s.opts.Logger.Debug("server: request", "remote", remoteName(c.nc), "op", h.Opcode.String(), "id", h.RequestID, "bytes", len(body))
		}
		if h.Opcode == netproto.OpHello {
			ok := c.hello(h, body)
			c.putBuf(body)
			<-c.sem
			if !ok {
				c.refused.Store(true)
				return
			}
			continue
		}
		var start time.Time
		if c.s.opts.Observer != nil {
			start = time.Now()
		}
		if h.Opcode == netproto.OpProduce {
			// With nothing more to read and no earlier produce awaiting
			// its answer, the reader stores the batch itself if the topic's
			// writer is idle and answers it: no hand-off to the writer or
			// the acker on an idle broker (one produce at a time). Otherwise
			// it is queued here, in arrival order, and answered in that
			// order by the connection's long-lived acker (no goroutine per
			// produce).
			direct := c.unacked.Load() == 0 && c.br.Buffered() == 0
			q := c.enqueue(body, direct)
			if direct && (q.err != nil || q.pending.Ready()) {
				if q.err == nil && q.waiters > 0 && q.waiters <= maxYieldWaiters {
					// The append woke the one or two long polls that waited
					// on this topic (the next to run on this thread): let
					// them read and send the new data before this reader
					// writes the ack, so that a consumer's path does not
					// include the ack's write. Another thread may take this
					// reader meanwhile and write the ack in parallel. With
					// more waiters (fan-out) the ack goes first: it would
					// wait for all of them.
					c.yields.Add(1)
					runtime.Gosched()
				}
				ok := c.produce(h, q, start)
				c.putBuf(body)
				if !ok {
					c.endAfterError()
				}
				<-c.sem
				continue
			}
			if c.acks == nil {
				c.acks = make(chan ackJob, c.s.opts.MaxInFlight)
				c.handlers.Add(1)
				go c.ackLoop()
			}
			c.unacked.Add(1)
			c.acks <- ackJob{h: h, body: body, q: q, start: start}
			continue
		}
		if (h.Opcode == netproto.OpConsume || h.Opcode == netproto.OpConsumeNext) && c.uncheckedOp(h.Opcode) == nil {
			// The reader decodes a consume and opens its link before it
			// reads on, so that a ConsumeNext behind it finds it (chain.go);
			// a ConsumeNext whose consume is not answered yet is queued
			// on it. With nothing more to read, the reader answers a
			// consume itself unless it has to wait for data: no goroutine
			// (and no thread woken to run it) per consume of a reader that
			// reads one response at a time.
			job, queued := c.prepareConsume(h, body, start)
			if queued {
				continue // answered after the consume it follows, by its answerer
			}
			if c.br.Buffered() == 0 {
				ok, waits, next, more := c.answerConsume(&job, false)
				if !waits {
					c.finishConsume(&job, ok)
					if !more {
						continue
					}
					job = next // (nothing is queued on a consume the reader answers itself)
				}
			}
			c.handlers.Add(1)
			c.spawned.Add(1)
			go c.handleConsume(job)
			continue
		}
		c.handlers.Add(1)
		c.spawned.Add(1)
		go c.handle(h, body, start)
	}
}

// ackJob is a queued produce waiting for its acknowledgement.
type ackJob struct {
	h     netproto.Header
	body  []byte
	q     enqueued
	start time.Time // when the frame was read (with an Observer)
}

// ackLoop answers the connection's produces in the order they were queued
// (the order the engine stores them), until the reader closes acks.
func (c *conn) ackLoop() {
	defer c.handlers.Done()
	for j := range c.acks {
		ok := c.produce(j.h, j.q, j.start)
		c.unacked.Add(-1)
		c.putBuf(j.body)
		if !ok {
			c.endAfterError()
		}
		<-c.sem
	}
}

// readFailed answers a refused frame with one error frame; other read
// errors (end of stream, timeouts, shutdown) end the connection silently.
func (c *conn) readFailed(h netproto.Header, err error) {
	var pe *netproto.Error
	if errors.As(err, &pe) {
		c.writeError(h.Opcode, h.RequestID, pe)
		c.refused.Store(true)
		return
	}
	if !c.stopped.Load() && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!isTimeout(err) && !errors.Is(err, net.ErrClosed) {
		c.s.opts.Logger.Debug("server: read", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

// close closes the connection, lingering first after a refused frame.
func (c *conn) close() {
	if c.refused.Load() {
		linger(c.nc)
	}
	c.nc.Close()
}

// linger half-closes nc and discards what the peer still sends, for a
// bounded time and number of bytes; see lingerTime.
func linger(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, nc, lingerBytes)
}

// readFrame reads one request frame. The first byte may take IdleTimeout;
// the rest of the frame must follow within ReadTimeout. The header is
// checked (limits, then authentication) before the body is read or a buffer
// is sized for it.
func (c *conn) readFrame() (netproto.Header, []byte, error) {
	var h netproto.Header
	if c.authed {
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
	} else {
		c.nc.SetReadDeadline(c.helloBy)
	}
	// Checked after the deadline is set: a stopReading that this check
	// misses sets its own deadline after ours, which wins.
	if c.stopped.Load() {
		return h, nil, net.ErrClosed
	}
	if _, err := io.ReadFull(c.br, c.hdr[:1]); err != nil {
		return h, nil, err
	}
	if c.stopped.Load() {
		return h, nil, net.ErrClosed
	}
	if c.authed {
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.ReadTimeout))
	}
	if _, err := io.ReadFull(c.br, c.hdr[1:]); err != nil {
		return h, nil, err
	}
	h.Decode(c.hdr[:])
	if err := c.checkHeader(h); err != nil {
		return h, nil, err
	}
	body, err := c.readBody(int(h.BodyLen))
	return h, body, err
}

// errBusy reports a request skipped for want of room under
// MaxInFlightBytes: it is answered TooBusy and the connection goes on.
var errBusy = errors.New("server: request bytes over budget")

// checkHeader refuses a frame from its header alone: the frame checks of
// netproto, then, before the Hello exchange, anything but a Hello of at most
// maxHelloBody bytes. An unauthenticated peer cannot make the server read or
// allocate a large body.
func (c *conn) checkHeader(h netproto.Header) error {
	if err := h.CheckRequest(c.s.opts.MaxBody); err != nil {
		return err
	}
	if c.authed {
		return nil
	}
	if h.Opcode != netproto.OpHello {
		return netproto.NewError(netproto.CodeUnauthorized, "send Hello first")
	}
	if h.BodyLen > maxHelloBody {
		return netproto.NewError(netproto.CodeMalformed, "hello body of "+strconv.FormatUint(uint64(h.BodyLen), 10)+" bytes")
	}
	return nil
}

// budgetStep is how many bytes of a large body are counted in the budget
// at a time, as they arrive: a peer that declares a large body and sends
// little of it holds little of the budget.
const budgetStep = 1 << 20

// readBody reads an n-byte body, checked against MaxBody, counting it in
// the server's budget: a small one at once, into a kept or new heap
// buffer; a larger one budgetStep at a time as it arrives, into a mapped
// buffer (bodies.go) whose pages cost memory only as the bytes arrive.
// When the budget has no room, the rest of the body is skipped and errBusy
// returned. On error nothing is held.
func (c *conn) readBody(n int) ([]byte, error) {
	if n <= bodyStep {
		if !c.take(n) {
			return nil, c.skip(n)
		}
		buf := c.getBuf()
		if cap(buf) < n {
			c.putBuf(buf) // keep it for a smaller body
			buf = make([]byte, 0, max(n, 4096))
		}
		body := buf[:n]
		if _, err := io.ReadFull(c.br, body); err != nil {
			c.putBuf(body) // releases the n bytes taken
			return nil, err
		}
		return body, nil
	}
	buf, err := c.s.bodies.get(n)
	if err != nil {
		return nil, err
	}
	body := buf[:n]
	for got := 0; got < n; {
		step := min(n-got, budgetStep)
		if !c.take(step) {
			c.putBuf(body[:got])
			return nil, c.skip(n - got)
		}
		if _, err := io.ReadFull(c.br, body[got:got+step]); err != nil {
			c.putBuf(body[:got+step])
			return nil, err
		}
		got += step
	}
	return body, nil
}

// take counts n body bytes in the server's budget, waiting up to
// InFlightBytesWait for room.
func (c *conn) take(n int) bool {
	return c.s.budget.acquire(c.pollCtx, int64(n), c.s.opts.InFlightBytesWait)
}

// skip reads and drops the n bytes left of a body that the budget had no
// room for, and returns errBusy; at Shutdown it reads nothing.
func (c *conn) skip(n int) error {
	if c.pollCtx.Err() != nil {
		return net.ErrClosed // Shutdown ended the wait: read no more
	}
	if _, err := io.CopyN(io.Discard, c.br, int64(n)); err != nil {
		return err
	}
	return errBusy
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// hello answers a Hello. It accepts any client version from 1 up and
// answers the highest version both sides speak.
func (c *conn) hello(h netproto.Header, body []byte) bool {
	var req netproto.HelloRequest
	if err := req.Decode(body); err != nil {
		c.replyError(h, err)
		return false
	}
	if req.Version < netproto.ProtocolVersion {
		c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnsupportedVersion,
			"client speaks up to version "+strconv.Itoa(int(req.Version))+", this broker speaks version 1"))
		return false
	}
	if c.s.opts.Auth != nil {
		if e := c.identify(req.Token); e != nil {
			c.writeError(h.Opcode, h.RequestID, e)
			return false
		}
	} else if tok := c.s.opts.Token; tok != "" && subtle.ConstantTimeCompare([]byte(tok), req.Token) != 1 {
		if ok, dropped := c.s.authLog.Allow(); ok {
			c.s.opts.Logger.Warn("server: refused a connection: bad token", "remote", remoteName(c.nc), "token_bytes", len(req.Token), "not logged since the last line", dropped)
		}
		c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnauthorized, "bad token"))
		return false
	}
	c.authed = true
	resp := netproto.HelloResponse{Version: netproto.ProtocolVersion, MaxBody: c.s.opts.MaxBody, ServerID: []byte(c.s.opts.ServerID)}
	return c.writeFrame(netproto.AppendFrame(nil, netproto.Header{Opcode: h.Opcode, Flags: netproto.FlagResponse, RequestID: h.RequestID}, &resp))
}

// writeFrame writes one whole frame; a failed write closes the connection.
func (c *conn) writeFrame(b []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked writes one whole frame; wmu is held.
func (c *conn) writeLocked(b []byte) bool {
	if c.broken {
		return false
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.fail(err)
		return false
	}
	return true
}

// writevLocked writes bufs with one writev; wmu is held.
func (c *conn) writevLocked(bufs *net.Buffers) bool {
	if c.broken {
		return false
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if _, err := bufs.WriteTo(c.nc); err != nil {
		c.fail(err)
		return false
	}
	return true
}

// fail marks the connection broken and closes it; wmu is held.
func (c *conn) fail(err error) {
	c.broken = true
	c.nc.Close()
	c.cancel()
	if !errors.Is(err, net.ErrClosed) {
		c.s.opts.Logger.Debug("server: write", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

func (c *conn) writeError(op netproto.Opcode, reqID uint64, e *netproto.Error) bool {
	if c.s.debug {
		c.s.opts.Logger.Debug("server: error response", "remote", remoteName(c.nc), "op", op.String(), "id", reqID, "err", e.Error())
	}
	var b [256]byte
	return c.writeFrame(netproto.AppendErrorFrame(b[:0], op, reqID, e))
}
