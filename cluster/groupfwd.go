package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/netproto"
)

// Forwarded group calls. A front end whose clients cannot find a topic's
// leader themselves (the Kafka listener: a Kafka group's commits go to
// haraqa groups on each topic it consumes, and those topics may be led by
// different nodes) uses ForwardingGroups: CreateGroup and SeekGroup on a
// replica that does not lead the topic are sent to the leader over the
// cluster listener and run there, and DescribeGroup is answered by the
// leader (so that a commit is seen at once), by this replica when the
// leader cannot be reached. FORMAT.md "Cluster transport": a hello with
// magic HRCG (version 1, the asking node's id), one JSON groupFwdRequest;
// the node answers one JSON groupFwdResponse and closes. The leader runs
// the call as its own (never forwarding it again).
const groupFwdMagic = 0x48524347 // "HRCG"

// maxGroupFwdRequest and maxGroupFwdResponse bound the JSON of a forwarded
// group call and of its answer (a DescribeGroup's members and counters).
const (
	maxGroupFwdRequest  = 64 << 10
	maxGroupFwdResponse = 16 << 20
)

type groupFwdRequest struct {
	Op     string               `json:"op"` // "create", "seek", "describe"
	Topic  string               `json:"topic"`
	Group  string               `json:"group"`
	Config engine.GroupConfig   `json:"config"`
	Pos    engine.StartPosition `json:"pos"`
}

type groupFwdResponse struct {
	Created bool             `json:"created,omitempty"`
	Next    uint64           `json:"next,omitempty"`
	Info    engine.GroupInfo `json:"info"`
	Error   string           `json:"error,omitempty"`
	Kind    string           `json:"kind,omitempty"` // the error's class (fwdKinds)
}

// fwdKinds are the error classes a forwarded call's answer keeps: the
// asking node wraps the message in the same class.
var fwdKinds = []struct {
	name string
	err  error
}{
	{"not_leader", logsvc.ErrNotLeader},
	{"in_doubt", logsvc.ErrInDoubt},
	{"group_not_found", engine.ErrGroupNotFound},
	{"group_exists", engine.ErrGroupExists},
	{"group_limit", engine.ErrGroupLimit},
	{"bad_group_request", engine.ErrBadGroupRequest},
	{"topic_not_found", engine.ErrTopicNotFound},
	{"bad_topic_name", engine.ErrBadTopicName},
	{"resource", engine.ErrResource},
	{"storage", engine.ErrStorage},
}

func fwdError(kind, msg string) error {
	for _, k := range fwdKinds {
		if k.name == kind {
			if k.err == logsvc.ErrNotLeader || k.err == logsvc.ErrInDoubt {
				return &clusterError{class: k.err, pe: netproto.NewError(netproto.CodeStorage, msg)}
			}
			return fmt.Errorf("%w: %s", k.err, msg)
		}
	}
	return errors.New(msg)
}

// serveGroupFwd runs one forwarded group call (a transport goroutine).
func (n *Node) serveGroupFwd(c net.Conn, br *bufio.Reader) error {
	var req groupFwdRequest
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	// A call is a few names and a group's configuration: read at most
	// maxGroupFwdRequest of it, whoever sends it.
	if err := json.NewDecoder(io.LimitReader(br, maxGroupFwdRequest)).Decode(&req); err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp groupFwdResponse
	var err error
	switch req.Op {
	case "create":
		resp.Created, err = n.CreateGroup(ctx, req.Topic, req.Group, req.Config)
	case "seek":
		resp.Next, err = n.SeekGroup(ctx, req.Topic, req.Group, req.Pos)
	case "describe":
		resp.Info, err = n.DescribeGroup(req.Topic, req.Group)
	default:
		err = fmt.Errorf("%w: unknown forwarded group call %q", engine.ErrBadGroupRequest, req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
		for _, k := range fwdKinds {
			if errors.Is(err, k.err) {
				resp.Kind = k.name
				break
			}
		}
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return json.NewEncoder(c).Encode(&resp)
}

// forwardGroup sends a group call to node lead and returns its answer (an
// error reaching it is ErrNotLeader: retriable, nothing known done).
func (n *Node) forwardGroup(ctx context.Context, lead uint64, req *groupFwdRequest) (groupFwdResponse, error) {
	var resp groupFwdResponse
	addr, ok := n.tr.addrOf(lead)
	if !ok {
		return resp, n.notLeader(0, "cluster: leader %d of topic %q has no known cluster address", lead, req.Topic)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return resp, n.notLeader(lead, "cluster: forwarding a group call to node %d, the leader of topic %q: %v", lead, req.Topic, err)
	}
	defer c.Close()
	dl := time.Now().Add(40 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.SetDeadline(dl)
	var hello [16]byte
	binary.LittleEndian.PutUint32(hello[0:], groupFwdMagic)
	binary.LittleEndian.PutUint32(hello[4:], 1)
	binary.LittleEndian.PutUint64(hello[8:], n.cfg.NodeID)
	b, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	if _, err := c.Write(append(hello[:], b...)); err != nil {
		return resp, n.notLeader(lead, "cluster: forwarding a group call to node %d: %v", lead, err)
	}
	if err := json.NewDecoder(io.LimitReader(bufio.NewReader(c), maxGroupFwdResponse)).Decode(&resp); err != nil {
		// Sent, no answer: a create or seek may have been done.
		return resp, inDoubt("cluster: group call forwarded to node %d, the leader of topic %q, got no answer: %v", lead, req.Topic, err)
	}
	if resp.Error != "" {
		return resp, fwdError(resp.Kind, resp.Error)
	}
	return resp, nil
}

// ForwardingGroups returns the node's consumer groups for a front end
// whose clients do not find a topic's leader themselves (the Kafka
// listener): CreateGroup and SeekGroup on a node that does not lead the
// topic run on its leader, and DescribeGroup is the leader's answer (see
// groupFwdMagic). Every other call is the node's own.
func (n *Node) ForwardingGroups() logsvc.Groups { return fwdGroups{n} }

type fwdGroups struct{ *Node }

// leaderElsewhere returns the topic's leader when the error says this
// node does not lead it and another node does.
func (f fwdGroups) leaderElsewhere(err error) (uint64, bool) {
	var ce *clusterError
	if !errors.As(err, &ce) || ce.class != logsvc.ErrNotLeader || ce.leader == 0 || ce.leader == f.cfg.NodeID {
		return 0, false
	}
	return ce.leader, true
}

func (f fwdGroups) CreateGroup(ctx context.Context, topic, group string, cfg engine.GroupConfig) (bool, error) {
	created, err := f.Node.CreateGroup(ctx, topic, group, cfg)
	if lead, ok := f.leaderElsewhere(err); ok {
		var resp groupFwdResponse
		resp, err = f.forwardGroup(ctx, lead, &groupFwdRequest{Op: "create", Topic: topic, Group: group, Config: cfg})
		created = resp.Created
	}
	return created, err
}

func (f fwdGroups) SeekGroup(ctx context.Context, topic, group string, pos engine.StartPosition) (uint64, error) {
	next, err := f.Node.SeekGroup(ctx, topic, group, pos)
	if lead, ok := f.leaderElsewhere(err); ok {
		var resp groupFwdResponse
		resp, err = f.forwardGroup(ctx, lead, &groupFwdRequest{Op: "seek", Topic: topic, Group: group, Pos: pos})
		next = resp.Next
	}
	return next, err
}

func (f fwdGroups) DescribeGroup(topic, group string) (engine.GroupInfo, error) {
	ti, err := f.topic(topic)
	if err != nil {
		return engine.GroupInfo{}, err
	}
	f.tmu.RLock()
	lead := f.leads[ti.Name]
	f.tmu.RUnlock()
	if lead != 0 && lead != f.cfg.NodeID && f.cfg.Relay != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := f.forwardGroup(ctx, lead, &groupFwdRequest{Op: "describe", Topic: topic, Group: group})
		cancel()
		var ce *clusterError
		if err == nil || !errors.As(err, &ce) {
			return resp.Info, err
		}
		// The leader could not be reached or does not lead any more:
		// this replica's copy of the durable state.
	}
	return f.Node.DescribeGroup(topic, group)
}
