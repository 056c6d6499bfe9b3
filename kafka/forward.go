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
// still names this listener (the client keeps talking to it).

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
// listener that coordinates the Kafka groups and returns its answer frame
// (with its size prefix; nil: no answer). A nil GroupForwardFunc means
// this listener coordinates.
type GroupForwardFunc func(ctx context.Context, frame []byte) ([]byte, error)

// forward runs a group request on the coordinating listener when it is
// another; false: this listener handles it.
func (c *conn) forward(frame []byte, h reqHeader, req kmsg.Request, sl *slot) bool {
	if c.s.opts.GroupForward == nil || c.forwarded || c.s.opts.Auth != nil || !forwardedKeys[h.key] {
		return false
	}
	fwd := c.s.opts.GroupForward()
	if fwd == nil {
		return false
	}
	f := bytes.Clone(frame)
	go func() {
		out, err := fwd(c.ctx, f)
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
// checked the client's login; ctx ends the wait (a join waiting for the
// other members).
func (s *Server) ServeForwarded(ctx context.Context, frame []byte) []byte {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &conn{s: s, ctx: ctx, cancel: cancel, authed: true, forwarded: true}
	sl := &slot{done: make(chan struct{})}
	c.handle(frame, sl)
	select {
	case <-sl.done:
		return sl.out
	case <-ctx.Done():
		return nil
	}
}
