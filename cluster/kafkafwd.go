package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Kafka group membership in a cluster. Each node's Kafka listener keeps
// its groups' members in memory; for the members of a group to meet
// whichever nodes they bootstrapped from, one node coordinates every
// Kafka group: the metadata group's leader (every node knows it; a new
// one takes over after a failover, and the members join again there).
// The other nodes' listeners forward the group requests to it over the
// cluster listener (FORMAT.md "Cluster transport", HRCK): a hello with
// magic HRCK (version 1, the asking node's id), then the request frame,
// `len` (u32) and the frame without its size prefix; the node answers with
// the answer frame as its listener encodes it (with its size prefix), or
// a size of 0 for none, and closes. Its commits then run on each topic's
// leader (groupfwd.go).
const kafkaFwdMagic = 0x4852434b // "HRCK"

// maxKafkaFwdFrame caps a forwarded request: group requests carry
// names, offsets and protocol metadata (the listener's own cap for them
// is 1 MiB by default).
const maxKafkaFwdFrame = 16 << 20

// KafkaFrames answers a forwarded Kafka request frame
// (kafka.Server.ServeForwarded).
type KafkaFrames func(ctx context.Context, frame []byte) []byte

// SetKafka tells the node its Kafka listener, which answers the group
// requests other nodes forward when this node coordinates.
func (n *Node) SetKafka(f KafkaFrames) { n.kafkaServ.Store(&f) }

// KafkaGroupForward returns how this node's Kafka listener reaches the
// listener that coordinates the Kafka groups: nil when it is this node's
// (kafka.Options.GroupForward). With no metadata leader known, the
// requests fail (COORDINATOR_NOT_AVAILABLE, retriable) rather than split a
// group over two coordinators.
func (n *Node) KafkaGroupForward() func(ctx context.Context, frame []byte) ([]byte, error) {
	lead := n.metaLead.Load()
	if lead == n.cfg.NodeID {
		return nil
	}
	return func(ctx context.Context, frame []byte) ([]byte, error) {
		if lead == 0 {
			return nil, errors.New("cluster: no metadata leader to coordinate the Kafka groups")
		}
		return n.forwardKafka(ctx, lead, frame)
	}
}

func (n *Node) forwardKafka(ctx context.Context, to uint64, frame []byte) ([]byte, error) {
	addr, ok := n.tr.addrOf(to)
	if !ok {
		return nil, fmt.Errorf("cluster: node %d has no known cluster address", to)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	b := make([]byte, 20, 20+len(frame))
	binary.LittleEndian.PutUint32(b[0:], kafkaFwdMagic)
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint64(b[8:], n.cfg.NodeID)
	binary.LittleEndian.PutUint32(b[16:], uint32(len(frame)))
	if _, err := c.Write(append(b, frame...)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		return nil, err
	}
	sz := binary.BigEndian.Uint32(size[:])
	if sz == 0 {
		return nil, nil
	}
	if sz > 256<<20 {
		return nil, fmt.Errorf("cluster: forwarded Kafka answer of %d bytes", sz)
	}
	out := make([]byte, 4+sz)
	copy(out, size[:])
	if _, err := io.ReadFull(br, out[4:]); err != nil {
		return nil, err
	}
	return out, nil
}

// serveKafkaFwd answers one forwarded Kafka group request (a transport
// goroutine). The wait ends when the asking node closes the connection
// (its client left).
func (n *Node) serveKafkaFwd(c net.Conn, br *bufio.Reader) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return err
	}
	sz := binary.LittleEndian.Uint32(hdr[:])
	if sz == 0 || sz > maxKafkaFwdFrame {
		return fmt.Errorf("forwarded Kafka request of %d bytes", sz)
	}
	frame := make([]byte, sz)
	if _, err := io.ReadFull(br, frame); err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{})
	f := n.kafkaServ.Load()
	if f == nil {
		return errors.New("a Kafka request forwarded to a node without a Kafka listener")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the asking node closed: its client is gone
		io.Copy(io.Discard, br)
		cancel()
	}()
	out := (*f)(ctx, frame)
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if out == nil {
		_, err := c.Write(make([]byte, 4))
		return err
	}
	_, err := c.Write(out)
	return err
}
