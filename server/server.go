package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/haraqa/haraqa/internal/ratelog"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/netproto"
)

// Server serves the haraqa protocol over stream listeners (TCP, Unix).
//
// Lifecycle as in net/http: Serve blocks accepting until Shutdown or Close;
// Shutdown stops accepting, lets in-flight requests finish (long polls end
// early, answered with what is there), then closes connections. The engine
// is the caller's to close afterwards.
//
// Every connection starts with a Hello exchange (PROTOCOL.md); anything
// else first is refused with Unauthorized before its body is read.
type Server struct {
	e    logsvc.Service // the log this server fronts (an *engine.Engine)
	opts Options
	// debug: the logger takes debug lines (connections, requests); checked
	// once, so that a request pays one branch when it does not.
	debug bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	nconns    atomic.Int64
	connWG    sync.WaitGroup

	// stop is closed at shutdown: a backing-off Serve returns.
	stop     chan struct{}
	stopOnce sync.Once

	volDirs []string // the engine's volume directories, cut from error frames
	// waiters counts the long polls waiting on a topic (the engine's
	// Waiters); nil when the service cannot tell.
	waiters func(topic string) int

	budget *budget  // request body bytes held, against MaxInFlightBytes
	bodies bodyPool // mapped body buffers for reuse

	errLog  ratelog.Limiter // logCut's lines
	authLog ratelog.Limiter // refused Hellos
	space   spaceEpisode
}

// New returns a server for e.
func New(e *engine.Engine, opts Options) *Server { return NewService(e, opts) }

// NewService returns a server for any implementation of the log service
// (logsvc.Service): the server reaches the log only through it. When svc
// also lists volumes (Volumes() []engine.VolumeInfo, as the engine does),
// their directories are cut from error frames.
func NewService(svc logsvc.Service, opts Options) *Server {
	opts = opts.withDefaults()
	var dirs []string
	if v, ok := svc.(volumeLister); ok {
		dirs = volumeDirs(v)
	}
	s := &Server{e: svc, opts: opts, listeners: map[net.Listener]struct{}{},
		conns: map[*conn]struct{}{}, stop: make(chan struct{}), volDirs: dirs,
		budget: newBudget(opts.MaxInFlightBytes), bodies: bodyPool{max: bigPoolBytes}}
	s.debug = s.opts.Logger.Enabled(context.Background(), slog.LevelDebug)
	if w, ok := svc.(interface{ Waiters(topic string) int }); ok {
		s.waiters = w.Waiters
	}
	return s
}

// Listen opens a listener for an address in the form netproto.ParseAddr
// reads: "tcp://host:port", plain "host:port" (TCP), "unix:///path" or a
// bare socket path. A stale Unix socket file left by a dead broker is
// removed first.
func Listen(addr string) (net.Listener, error) {
	network, address, err := netproto.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("server: address %q: %w", addr, err)
	}
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", address); err == nil {
				c.Close()
				return nil, fmt.Errorf("server: %s is in use by another process", address)
			}
			os.Remove(address)
		}
	}
	return net.Listen(network, address)
}

// Serve accepts connections on l until Shutdown or Close; it then returns
// ErrServerClosed. Accept errors that may pass (timeouts, too many open
// files, a connection aborted before it was accepted) are retried after a
// backoff of up to a second; any other accept error is returned as is.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if !retriableAccept(err) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("server: accept", "err", err, "retry in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		if s.nconns.Add(1) > int64(s.opts.MaxConns) {
			s.nconns.Add(-1)
			go refuse(nc, s.opts.WriteTimeout)
			continue
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			s.nconns.Add(-1)
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		if s.debug {
			s.opts.Logger.Debug("server: connection opened", "remote", remoteName(nc), "local", nc.LocalAddr().String(), "conns", s.nconns.Load())
		}
		go c.serve()
	}
}

// retriableAccept reports whether an accept error may pass by itself.
func retriableAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.closing.Load() && len(s.conns) == 0 {
		s.bodies.drain() // the last connection of a closed server: nothing uses them
	}
	s.mu.Unlock()
	n := s.nconns.Add(-1)
	if s.debug {
		s.opts.Logger.Debug("server: connection closed", "remote", remoteName(c.nc), "conns", n)
	}
	s.connWG.Done()
}

// Conns returns the number of open connections.
func (s *Server) Conns() int { return int(s.nconns.Load()) }

// Shutdown stops accepting, stops reading new requests, ends long polls
// and watches (a long poll is answered with what is there), answers the
// requests in flight, and closes every connection. If ctx ends first, the remaining
// connections are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	s.mu.Lock()
	for c := range s.conns {
		c.pollCancel()
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	for c := range s.conns {
		c.pollCancel()
		c.nc.Close()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) beginClose() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closing.Store(true)
		for l := range s.listeners {
			l.Close()
		}
		s.mu.Unlock()
		close(s.stop)
	})
}

// refuse answers a connection over the limit with one TooBusy frame and
// closes it. It does not linger as a refused frame on a counted connection
// does: refused connections are not counted, and a flood of them must not
// hold descriptors.
func refuse(nc net.Conn, timeout time.Duration) {
	defer nc.Close()
	nc.SetWriteDeadline(time.Now().Add(timeout))
	frame := netproto.AppendErrorFrame(nil, netproto.OpHello, 0, netproto.NewError(netproto.CodeTooBusy, "too many connections"))
	nc.Write(frame)
}

// remoteName names a connection's peer for the log; a Unix socket's peer
// has no address, so its local path stands in.
func remoteName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "unix:" + nc.LocalAddr().String()
}
