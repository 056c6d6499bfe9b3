package kafka

import (
	"bytes"
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka groups in a cluster. Each listener keeps its group members in
// memory (coordinator.go), so the members of one group must meet at one
// listener. With Options.GroupForward set, a listener that does not
// coordinate the Kafka groups (package cluster names one node for all)
// sends the group requests below, as received, to the one that does, and
// answers with its answer: a client talks to any node, and the members of
// a group meet whichever nodes they bootstrapped from. FindCoordinator
// still names this listener (the client keeps talking to it). With
// Options.Auth the request goes with the key of the client that logged in
// here (auth.Principal.Key), and the coordinating listener checks it with
// that client's permissions as its own auth file gives them
// (ServeForwarded); the forwarding listener checks nothing itself.

// forwardedKeys are the group requests that run on the coordinating
// listener.
var forwardedKeys = map[int16]bool{
	kmsg.JoinGroup.Int16():      true,
	kmsg.SyncGroup.Int16():      true,
	kmsg.Heartbeat.Int16():      true,
	kmsg.LeaveGroup.Int16():     true,
	kmsg.OffsetCommit.Int16():   true,
	kmsg.OffsetFetch.Int16():    true,
	kmsg.ListGroups.Int16():     true,
	kmsg.DescribeGroups.Int16(): true,
}

// GroupForwardFunc runs a request frame (without its size prefix) on the
// listener that coordinates the Kafka groups, for the client whose key
// is principal (auth.Principal.Key; empty without Options.Auth), and
// returns its answer frame (with its size prefix; nil: no answer). A nil
// GroupForwardFunc means this listener coordinates.
type GroupForwardFunc func(ctx context.Context, principal string, frame []byte) ([]byte, error)

// forward runs a group request on the coordinating listener when it is
// another; false: this listener handles it.
func (c *conn) forward(frame []byte, h reqHeader, req kmsg.Request, sl *slot) bool {
	// A request another node forwarded runs here, whoever coordinates
	// now: forwarded once at most, never in a loop.
	if c.s.opts.GroupForward == nil || c.forwarded || !forwardedKeys[h.key] {
		return false
	}
	fwd := c.s.opts.GroupForward()
	if fwd == nil {
		return false
	}
	var key string
	if c.s.opts.Auth != nil {
		key = c.principal.Load().Key()
	}
	f := bytes.Clone(frame)
	go func() {
		out, err := fwd(c.ctx, key, f)
		if err != nil {
			c.s.opts.Logger.Debug("kafka: forwarding a group request failed", "key", h.key, "err", err)
			c.finish(sl, h, errorResponse(h, req, errCoordinatorNotAvailable))
			return
		}
		if out == nil {
			close(sl.done)
			return
		}
		sl.out = out
		close(sl.done)
	}()
	return true
}

// ServeForwarded answers a group request frame another node's listener
// forwarded (Options.GroupForward) as a connection would, and returns the
// answer frame (with its size prefix; nil: none). The forwarding node has
// checked the client's login; principal is the client's key there
// (auth.Principal.Key). With Options.Auth the request runs with the
// permissions this listener's auth file gives that client now; a key the
// file does not list (removed by a reload, the nodes' files differ, or an
// older node that sent none) is logged and every permission check
// refuses it. ctx ends the wait (a join waiting for the other members).
// The request is not forwarded again.
func (s *Server) ServeForwarded(ctx context.Context, principal string, frame []byte) []byte {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &conn{s: s, ctx: ctx, cancel: cancel, authed: true, forwarded: true}
	if s.opts.Auth != nil {
		p, err := s.opts.Auth.Principal(principal)
		if err != nil {
			if ok, dropped := s.authLog.Allow(); ok {
				s.opts.Logger.Warn("kafka: a forwarded group request names no client of the auth file; it is refused: "+err.Error(),
					"not logged since the last line", dropped)
			}
		}
		c.principal.Store(p)
	}
	sl := &slot{done: make(chan struct{})}
	c.handle(frame, sl)
	select {
	case <-sl.done:
		return sl.out
	case <-ctx.Done():
		return nil
	}
}
