package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// conn is one client connection. A reader goroutine reads frames one after
// another; each request is handled on its own goroutine (at most
// MaxInFlight at once), and responses are written whole under wmu in
// whatever order they finish, matched by request id.
type conn struct {
	s  *Server
	nc net.Conn

	sem     chan struct{} // in-flight slots
	watches atomic.Int32
	authed  bool // reader goroutine only

	wmu    sync.Mutex // serialises writes to nc
	broken bool       // guarded by wmu: a write failed, nc is closed

	freeMu sync.Mutex
	free   [][]byte // body buffers to reuse

	handlers sync.WaitGroup
	ctx      context.Context // cancelled when the connection ends
	cancel   context.CancelFunc
	stopped  atomic.Bool
}

// Body buffers up to this size are kept for reuse; larger ones are dropped
// after their request, so an idle connection holds little memory.
const keepBuf = 1 << 20

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, sem: make(chan struct{}, s.opts.MaxInFlight)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

func (c *conn) getBuf() []byte {
	c.freeMu.Lock()
	defer c.freeMu.Unlock()
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	return nil
}

func (c *conn) putBuf(b []byte) {
	if cap(b) > keepBuf {
		return
	}
	c.freeMu.Lock()
	c.free = append(c.free, b[:0])
	c.freeMu.Unlock()
}

// stopReading makes the reader stop after the frame it is on (Shutdown).
func (c *conn) stopReading() {
	c.stopped.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	defer c.s.forget(c)
	defer c.nc.Close()
	defer c.handlers.Wait()
	defer c.cancel()
	go func() {
		select {
		case <-c.s.stop:
			c.cancel()
		case <-c.ctx.Done():
		}
	}()
	c.authed = c.s.opts.Token == ""
	for !c.stopped.Load() {
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		h, body, err := c.readFrame(c.getBuf())
		if err != nil {
			<-c.sem
			var pe *netproto.Error
			if errors.As(err, &pe) {
				// A frame we refuse: one error frame, then close.
				c.writeError(h.Opcode, h.RequestID, pe)
			} else if !c.stopped.Load() && !errors.Is(err, io.EOF) && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
				c.s.opts.Logger.Debug("server: read", "remote", c.nc.RemoteAddr(), "err", err)
			}
			return
		}
		if !c.authed && h.Opcode != netproto.OpHello {
			<-c.sem
			c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnauthorized, "send Hello with the broker's token first"))
			return
		}
		if h.Opcode == netproto.OpHello {
			ok := c.hello(h, body)
			c.putBuf(body)
			<-c.sem
			if !ok {
				return
			}
			continue
		}
		c.handlers.Add(1)
		go c.handle(h, body)
	}
}

// readFrame reads one request frame. The first byte may take IdleTimeout;
// the rest of the frame must follow within ReadTimeout. The header is
// checked before the body is read or its buffer grown.
func (c *conn) readFrame(buf []byte) (netproto.Header, []byte, error) {
	var h netproto.Header
	if cap(buf) < netproto.HeaderSize {
		buf = make([]byte, 0, 4096)
	}
	hdr := buf[:netproto.HeaderSize]
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
	if _, err := io.ReadFull(c.nc, hdr[:1]); err != nil {
		return h, nil, err
	}
	if c.stopped.Load() {
		return h, nil, net.ErrClosed
	}
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.ReadTimeout))
	if _, err := io.ReadFull(c.nc, hdr[1:]); err != nil {
		return h, nil, err
	}
	h.Decode(hdr)
	if err := h.CheckRequest(c.s.opts.MaxBody); err != nil {
		return h, nil, err
	}
	n := int(h.BodyLen)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return h, nil, err
	}
	return h, body, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) hello(h netproto.Header, body []byte) bool {
	var req netproto.HelloRequest
	if err := req.Decode(body); err != nil {
		c.writeError(h.Opcode, h.RequestID, wireError(err))
		return false
	}
	if req.Version != netproto.ProtocolVersion {
		c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnsupportedVersion, "this broker speaks version 1"))
		return false
	}
	if tok := c.s.opts.Token; tok != "" && subtle.ConstantTimeCompare([]byte(tok), req.Token) != 1 {
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
	return c.writeLocked(net.Buffers{b})
}

func (c *conn) writeLocked(bufs net.Buffers) bool {
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
	var b [256]byte
	return c.writeFrame(netproto.AppendErrorFrame(b[:0], op, reqID, e))
}
