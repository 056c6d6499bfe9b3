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
// magic HRCK (the version, the asking node's id); with version 2 the
// client's key (auth.Principal.Key: `klen` (u16) and its bytes, at most
// maxKafkaFwdKey), then the request frame, `len` (u32) and the frame
// without its size prefix. Version 1 has no key: a node sends it when it
// has none to send (no -auth-file), so a node of the version before
// serves it, and this node serves a version-1 request as one of a client
// its auth file does not list. The node answers with the answer frame as
// its listener encodes it (with its size prefix), or a size of 0 for
// none, and closes. Its commits then run on each topic's leader
// (groupfwd.go).
const kafkaFwdMagic = 0x4852434b // "HRCK"

// maxKafkaFwdKey caps a forwarded client key: "token:" and 64 hex digits,
// or "subject:" and a certificate subject.
const maxKafkaFwdKey = 4096

// maxKafkaFwdFrame caps a forwarded request: group requests carry
// names, offsets and protocol metadata (the listener's own cap for them
// is 1 MiB by default).
const maxKafkaFwdFrame = 16 << 20

// KafkaFrames answers a forwarded Kafka request frame
// (kafka.Server.ServeForwarded) for the client whose key is principal
// (empty: none sent).
type KafkaFrames func(ctx context.Context, principal string, frame []byte) []byte

// SetKafka tells the node its Kafka listener, which answers the group
// requests other nodes forward when this node coordinates.
func (n *Node) SetKafka(f KafkaFrames) { n.kafkaServ.Store(&f) }

// KafkaGroupForward returns how this node's Kafka listener reaches the
// listener that coordinates the Kafka groups: nil when it is this node's
// (kafka.Options.GroupForward). With no metadata leader known, the
// requests fail (COORDINATOR_NOT_AVAILABLE, retriable) rather than split a
// group over two coordinators.
func (n *Node) KafkaGroupForward() func(ctx context.Context, principal string, frame []byte) ([]byte, error) {
	lead := n.metaLead.Load()
	if lead == n.cfg.NodeID {
		return nil
	}
	return func(ctx context.Context, principal string, frame []byte) ([]byte, error) {
		if lead == 0 {
			return nil, errors.New("cluster: no metadata leader to coordinate the Kafka groups")
		}
		return n.forwardKafka(ctx, lead, principal, frame)
	}
}

func (n *Node) forwardKafka(ctx context.Context, to uint64, principal string, frame []byte) ([]byte, error) {
	if len(principal) > maxKafkaFwdKey {
		return nil, fmt.Errorf("cluster: a client key of %d bytes cannot be forwarded (at most %d)", len(principal), maxKafkaFwdKey)
	}
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
	if _, err := c.Write(kafkaFwdRequest(n.cfg.NodeID, principal, frame)); err != nil {
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

// kafkaFwdRequest encodes a forwarded request: hello, the key (version
// 2; version 1 when there is none), the frame.
func kafkaFwdRequest(from uint64, principal string, frame []byte) []byte {
	b := make([]byte, 16, 16+2+len(principal)+4+len(frame))
	binary.LittleEndian.PutUint32(b[0:], kafkaFwdMagic)
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint64(b[8:], from)
	if principal != "" {
		binary.LittleEndian.PutUint32(b[4:], 2)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(principal)))
		b = append(b, principal...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	return append(b, frame...)
}

// readKafkaFwd reads a forwarded request after its hello of the given
// version: the client's key (empty with version 1) and the frame.
func readKafkaFwd(br *bufio.Reader, version uint32) (string, []byte, error) {
	var principal string
	switch version {
	case 1:
	case 2:
		var kl [2]byte
		if _, err := io.ReadFull(br, kl[:]); err != nil {
			return "", nil, err
		}
		n := int(binary.LittleEndian.Uint16(kl[:]))
		if n == 0 || n > maxKafkaFwdKey {
			return "", nil, fmt.Errorf("forwarded Kafka request with a client key of %d bytes (1 to %d)", n, maxKafkaFwdKey)
		}
		key := make([]byte, n)
		if _, err := io.ReadFull(br, key); err != nil {
			return "", nil, err
		}
		principal = string(key)
	default:
		return "", nil, fmt.Errorf("forwarded Kafka request of version %d (this node serves 1 and 2)", version)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return "", nil, err
	}
	sz := binary.LittleEndian.Uint32(hdr[:])
	if sz == 0 || sz > maxKafkaFwdFrame {
		return "", nil, fmt.Errorf("forwarded Kafka request of %d bytes", sz)
	}
	frame := make([]byte, sz)
	if _, err := io.ReadFull(br, frame); err != nil {
		return "", nil, err
	}
	return principal, frame, nil
}

// kafkaFwdServe serves a forwarded Kafka request whose hello had the
// given version (transport.serve hands the connection on).
type kafkaFwdServe func(c net.Conn, br *bufio.Reader, version uint32) error

// serveKafkaFwd answers one forwarded Kafka group request (a transport
// goroutine) whose hello had the given version. The wait ends when the
// asking node closes the connection (its client left).
func (n *Node) serveKafkaFwd(c net.Conn, br *bufio.Reader, version uint32) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	principal, frame, err := readKafkaFwd(br, version)
	if err != nil {
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
	out := (*f)(ctx, principal, frame)
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if out == nil {
		_, err := c.Write(make([]byte, 4))
		return err
	}
	_, err = c.Write(out)
	return err
}
