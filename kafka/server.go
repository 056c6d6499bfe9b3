package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"github.com/haraqa/haraqa/internal/ratelog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/logsvc"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("kafka: server closed")

// Server serves the Kafka protocol on top of a logsvc.Service.
type Server struct {
	svc    logsvc.Service
	groups groupService // nil: the group APIs answer as unsupported
	opts   Options
	ids    topicIDs
	dec    decompressor
	coord  *coordinator
	room   frameRoom
	// authLog spaces the lines of refused logins (a client retrying a
	// wrong password must not flood the log).
	authLog ratelog.Limiter

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	nconns    atomic.Int64
	wg        sync.WaitGroup
}

// New returns a server for svc. When svc also offers consumer groups
// (logsvc.Groups) the group APIs are served on them.
func New(svc logsvc.Service, opts Options) *Server {
	s := &Server{
		svc:       svc,
		opts:      opts.withDefaults(),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}
	s.dec.limit = s.opts.MaxBatchBytes
	// Whole units, rounded up: a largest frame always fits (rounded down,
	// a MaxInFlightBytes under one unit left no room at all).
	s.room.tokens = make(chan struct{}, max(roomUnits64(s.opts.MaxInFlightBytes), roomUnits(s.opts.MaxFrame)))
	s.groups = groupsOf(svc)
	if opts.Groups != nil {
		s.groups = opts.Groups
	}
	s.coord = newCoordinator()
	return s
}

// ListenAndServe listens on the TCP address addr and serves it.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close; it then
// returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			// EMFILE and the like: wait, as net/http does.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if s.nconns.Add(1) > int64(s.opts.MaxConns) {
			s.nconns.Add(-1)
			nc.Close()
			continue
		}
		if s.opts.TLS != nil {
			nc = tls.Server(nc, s.opts.TLS)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.nconns.Add(-1)
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.nconns.Add(-1)
		}()
	}
}

// Shutdown stops accepting, lets every connection finish the requests it
// has read (no new ones are read), and returns when all are closed or ctx
// ends (then it closes them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.coord.close()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.coord.close()
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	return nil
}
