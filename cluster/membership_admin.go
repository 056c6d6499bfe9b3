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
	"strconv"
	"time"
)

// Membership admin commands travel on the cluster listener, as the status
// request does: a hello with the admin magic, then one AdminRequest as
// JSON; the node answers {"error": "..."} (empty: done) once it applied the
// command, and closes. FORMAT.md "Cluster transport". The cluster listener
// is the nodes' own network: whoever reaches it is trusted.
const adminMagic = 0x48524341 // "HRCA"

// maxAdminRequest bounds an admin request's JSON.
const maxAdminRequest = 64 << 10

// AdminRequest is one membership command.
type AdminRequest struct {
	// Op: "add-node" (Node, Addr: its cluster address), "remove-node"
	// (Node), "move-replica" (Topic, From, To).
	Op    string `json:"op"`
	Node  uint64 `json:"node,omitempty"`
	Addr  string `json:"addr,omitempty"`
	Topic string `json:"topic,omitempty"`
	From  uint64 `json:"from,omitempty"`
	To    uint64 `json:"to,omitempty"`
}

type adminResponse struct {
	Error string `json:"error,omitempty"`
}

// Admin runs a membership command through the metadata group and returns
// once this node applied it (the groups' configurations then follow, see
// membership.go; Status shows the progress).
func (n *Node) Admin(ctx context.Context, req *AdminRequest) error {
	if err := n.errIfRemoved(); err != nil {
		return err
	}
	switch req.Op {
	case "add-node":
		if req.Node == 0 || req.Addr == "" {
			return errors.New("cluster: add-node needs a node id and its cluster address")
		}
		if _, _, err := net.SplitHostPort(req.Addr); err != nil {
			return fmt.Errorf("cluster: add-node: address %q: %w", req.Addr, err)
		}
		return n.metaCommand(ctx, kindAddNode, strconv.FormatUint(req.Node, 10)+"="+req.Addr)
	case "remove-node":
		if req.Node == 0 {
			return errors.New("cluster: remove-node needs a node id")
		}
		return n.metaCommand(ctx, kindRemoveNode, strconv.FormatUint(req.Node, 10))
	case "move-replica":
		if req.Topic == "" || req.From == 0 || req.To == 0 || len(req.Topic) > 1000 {
			return errors.New("cluster: move-replica needs a topic, the node it leaves and the node it goes to")
		}
		return n.metaCommand(ctx, kindMoveReplica, fmt.Sprintf("%s %d %d", req.Topic, req.From, req.To))
	}
	return fmt.Errorf("cluster: unknown admin command %q", req.Op)
}

func (t *transport) serveAdmin(c net.Conn, br *bufio.Reader) error {
	var req AdminRequest
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	// A request is a few short fields: read at most maxAdminRequest.
	if err := json.NewDecoder(io.LimitReader(br, maxAdminRequest)).Decode(&req); err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp adminResponse
	if err := t.admin(ctx, &req); err != nil {
		resp.Error = err.Error()
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return json.NewEncoder(c).Encode(&resp)
}

// SendAdmin sends a membership command to the node whose cluster listener
// is at addr and waits for its answer.
func SendAdmin(ctx context.Context, addr string, req *AdminRequest) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var hello [16]byte
	binary.LittleEndian.PutUint32(hello[0:], adminMagic)
	binary.LittleEndian.PutUint32(hello[4:], 1)
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := c.Write(append(hello[:], b...)); err != nil {
		return err
	}
	var resp adminResponse
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return fmt.Errorf("cluster admin at %s: %w", addr, err)
	}
	if resp.Error != "" {
		return &AdminError{Msg: resp.Error}
	}
	return nil
}

// AdminError is a node's refusal of a membership command (a node that
// answered; SendAdmin's other errors are about reaching it).
type AdminError struct{ Msg string }

func (e *AdminError) Error() string { return e.Msg }

// known reports whether id is a peer (any goroutine).
func (t *transport) known(id uint64) bool {
	_, ok := t.ids.Load(id)
	return ok
}

// addrOf returns peer id's cluster address (any goroutine).
func (t *transport) addrOf(id uint64) (string, bool) {
	a, ok := t.ids.Load(id)
	if !ok {
		return "", false
	}
	return a.(string), true
}

// addPeer starts sending to a node added to the cluster (loop goroutine).
func (t *transport) addPeer(id uint64, addr string) {
	if p := t.peers[id]; p != nil {
		return // its address stays until a restart
	}
	select {
	case <-t.stop:
		return
	default:
	}
	p := &peer{t: t, id: id, addr: addr, sig: make(chan struct{}, 1)}
	t.peers[id] = p
	t.ids.Store(id, addr)
	t.wg.Add(1)
	go p.run()
}
