package server

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// Placer is a log service that knows where topics live (a cluster node):
// it answers the Placement request (PROTOCOL.md "Placement"). A service
// without it (a single broker) answers UnknownOpcode.
type Placer interface {
	Placement(ctx context.Context, topics []string) (netproto.PlacementResponse, error)
}

// placement answers a Placement request; with permissions, only the
// topics the client may list are named.
func (c *conn) placement(h netproto.Header, body []byte) bool {
	var req netproto.PlacementRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	pl, ok := c.s.e.(Placer)
	if !ok {
		return c.writeError(h.Opcode, h.RequestID, netproto.NewError(netproto.CodeUnknownOpcode, h.Opcode.String()))
	}
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = string(t)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	resp, err := pl.Placement(ctx, names)
	cancel()
	if err == nil && c.s.opts.Auth != nil {
		kept := resp.Topics[:0]
		for _, t := range resp.Topics {
			if c.mayList(string(t.Name)) {
				kept = append(kept, t)
			}
		}
		resp.Topics = kept
	}
	return c.respond(h, &resp, err)
}
