package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// conn is one connection to the broker. Any goroutine may send on it: the
// request is registered under a fresh request id, then written whole under
// wmu. Whoever holds the read role reads the responses and hands each to
// the call registered under its id, reading a consume response's batch
// bytes straight into the caller's ConsumeBuffer.
//
// The read role (role, under mu) is taken by a caller that waits for its
// response while nobody reads (the leader: it reads until its own response
// is in, so a single call in flight costs no hand-off between goroutines),
// else by the connection's background reader, which reads while a caller
// is blocked waiting for someone else to read its response or a stream
// (watch) is registered, and otherwise parks. A connection the client
// cannot peek at (TLS, or a platform without the peek) keeps the background
// reader reading for good, as before.
//
// Lock order: wmu, then mu, then dlMu. The reader never takes wmu.
type conn struct {
	nc      net.Conn
	br      *bufio.Reader // reader goroutine only
	sendMax uint32        // largest body sent: min(WithMaxBody, the broker's MaxBody)
	recvMax uint32        // largest body accepted
	wto     time.Duration
	log     *slog.Logger
	addr    string
	hooks   *hooks
	// nextRefused is the Client's: set when a broker refused ConsumeNext
	// as an unknown opcode.
	nextRefused *atomic.Bool

	mu      sync.Mutex
	nextID  uint64           // guarded by mu
	pending map[uint64]*call // guarded by mu; nil once the connection ended
	err     error            // guarded by mu: why the connection ended
	dead    chan struct{}    // closed when err is set

	wmu  sync.Mutex  // serialises writes to nc
	vec  [4][]byte   // guarded by wmu
	bufs net.Buffers // guarded by wmu

	// The read role. lead: callers may lead (the connection can be peeked
	// at for liveness while nobody reads it). kick (capacity 1) hands the
	// role to the background reader.
	lead    bool
	peek    *peeker // non-nil when lead
	role    uint8   // guarded by mu: roleFree, roleLeader, roleBack
	blocked int     // guarded by mu: registered calls whose callers wait for another reader
	streams int     // guarded by mu: registered stream calls
	kick    chan struct{}
	// backFrames counts the frames the background reader read (tests).
	backFrames atomic.Uint64

	// A leader whose context ends is interrupted with a read deadline in
	// the past (onDone, run by context.AfterFunc on the leader's context,
	// registered once per context and kept across calls).
	dlMu      sync.Mutex
	leading   bool            // guarded by dlMu: a leader reads
	leadDone  <-chan struct{} // guarded by dlMu: its context's Done
	dlSet     bool            // guarded by dlMu: onDone set the deadline
	watchDone <-chan struct{} // guarded by dlMu: the context watched by watchStop
	watchStop func() bool     // guarded by dlMu

	// Role holder only.
	midFrame bool                                    // part of a frame has been read
	extended bool                                    // the interrupted leader gave the rest of its frame wto
	hb       [netproto.HeaderSize]byte               // the frame header being read (a field: a local escapes)
	rbuf     []byte                                  // error bodies, watch events
	fixed    [netproto.ConsumeResponseFixedSize]byte // consume responses' fixed fields
}

// The holders of a connection's read role.
const (
	roleFree   = iota // nobody reads: the next waiting caller may lead
	roleLeader        // a caller reads until its own response is in
	roleBack          // the background reader
)

// errInterrupted is a leader's read cut short at a frame boundary because
// its context ended.
var errInterrupted = errors.New("client: read interrupted")

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// call is one request and its response. Calls are pooled; a call is
// touched by the reader only between its registration and the send on
// done (or its removal from pending by a caller whose context ended).
type call struct {
	done    chan struct{} // capacity 1: the reader sends once per use
	blocked bool          // guarded by conn.mu: counted in conn.blocked
	ahead   bool          // read by the background reader as soon as it comes (a read-ahead)
	head    []byte        // the frame header and the body before any payload
	op      netproto.Opcode
	id      uint64
	// sentAt is when the request was written (with hooks only).
	sentAt time.Time

	// Set by the reader before done.
	err   error
	body  []byte                   // a response body, except for consume
	cons  *ConsumeBuffer           // consume: batches land in cons.raw
	fixed netproto.ConsumeResponse // consume: the fixed fields
	// stream, for a watch, gets every frame on the call's id; the call
	// stays registered. A nil body with a non-nil err ends the stream.
	stream func(h netproto.Header, body []byte, err error)
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// getCall returns a call with its head holding a request frame header for
// op, ready for the body's fixed fields to be appended.
func getCall(op netproto.Opcode) *call {
	cl := callPool.Get().(*call)
	cl.op = op
	cl.head, _ = netproto.BeginFrame(cl.head[:0], netproto.Header{Opcode: op})
	return cl
}

func putCall(cl *call) {
	cl.err, cl.cons, cl.stream, cl.fixed, cl.sentAt, cl.ahead = nil, nil, nil, netproto.ConsumeResponse{}, time.Time{}, false
	if cap(cl.body) > 64<<10 {
		cl.body = nil
	}
	if cap(cl.head) > 64<<10 {
		cl.head = nil
	}
	callPool.Put(cl)
}

// parseAddr splits a broker address with netproto.ParseAddr; an address it
// cannot parse is ErrBadAddress.
func parseAddr(addr string) (network, address string, err error) {
	network, address, err = netproto.ParseAddr(addr)
	if err != nil {
		return "", "", fmt.Errorf("%w %q: %v", ErrBadAddress, addr, err)
	}
	return network, address, nil
}

// dialConn connects, exchanges Hello and starts the reader.
func dialConn(ctx context.Context, addr string, cfg *config) (*conn, error) {
	if len(cfg.hooks.connect) == 0 {
		return dialAny(ctx, addr, cfg)
	}
	start := time.Now()
	cn, err := dialAny(ctx, addr, cfg)
	for _, h := range cfg.hooks.connect {
		h.OnConnect(addr, time.Since(start), err)
	}
	return cn, err
}

func dialConn1(ctx context.Context, addr string, cfg *config) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	plain, useTLS := splitTLS(addr)
	network, address, err := parseAddr(plain)
	if err != nil {
		return nil, err
	}
	if cfg.tls != nil && !useTLS {
		return nil, fmt.Errorf("%w WithTLSConfig: address %q is not tls://HOST:PORT", ErrBadOption, addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err == nil && useTLS {
		nc, err = clientTLS(ctx, nc, address, cfg.tls)
	}
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	cn := &conn{nc: nc, recvMax: cfg.maxBody, wto: cfg.writeTimeout, log: cfg.logger, addr: addr, hooks: &cfg.hooks, nextRefused: cfg.nextRefused,
		pending: map[uint64]*call{}, dead: make(chan struct{}), kick: make(chan struct{}, 1)}
	maxBody, err := cn.hello(ctx, cfg.token)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cn.sendMax = min(cfg.maxBody, maxBody)
	cn.br = bufio.NewReaderSize(netReader{cn}, 64<<10)
	cn.peek = newPeeker(nc)
	cn.lead = cn.peek != nil
	if !cn.lead {
		cn.role = roleBack
		cn.kick <- struct{}{}
	}
	go cn.readLoop()
	return cn, nil
}

// hello sends Hello and reads its answer, before the reader starts. It
// returns the broker's body limit.
func (cn *conn) hello(ctx context.Context, token string) (uint32, error) {
	if dl, ok := ctx.Deadline(); ok {
		cn.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Now()) })
	maxBody, err := cn.exchangeHello(token)
	if !stop() {
		return 0, disconnected(ctx.Err()) // the deadline may have been cut short
	}
	cn.nc.SetDeadline(time.Time{})
	return maxBody, err
}

func (cn *conn) exchangeHello(token string) (uint32, error) {
	req := netproto.HelloRequest{Version: netproto.ProtocolVersion, Token: []byte(token)}
	if _, err := cn.nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpHello}, &req)); err != nil {
		return 0, disconnected(err)
	}
	h, body, err := netproto.ReadResponse(cn.nc, cn.recvMax, nil)
	if err != nil {
		var pe *netproto.Error
		if errors.As(err, &pe) {
			return 0, pe
		}
		return 0, disconnected(err)
	}
	if h.Status != netproto.CodeOK {
		return 0, netproto.DecodeError(h.Status, body)
	}
	var resp netproto.HelloResponse
	if err := resp.Decode(body); err != nil {
		return 0, err
	}
	if h.Opcode != netproto.OpHello || resp.Version != netproto.ProtocolVersion {
		return 0, &Error{Code: netproto.CodeUnsupportedVersion, Message: fmt.Sprintf("broker answered Hello with %v version %d", h.Opcode, resp.Version)}
	}
	return max(resp.MaxBody, 1<<10), nil
}

// alive reports whether the connection has not ended. While nobody reads
// it, it peeks at the socket without blocking: a broker that closed the
// connection between two calls is noticed before the next call is sent
// (the next call redials), as a reader blocked in a read would notice it.
func (cn *conn) alive() bool {
	select {
	case <-cn.dead:
		return false
	default:
	}
	if !cn.lead {
		return true
	}
	cn.mu.Lock()
	if cn.role != roleFree || cn.pending == nil || cn.br.Buffered() > 0 {
		ok := cn.pending != nil
		cn.mu.Unlock()
		return ok
	}
	cn.role = roleLeader // hold the role for the peek
	cn.mu.Unlock()
	err := cn.peek.closed()
	cn.release()
	if err != nil {
		cn.fail(err)
		return false
	}
	return true
}

// send registers cl under a fresh request id and writes its frame: cl.head
// then payload (one writev). A failed write ends the connection, which
// fails cl through done, so a nil return means: wait for cl.
func (cn *conn) send(cl *call, payload []byte) error {
	return cn.sendParts(cl, parts{payload})
}

// parts is a request body after cl.head, in up to three pieces written
// with one vectored write: a large message is sent from the caller's
// memory between its batch header and padding, never copied.
type parts [3][]byte

func (p *parts) len() int { return len(p[0]) + len(p[1]) + len(p[2]) }

// sendParts is send with the body in pieces.
func (cn *conn) sendParts(cl *call, p parts) error {
	n := len(cl.head) - netproto.HeaderSize + p.len()
	if uint64(n) > uint64(cn.sendMax) {
		return fmt.Errorf("%w: %v request body of %d bytes, limit %d", ErrMessageTooLarge, cl.op, n, cn.sendMax)
	}
	netproto.SetBodyLen(cl.head, uint32(n))
	if cn.hooks.any {
		cl.sentAt = time.Now() // before the reader can see cl
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	cn.mu.Lock()
	if cn.pending == nil {
		err := cn.err
		cn.mu.Unlock()
		return disconnected(err)
	}
	cn.nextID++
	cl.id = cn.nextID
	cn.pending[cl.id] = cl
	if cl.stream != nil {
		// Nobody waits for a stream's frames: the background reader reads
		// while it is registered.
		cn.streams++
		cn.wantReaderLocked()
	} else if cl.ahead {
		// Its caller waits later: counted as blocked, so that the
		// background reader reads it meanwhile.
		cl.blocked = true
		cn.blocked++
		cn.wantReaderLocked()
	}
	cn.mu.Unlock()
	netproto.SetRequestID(cl.head, cl.id)
	cn.nc.SetWriteDeadline(time.Now().Add(cn.wto))
	var err error
	if p.len() == 0 {
		_, err = cn.nc.Write(cl.head)
	} else {
		cn.vec = [4][]byte{cl.head, p[0], p[1], p[2]}
		cn.bufs = cn.vec[:]
		_, err = cn.bufs.WriteTo(cn.nc)
		cn.vec = [4][]byte{}
	}
	if err != nil {
		cn.fail(err) // fails cl too
	}
	if cn.hooks.any {
		for _, h := range cn.hooks.written {
			h.OnRequestWritten(cl.op, netproto.HeaderSize+n, err)
		}
	}
	return nil
}

// wait waits for cl's response. If nobody reads the connection, the
// caller reads it itself (lead) until its response is in. If ctx ends
// first and no reader has taken cl yet, cl is withdrawn (a late response is
// discarded) and ctx's error returned; if a reader is already filling it,
// wait lets it finish.
func (cn *conn) wait(ctx context.Context, cl *call) error {
	select {
	case <-cl.done:
		return cl.err
	default:
	}
	cn.mu.Lock()
	if cn.role == roleFree && cn.pending != nil && ctx.Err() == nil {
		cn.role = roleLeader
		cn.mu.Unlock()
		return cn.leadFor(ctx, cl)
	}
	if cn.pending != nil && cn.pending[cl.id] == cl && !cl.blocked {
		cl.blocked = true
		cn.blocked++
	}
	cn.mu.Unlock()
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
	}
	return cn.abandon(ctx, cl)
}

// abandon withdraws cl after ctx ended, unless a reader has taken it: then
// it waits for the reader to finish it.
func (cn *conn) abandon(ctx context.Context, cl *call) error {
	cn.mu.Lock()
	if cn.pending != nil && cn.pending[cl.id] == cl {
		cn.unregisterLocked(cl)
		cn.mu.Unlock()
		return ctx.Err()
	}
	cn.mu.Unlock()
	<-cl.done
	return cl.err
}

// leadFor reads responses, as the holder of the read role, until cl's is
// in or ctx ends at a frame boundary, then gives the role up.
func (cn *conn) leadFor(ctx context.Context, cl *call) error {
	cn.watch(ctx)
	var err error
	for {
		select {
		case <-cl.done:
			cn.unwatch()
			cn.release()
			return cl.err
		default:
		}
		if err = cn.readOne(); err != nil {
			break
		}
	}
	cn.unwatch()
	if errors.Is(err, errInterrupted) {
		cn.release()
		return cn.abandon(ctx, cl)
	}
	cn.fail(err) // finishes cl
	<-cl.done
	return cl.err
}

// watch arms the interruption of this leader's reads when ctx ends.
func (cn *conn) watch(ctx context.Context) {
	done := ctx.Done()
	if done == nil {
		return
	}
	cn.dlMu.Lock()
	cn.leading, cn.leadDone = true, done
	if cn.watchDone != done {
		if cn.watchStop != nil {
			cn.watchStop()
		}
		cn.watchDone = done
		cn.watchStop = context.AfterFunc(ctx, func() { cn.onDone(done) })
	}
	cn.dlMu.Unlock()
	if ctx.Err() != nil {
		// It may have ended before leading was set: interrupt now.
		cn.onDone(done)
	}
}

// onDone interrupts the leader whose context's Done is done, if it still
// reads.
func (cn *conn) onDone(done <-chan struct{}) {
	cn.dlMu.Lock()
	defer cn.dlMu.Unlock()
	if cn.leading && cn.leadDone == done && !cn.dlSet {
		cn.dlSet = true
		cn.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// unwatch ends the leader's interruption and clears a deadline it set.
func (cn *conn) unwatch() {
	cn.dlMu.Lock()
	if cn.leading {
		cn.leading, cn.leadDone = false, nil
		if cn.dlSet || cn.extended {
			cn.nc.SetReadDeadline(time.Time{})
		}
		cn.dlSet, cn.extended = false, false
	}
	cn.dlMu.Unlock()
}

// release gives up the read role: to the background reader when a caller
// is blocked waiting for a reader or a stream is registered, else to
// nobody (the next waiting caller leads).
func (cn *conn) release() {
	cn.mu.Lock()
	cn.role = roleFree
	cn.wantReaderLocked()
	cn.mu.Unlock()
}

// wantReaderLocked hands a free read role to the background reader when
// someone needs a reader that nobody is; mu is held.
func (cn *conn) wantReaderLocked() {
	if cn.role == roleFree && (cn.blocked > 0 || cn.streams > 0) {
		cn.role = roleBack
		cn.kick <- struct{}{} // capacity 1, and only a roleFree → roleBack move sends
	}
}

// unregisterLocked removes cl from pending; mu is held.
func (cn *conn) unregisterLocked(cl *call) {
	delete(cn.pending, cl.id)
	if cl.stream != nil {
		cn.streams--
	}
	if cl.blocked {
		cl.blocked = false
		cn.blocked--
	}
}

// drop withdraws cl, whose caller no longer wants its response, or waits
// until the reader that took it has finished with it.
func (cn *conn) drop(cl *call) {
	cn.mu.Lock()
	if cn.pending != nil && cn.pending[cl.id] == cl {
		cn.unregisterLocked(cl)
		cn.mu.Unlock()
		return
	}
	cn.mu.Unlock()
	<-cl.done
}

// withdraw unregisters a stream call.
func (cn *conn) withdraw(cl *call) {
	cn.mu.Lock()
	if cn.pending != nil && cn.pending[cl.id] == cl {
		cn.unregisterLocked(cl)
	}
	cn.mu.Unlock()
}

// fail ends the connection once: it closes the socket and fails every
// registered call with why (as ErrClosed or ErrDisconnected).
func (cn *conn) fail(why error) {
	cn.mu.Lock()
	if cn.pending == nil {
		cn.mu.Unlock()
		return
	}
	pend := cn.pending
	cn.pending, cn.err = nil, why
	close(cn.dead)
	cn.mu.Unlock()
	cn.nc.Close()
	cn.dlMu.Lock()
	if cn.watchStop != nil {
		cn.watchStop() // the context no longer holds the connection
		cn.watchStop, cn.watchDone = nil, nil
	}
	cn.dlMu.Unlock()
	if !errors.Is(why, ErrClosed) {
		cn.log.Warn("haraqa client: connection lost", "remote", cn.nc.RemoteAddr(), "err", why)
	}
	for _, h := range cn.hooks.disconnect {
		h.OnDisconnect(cn.addr, why)
	}
	err := disconnected(why)
	for _, cl := range pend {
		cl.blocked = false
		cl.finish(err)
	}
}

// finish completes a call with err (nil: the response is in place).
func (cl *call) finish(err error) {
	if cl.stream != nil {
		if err != nil {
			cl.stream(netproto.Header{}, nil, err)
		}
		return
	}
	cl.err = err
	cl.done <- struct{}{}
}

// readLoop is the background reader: it reads responses while it holds
// the read role, and gives the role up when nobody needs it.
func (cn *conn) readLoop() {
	for {
		select {
		case <-cn.kick:
		case <-cn.dead:
			return
		}
		for {
			if err := cn.readOne(); err != nil {
				cn.fail(err)
				return
			}
			cn.backFrames.Add(1)
			if cn.lead {
				cn.mu.Lock()
				if cn.blocked == 0 && cn.streams == 0 {
					cn.role = roleFree
					cn.mu.Unlock()
					break
				}
				cn.mu.Unlock()
			}
		}
	}
}

// readOne reads one response frame and hands it to its call; the read
// role is held. A returned error other than errInterrupted (a leader's
// context ended before the frame began) is fatal to the connection.
func (cn *conn) readOne() error {
	if _, err := cn.br.Peek(1); err != nil {
		return err
	}
	cn.midFrame = true
	h, err := netproto.ReadHeader(cn.br, &cn.hb)
	if err == nil {
		err = h.CheckResponse(cn.recvMax)
	}
	if err != nil {
		return err
	}
	cl := cn.claim(h)
	if err := cn.readBody(h, cl); err != nil {
		if cl != nil {
			cl.finish(disconnected(err))
		}
		return err
	}
	cn.midFrame = false
	return nil
}

// netReader reads the connection for its bufio.Reader. A leader's read
// deadline (its context ended) interrupts it between frames; inside a
// frame the rest of the frame is read, within the write timeout, so that
// the next reader starts at a frame boundary.
type netReader struct{ cn *conn }

func (r netReader) Read(p []byte) (int, error) {
	cn := r.cn
	for {
		n, err := cn.nc.Read(p)
		if err == nil || n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if !cn.midFrame {
			return 0, errInterrupted
		}
		if cn.extended {
			return 0, err // the rest of the frame did not come
		}
		cn.dlMu.Lock()
		cn.extended = true
		cn.nc.SetReadDeadline(time.Now().Add(cn.wto))
		cn.dlMu.Unlock()
	}
}

// claim finds the call registered under h's request id and, unless it is
// a stream, unregisters it: from here on the reader owns it until done.
func (cn *conn) claim(h netproto.Header) *call {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cl := cn.pending[h.RequestID]
	if cl != nil && (cl.stream == nil || h.Status != netproto.CodeOK) {
		cn.unregisterLocked(cl)
	}
	return cl
}

// readBody reads h's body into cl, or discards it when nobody waits for it
// (a call withdrawn after its context ended). A returned error is fatal to
// the connection.
func (cn *conn) readBody(h netproto.Header, cl *call) error {
	n := int(h.BodyLen)
	if h.Status == netproto.CodeUnknownOpcode && h.Opcode == netproto.OpConsumeNext && cn.nextRefused != nil {
		// A broker without ConsumeNext: Consumers stop sending it. Also
		// when the Consumer gave the request up: it would send another.
		cn.nextRefused.Store(true)
	}
	if cl == nil {
		_, err := cn.br.Discard(n)
		return err
	}
	if h.Opcode != cl.op && !(cl.stream != nil && h.Opcode == netproto.OpWatchEvent) {
		return fmt.Errorf("%w: %v response to a %v request", ErrMalformed, h.Opcode, cl.op)
	}
	if h.Status != netproto.CodeOK {
		body, err := cn.readScratch(n)
		if err != nil {
			return err
		}
		cn.responded(h, cl)
		cl.finish(netproto.DecodeError(h.Status, body))
		return nil
	}
	if cl.stream != nil {
		body, err := cn.readScratch(n)
		if err != nil {
			return err
		}
		cl.stream(h, body, nil)
		return nil
	}
	if cl.op == netproto.OpConsume || cl.op == netproto.OpConsumeNext {
		return cn.readConsume(h, cl)
	}
	cl.body = grow(cl.body, n)
	if _, err := io.ReadFull(cn.br, cl.body); err != nil {
		return err
	}
	cn.responded(h, cl)
	cl.finish(nil)
	return nil
}

// responded runs the HookResponseRead hooks for cl's response, before cl
// is finished: a caller that got its response finds the hooks told.
func (cn *conn) responded(h netproto.Header, cl *call) {
	if cl.stream != nil || cl.sentAt.IsZero() {
		return
	}
	for _, hk := range cn.hooks.read {
		hk.OnResponseRead(cl.op, netproto.HeaderSize+int(h.BodyLen), time.Since(cl.sentAt), h.Status)
	}
}

// readConsume reads a consume response: the fixed fields, then the batch
// bytes straight into the caller's buffer.
func (cn *conn) readConsume(h netproto.Header, cl *call) error {
	fixed := cn.fixed[:]
	if h.BodyLen < uint32(len(fixed)) {
		return fmt.Errorf("%w: consume response of %d bytes", ErrMalformed, h.BodyLen)
	}
	if _, err := io.ReadFull(cn.br, fixed); err != nil {
		return err
	}
	if err := cl.fixed.DecodeFixed(fixed); err != nil {
		return err
	}
	if uint64(cl.fixed.BatchBytes)+uint64(len(fixed)) != uint64(h.BodyLen) {
		return fmt.Errorf("%w: consume response declares %d batch bytes in a %d-byte body", ErrMalformed, cl.fixed.BatchBytes, h.BodyLen)
	}
	buf := cl.cons
	buf.raw = grow(buf.raw, int(cl.fixed.BatchBytes))
	if _, err := io.ReadFull(cn.br, buf.raw); err != nil {
		return err
	}
	cn.responded(h, cl)
	cl.finish(nil)
	return nil
}

func (cn *conn) readScratch(n int) ([]byte, error) {
	cn.rbuf = grow(cn.rbuf, n)
	_, err := io.ReadFull(cn.br, cn.rbuf)
	body := cn.rbuf
	if cap(cn.rbuf) > 64<<10 {
		cn.rbuf = nil
	}
	return body, err
}

// grow returns b resized to n bytes, reallocating only when its capacity
// is too small.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}
