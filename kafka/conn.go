package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A conn serves one client connection. Kafka answers the requests of a
// connection in the order they were sent: the reader queues one slot per
// request (at most MaxInFlight, which is the backpressure) and the writer
// sends the slots' answers in that order as each completes. Requests that
// must take effect in order (Produce appends) are started by the reader
// itself; requests that may wait (a Fetch's max wait, a produce's fsync,
// group joins) finish in goroutines of their own.
type conn struct {
	s      *Server
	nc     net.Conn
	r      *bufio.Reader
	slots  chan *slot
	ctx    context.Context
	cancel context.CancelFunc

	// Authentication state (auth.go), changed only by the reading
	// goroutine (the SASL handlers run there); principal is also read by
	// handlers that finish in goroutines of their own.
	saslReady bool
	rawSASL   bool // the next frame is SaslHandshake v0's bare PLAIN message
	authed    bool
	forwarded bool // a group request another node forwarded (forward.go)
	principal atomic.Pointer[auth.Principal]

	closeOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{} // closed by Shutdown: read no more requests
}

// A slot is one request's place in the answer order. out is the whole
// response frame, nil for no answer (acks=0 Produce).
type slot struct {
	done  chan struct{}
	out   []byte
	units int  // frameRoom units the request's frame holds
	drop  bool // close the connection here instead of answering (a failed SASL v0 login)
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		s:      s,
		nc:     nc,
		r:      bufio.NewReaderSize(nc, 64<<10),
		slots:  make(chan *slot, s.opts.MaxInFlight),
		ctx:    ctx,
		cancel: cancel,
		stop:   make(chan struct{}),
	}
}

func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.nc.SetReadDeadline(time.Now())
	})
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) serve() {
	wdone := make(chan struct{})
	go func() { c.writeLoop(); close(wdone) }()
	err := c.readLoop()
	if err != nil {
		c.cancel() // the client is gone or broke a limit: stop waiting for it
	}
	close(c.slots)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
		c.s.opts.Logger.Debug("kafka: connection ends", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
	<-wdone
	c.close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readLoop reads frames until the connection fails, the client closes it,
// a frame breaks a limit, or Shutdown.
func (c *conn) readLoop() error {
	var size [4]byte
	for {
		select {
		case <-c.stop:
			return nil
		default:
		}
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		if _, err := io.ReadFull(c.r, size[:]); err != nil {
			return err
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.ReadTimeout))
		if n < 8 || n > c.s.opts.MaxFrame {
			return errFrameSize
		}
		// The api key comes first: every request but Produce has the
		// smaller limit, checked before the frame is allocated.
		head, err := c.r.Peek(2)
		if err != nil {
			return err
		}
		if int16(binary.BigEndian.Uint16(head)) != kmsg.Produce.Int16() && n > c.s.opts.MaxOtherFrame {
			return errFrameSize
		}
		units := roomUnits(n)
		if err := c.s.room.acquire(c.ctx, c.stop, units); err != nil {
			return err
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c.r, frame); err != nil {
			c.s.room.release(units)
			return err
		}
		sl := &slot{done: make(chan struct{}), units: units}
		select {
		case c.slots <- sl:
		case <-c.ctx.Done():
			c.s.room.release(units)
			return c.ctx.Err()
		}
		c.handle(frame, sl)
	}
}

var errFrameSize = errors.New("kafka: request frame size out of bounds")

// writeLoop sends the answers in request order. After a write fails it
// keeps draining (so that handlers finish) without writing.
func (c *conn) writeLoop() {
	failed := false
	for sl := range c.slots {
		<-sl.done
		c.s.room.release(sl.units)
		if sl.drop && !failed {
			failed = true
			c.close()
		}
		if failed || sl.out == nil {
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		if _, err := c.nc.Write(sl.out); err != nil {
			failed = true
			c.close()
		}
	}
}

// frameRoom bounds the request frames all connections hold at once
// (Options.MaxInFlightBytes), in units of roomUnit bytes. Acquirers take
// their units one after another under mu, so two half-served ones never
// wait on each other; releases need no lock.
type frameRoom struct {
	mu     sync.Mutex
	tokens chan struct{}
}

const roomUnit = 64 << 10

func roomUnits(n int32) int { return roomUnits64(int64(n)) }

func roomUnits64(n int64) int { return int((n + roomUnit - 1) / roomUnit) }

func (r *frameRoom) acquire(ctx context.Context, stop <-chan struct{}, units int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range units {
		select {
		case r.tokens <- struct{}{}:
		case <-ctx.Done():
			r.release(i)
			return ctx.Err()
		case <-stop:
			r.release(i)
			return errStopped
		}
	}
	return nil
}

func (r *frameRoom) release(units int) {
	for range units {
		<-r.tokens
	}
}

var errStopped = errors.New("kafka: server shutting down")
