package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// Following leaders (DESIGN.md "Replication"). A Client dialled with a seed
// list of more than one node learns the cluster's placement with the
// Placement request (on its seed connection, answered by any node) and
// sends each topic's produces, offsets requests and consumes on a
// connection to the topic's leader, so that no produce is forwarded
// between nodes and a read sees every message the leader acknowledged (a
// follower learns of a commit, and applies it, a moment after the leader
// answers). A follower still takes a
// produce (it forwards it through Raft), so a stale placement costs a hop,
// never an error: the Client falls back to its seed connection whenever
// the leader is unknown or unreachable. The placement is fetched again
// when a routed produce fails or its connection ends, and every
// placementMaxAge while produces flow (a leader that moved without
// failing anything).

// placementMaxAge is how old a placement may get before the next produce
// asks for a fresh one (in the background).
const placementMaxAge = 3 * time.Second

// electionRecheck is how soon a placement that named no leader for a
// topic is asked for again.
const electionRecheck = 250 * time.Millisecond

// nodeRetry is how long a node whose connection failed is left out of
// routing (its topics go through the seed connection meanwhile).
const nodeRetry = time.Second

type router struct {
	c      *Client
	scheme string // of the seed list ("tcp://", "tls://"; "" for plain host:port)

	mu          sync.Mutex
	nodes       map[uint64]string  // node id → client address
	leaders     map[string]uint64  // topic → node to send its produces to
	subs        map[uint64]*Client // connections to nodes, one each
	down        map[uint64]time.Time
	fetched     time.Time     // when the placement was last fetched (zero: stale)
	fetching    chan struct{} // non-nil while a fetch runs; closed when it ends
	unsupported bool          // the broker does not know Placement (not a cluster)
	unsure      int           // answers in a row that named no leader for some topic
	closed      bool
}

func newRouter(c *Client, list []string) *router {
	r := &router{c: c, nodes: map[uint64]string{}, leaders: map[string]uint64{}, subs: map[uint64]*Client{}, down: map[uint64]time.Time{}}
	if i := strings.Index(list[0], "://"); i >= 0 {
		r.scheme = list[0][:i+3]
	}
	return r
}

// connFor returns the connection to send topic's produces and reads on: its
// leader's when the placement names one that is reachable, else the seed
// connection.
func (c *Client) connFor(ctx context.Context, topic string) (*conn, error) {
	r := c.route
	if r == nil {
		return c.conn(ctx)
	}
	if sub := r.clientFor(ctx, topic); sub != nil {
		cn, err := sub.conn(ctx)
		if err == nil {
			return cn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.failed(sub)
	}
	return c.conn(ctx)
}

// routeFailed notes that a produce to topic failed: the next one asks for
// the placement first.
func (c *Client) routeFailed() {
	if r := c.route; r != nil {
		r.mu.Lock()
		r.fetched = time.Time{}
		r.mu.Unlock()
	}
}

// clientFor returns the Client of topic's leader (nil: use the seed
// connection), fetching the placement first when it is stale or does not
// know the topic, and in the background when it is old.
func (r *router) clientFor(ctx context.Context, topic string) *Client {
	r.mu.Lock()
	if r.unsupported || r.closed {
		r.mu.Unlock()
		return nil
	}
	_, known := r.leaders[topic]
	switch age := time.Since(r.fetched); {
	case r.fetched.IsZero() || !known && age > nodeRetry:
		r.mu.Unlock()
		r.fetch(ctx)
		r.mu.Lock()
	case age > placementMaxAge && r.fetching == nil:
		r.mu.Unlock()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r.fetch(ctx)
		}()
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	id := r.leaders[topic]
	if id == 0 || r.closed || time.Now().Before(r.down[id]) {
		return nil
	}
	if sub := r.subs[id]; sub != nil {
		return sub
	}
	addr := r.nodes[id]
	if addr == "" {
		return nil
	}
	if r.scheme != "" && !strings.Contains(addr, "://") {
		addr = r.scheme + addr
	}
	sub := &Client{addr: addr, cfg: r.c.cfg, watches: map[*conn]struct{}{}}
	r.subs[id] = sub
	return sub
}

// failed drops a node's Client whose connection failed and leaves the node
// out for nodeRetry; the placement is fetched again.
func (r *router) failed(sub *Client) {
	r.mu.Lock()
	for id, s := range r.subs {
		if s == sub {
			delete(r.subs, id)
			r.down[id] = time.Now().Add(nodeRetry)
		}
	}
	r.fetched = time.Time{}
	r.mu.Unlock()
	sub.Close()
}

// fetch asks the seed connection for the placement of every topic; one
// fetch runs at a time, the others wait for it.
func (r *router) fetch(ctx context.Context) {
	r.mu.Lock()
	if ch := r.fetching; ch != nil {
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	r.fetching = ch
	r.mu.Unlock()
	nodes, leaders, unsure, err := r.c.placement(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetching = nil
	close(ch)
	switch {
	case errors.Is(err, ErrUnknownOpcode):
		r.unsupported = true
	case err != nil:
		// Keep what is known; try again at the next produce after a while.
		r.fetched = time.Now().Add(nodeRetry - placementMaxAge)
	default:
		r.nodes, r.leaders, r.fetched = nodes, leaders, time.Now()
		if unsure {
			// An election is running somewhere (or the answering node
			// is not a replica of some topic): look again soon, then
			// less and less often.
			wait := min(electionRecheck<<min(r.unsure, 4), placementMaxAge)
			r.fetched = r.fetched.Add(wait - placementMaxAge)
			r.unsure++
		} else {
			r.unsure = 0
		}
		for id, sub := range r.subs {
			if r.nodes[id] == "" || sub.addr != r.scheme+r.nodes[id] && sub.addr != r.nodes[id] {
				delete(r.subs, id) // the node left or moved
				go sub.Close()
			}
		}
	}
}

// Placement is where a cluster's topics live, as one node answered
// (PROTOCOL.md "Placement").
type Placement struct {
	// Nodes maps each node's id to the address clients reach it at (a
	// node that has not told the cluster its address yet is left out).
	Nodes map[uint64]string
	// Topics maps each topic to its placement.
	Topics map[string]TopicPlacement
}

// TopicPlacement is one topic's leader (0: unknown to the answering node)
// and replicas, in id order.
type TopicPlacement struct {
	Leader   uint64
	Term     uint64
	Replicas []uint64
}

// Placement asks the connected node where the cluster's topics live
// (every topic the client may list). A single broker answers
// ErrUnknownOpcode.
func (c *Client) Placement(ctx context.Context) (Placement, error) {
	cl := getCall(netproto.OpPlacement)
	req := netproto.PlacementRequest{}
	cl.head = req.AppendTo(cl.head)
	defer putCall(cl) // after the names are copied out of cl.body
	if err := c.roundTrip(ctx, cl, nil); err != nil {
		return Placement{}, err
	}
	var resp netproto.PlacementResponse
	if err := resp.Decode(cl.body); err != nil {
		return Placement{}, err
	}
	pl := Placement{Nodes: make(map[uint64]string, len(resp.Nodes)), Topics: make(map[string]TopicPlacement, len(resp.Topics))}
	for _, n := range resp.Nodes {
		if len(n.Addr) > 0 {
			pl.Nodes[n.ID] = string(n.Addr)
		}
	}
	for _, t := range resp.Topics {
		pl.Topics[string(t.Name)] = TopicPlacement{Leader: t.Leader, Term: t.Term, Replicas: t.Replicas}
	}
	return pl, nil
}

// placement returns the node to send each topic's produces to: its
// leader, or when the answering node knows none (unsure), the first
// replica with an address.
func (c *Client) placement(ctx context.Context) (nodes map[uint64]string, leaders map[string]uint64, unsure bool, err error) {
	pl, err := c.Placement(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	leaders = make(map[string]uint64, len(pl.Topics))
	for name, t := range pl.Topics {
		to := t.Leader
		if pl.Nodes[to] == "" {
			to, unsure = 0, true
			for _, id := range t.Replicas {
				if pl.Nodes[id] != "" {
					to = id
					break
				}
			}
		}
		leaders[name] = to
	}
	return pl.Nodes, leaders, unsure, nil
}

// close closes every node's Client.
func (r *router) close() {
	r.mu.Lock()
	subs := r.subs
	r.subs, r.closed = nil, true
	r.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}
