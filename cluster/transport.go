package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// The transport carries Raft messages between nodes: one TCP connection
// per ordered pair of nodes (the sender dials), on which a sender
// goroutine writes every message queued for that peer since its last
// write in one writev, so the messages of all groups to one peer share
// writes. Frames: a hello (magic, version, the sender's node id) once,
// then per message: u32 length of what follows, u64 group id, a form byte
// and the message (frame.go: protobuf, or entries' data outside the
// protobuf); group 2^64-1 is a node frame (quiesce.go) instead. FORMAT.md
// "Cluster transport".
//
// The node loop writes a round's frames itself when they are small and
// the connection is idle (sendNow, then writeNow): its appends reach the
// followers, and a follower's answers the leader, without waiting for the
// peer goroutine to be scheduled, which on a busy machine took longer than
// the round trip itself while the loop went on to sync its Raft log. The
// loop's write does not block (what the socket does not take at once is
// left to the peer goroutine, written before anything after it); the
// peer goroutine dials and writes everything else.

const (
	transportMagic   = 0x48524331 // "HRC1"
	transportVersion = 3          // 2: node frames (group 2^64-1); 3: a form byte, entries' data outside the protobuf (frame.go)
	maxMessage       = 128 << 20
	maxQueuedPerPeer = 64 << 20 // bytes of encoded messages waiting for one peer
	// directMax: the loop writes a peer's queued frames itself only while
	// they hold at most this many bytes; larger rounds (busy topics' big
	// entries) are written by the peer goroutine, beside the loop.
	directMax = 64 << 10
)

type envelope struct {
	group uint64
	msg   *pb.Message
	from  uint64 // received: the sending node
	raw   []byte // a node frame (group nodeFrame) instead of msg
}

type transport struct {
	id    uint64
	log   *slog.Logger
	ln    net.Listener
	peers map[uint64]*peer
	recv  func([]envelope) // hands received messages to the node
	stat  func() (*Status, error)
	fetch func(net.Conn, *bufio.Reader) error        // a fetch request (snapfetch.go)
	admin func(context.Context, *AdminRequest) error // membership commands (membership_admin.go)
	gfwd  func(net.Conn, *bufio.Reader) error        // a forwarded group call (groupfwd.go)
	kfwd  kafkaFwdServe                              // a forwarded Kafka group request (kafkafwd.go)
	ids   sync.Map                                   // peer id → cluster address (the loop adds peers; any goroutine reads)
	stop  chan struct{}
	wg    sync.WaitGroup
	mute  atomic.Bool // a removed node sends nothing (membership_removed.go)

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	// Counters (cluster status, tests). directOut: writes the loop made
	// itself (writeNow); directRest: those the socket took only part of.
	msgsOut, msgsIn, bytesOut, bytesIn, writesOut, directOut, directRest atomic.Uint64

	kick []*peer // peers sendNow queued for, until writeNow (loop-owned)
	// holdPeer, when set (tests), is called by a peer goroutine each time
	// it wakes, before it writes.
	holdPeer func(*peer)
}

type peer struct {
	t    *transport
	id   uint64
	addr string
	mu   sync.Mutex
	q    []envelope
	qb   int // about the bytes of q's messages (msgBytes)
	sig  chan struct{}
	up   atomic.Bool // last dial or write succeeded
	kick bool        // in t.kick (loop-owned)

	// The right to write to the connection: held by the peer goroutine
	// while it dials and writes, or by the loop for a write of its own
	// (writeNow). Whoever holds it takes everything queued, so frames go
	// out in the order queued.
	wmu  sync.Mutex
	c    net.Conn    // wmu; nil: not connected
	wq   []envelope  // wmu: the queue taken
	fw   frameWriter // wmu
	rest []byte      // wmu: the tail of the loop's write the socket did not take
	dl   bool        // wmu: c has a write deadline set
}

func newTransport(id uint64, ln net.Listener, peers map[uint64]string, log *slog.Logger, recv func([]envelope)) *transport {
	t := &transport{id: id, log: log, ln: ln, peers: map[uint64]*peer{}, recv: recv, stop: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	for pid, addr := range peers {
		if pid == id {
			continue
		}
		t.peers[pid] = &peer{t: t, id: pid, addr: addr, sig: make(chan struct{}, 1)}
		t.ids.Store(pid, addr)
	}
	return t
}

func (t *transport) start() {
	t.wg.Add(1)
	go t.accept()
	for _, p := range t.peers {
		t.wg.Add(1)
		go p.run()
	}
}

func (t *transport) close() {
	close(t.stop)
	t.ln.Close()
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *transport) track(c net.Conn, on bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on {
		select {
		case <-t.stop:
			return false
		default:
		}
		t.conns[c] = struct{}{}
	} else {
		delete(t.conns, c)
	}
	return true
}

// send queues messages for their peers; never blocks. Messages for an
// unknown peer or beyond a peer's queue budget (2^20 messages, or
// maxQueuedPerPeer bytes but at least one message) are dropped (Raft
// resends).
func (t *transport) send(group uint64, msgs []*pb.Message) {
	t.queue(group, msgs, false)
}

// queue queues msgs for their peers as send says, and wakes each peer's
// goroutine or, with later, leaves the peer for writeNow.
func (t *transport) queue(group uint64, msgs []*pb.Message, later bool) {
	if t.mute.Load() {
		return
	}
	for _, m := range msgs {
		p := t.peers[m.GetTo()]
		if p == nil {
			continue
		}
		p.queue(envelope{group: group, msg: m}, msgBytes(m))
		if !later {
			p.signal()
		} else if !p.kick {
			p.kick = true
			t.kick = append(t.kick, p)
		}
	}
}

// msgBytes is about what m takes queued: its entries' and snapshot's data
// and a little for the rest.
func msgBytes(m *pb.Message) int {
	n := 64
	for _, e := range m.GetEntries() {
		n += len(e.GetData())
	}
	return n + len(m.GetSnapshot().GetData())
}

// sendNode queues a node frame (b, not modified later) for peer to.
func (t *transport) sendNode(to uint64, b []byte) {
	if t.mute.Load() {
		return
	}
	p := t.peers[to]
	if p == nil {
		return
	}
	p.mu.Lock()
	if len(p.q) < 1<<20 {
		p.q = append(p.q, envelope{group: nodeFrame, raw: b})
	}
	p.mu.Unlock()
	select {
	case p.sig <- struct{}{}:
	default:
	}
}

// fail drops the connection (wmu held) and what was half written on it.
func (p *peer) fail(err error) {
	if p.c != nil {
		if p.up.Swap(false) {
			p.t.log.Warn("cluster: lost peer", "peer", p.id, "addr", p.addr, "err", err)
		}
		p.c.Close()
		p.t.track(p.c, false)
		p.c = nil
	}
	p.rest = nil
	p.dl = false
	p.fw.reset()
}

// take moves the queued frames to p.wq (wmu held).
func (p *peer) take() {
	p.mu.Lock()
	p.wq, p.q = p.q, p.wq[:0]
	p.qb = 0
	p.mu.Unlock()
}

func (p *peer) run() {
	defer p.t.wg.Done()
	defer func() {
		p.wmu.Lock()
		p.fail(errors.New("stopping"))
		p.wmu.Unlock()
	}()
	for {
		select {
		case <-p.t.stop:
			return
		case <-p.sig:
		}
		if h := p.t.holdPeer; h != nil {
			h(p)
		}
		if !p.write() {
			return
		}
	}
}

// write writes what is queued (peer goroutine); false: the transport
// stopped.
func (p *peer) write() bool {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.take()
	q := p.wq
	defer clear(q)
	if len(q) == 0 && p.rest == nil {
		return true // the loop wrote them (writeNow)
	}
	if p.c == nil {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			p.up.Store(false)
			return true // dropped: Raft resends
		}
		if !p.t.track(c, true) {
			c.Close()
			return false
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		p.c = c
		// The hello goes before the first frames on a new connection.
		p.fw.buf = binary.LittleEndian.AppendUint32(p.fw.buf, transportMagic)
		p.fw.buf = binary.LittleEndian.AppendUint32(p.fw.buf, transportVersion)
		p.fw.buf = binary.LittleEndian.AppendUint64(p.fw.buf, p.t.id)
		if !p.up.Swap(true) {
			p.t.log.Info("cluster: connected to peer", "peer", p.id, "addr", p.addr)
		}
	}
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	p.dl = true
	if p.rest != nil {
		// The tail of the loop's write goes first.
		_, err := p.c.Write(p.rest)
		p.rest = nil
		if err != nil {
			p.fail(err)
			return true
		}
	}
	// Every frame queued since the last write, in one writev (frame.go:
	// entries' data written from the entries).
	for _, e := range q {
		if err := p.fw.add(e); err != nil {
			p.t.log.Error("cluster: encode raft message", "err", err)
		}
	}
	n := uint64(p.fw.n)
	err := p.fw.writeTo(p.c)
	p.t.msgsOut.Add(uint64(len(q)))
	p.t.bytesOut.Add(n)
	p.t.writesOut.Add(1)
	if err != nil {
		p.fail(err)
	}
	return true
}

// sendNow queues messages as send does, but leaves them for writeNow
// (loop goroutine).
func (t *transport) sendNow(group uint64, msgs []*pb.Message) {
	t.queue(group, msgs, true)
}

// writeNow writes what sendNow queued (loop goroutine): each peer's
// frames by the loop itself when the connection is up, idle and they are
// small (directMax), else by the peer goroutine.
func (t *transport) writeNow() {
	for _, p := range t.kick {
		p.kick = false
		if !p.writeDirect() {
			p.signal()
		}
	}
	clear(t.kick)
	t.kick = t.kick[:0]
}

// writeDirect writes the queued frames without blocking, if the peer
// goroutine is not writing and the connection is up (loop goroutine).
// What the socket does not take is left to the peer goroutine (true:
// written or handed on).
func (p *peer) writeDirect() bool {
	if !directWrites || !p.wmu.TryLock() {
		return false
	}
	defer p.wmu.Unlock()
	p.mu.Lock()
	ok := p.c != nil && p.rest == nil && len(p.q) > 0 && p.qb <= directMax
	p.mu.Unlock()
	if !ok {
		return false
	}
	p.take()
	q := p.wq
	defer clear(q)
	for _, e := range q {
		if err := p.fw.add(e); err != nil {
			p.t.log.Error("cluster: encode raft message", "err", err)
		}
	}
	n := uint64(p.fw.n)
	if p.dl {
		p.c.SetWriteDeadline(time.Time{})
		p.dl = false
	}
	rest, err := p.fw.writeSome(p.c)
	p.t.msgsOut.Add(uint64(len(q)))
	p.t.bytesOut.Add(n)
	p.t.writesOut.Add(1)
	p.t.directOut.Add(1)
	if err != nil {
		p.fail(err)
		return true // dropped: Raft resends
	}
	if len(rest) > 0 {
		p.rest = rest
		p.t.directRest.Add(1)
		p.signal()
	}
	return true
}

// queue adds e (about sz bytes) to the peer's queue unless it is full.
func (p *peer) queue(e envelope, sz int) {
	p.mu.Lock()
	if len(p.q) == 0 || len(p.q) < 1<<20 && p.qb+sz <= maxQueuedPerPeer {
		p.q = append(p.q, e)
		p.qb += sz
	}
	p.mu.Unlock()
}

func (p *peer) signal() {
	select {
	case p.sig <- struct{}{}:
	default:
	}
}

func (t *transport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !t.track(c, true) {
			c.Close()
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.track(c, false)
			defer c.Close()
			if err := t.serve(c); err != nil && !errors.Is(err, io.EOF) {
				select {
				case <-t.stop:
				default:
					t.log.Debug("cluster: inbound connection ended", "remote", c.RemoteAddr(), "err", err)
				}
			}
		}()
	}
}

// serve reads one inbound connection's messages and hands them to the
// node in batches: everything already buffered goes in one call.
func (t *transport) serve(c net.Conn) error {
	br := bufio.NewReaderSize(c, 256<<10)
	var hello [16]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(hello[0:]) == statusMagic && t.stat != nil {
		return t.serveStatus(c, t.stat)
	}
	if binary.LittleEndian.Uint32(hello[0:]) == fetchMagic && t.fetch != nil {
		if !t.known(binary.LittleEndian.Uint64(hello[8:])) {
			return errors.New("fetch from an unknown node")
		}
		return t.fetch(c, br)
	}
	if binary.LittleEndian.Uint32(hello[0:]) == adminMagic && t.admin != nil {
		return t.serveAdmin(c, br)
	}
	if binary.LittleEndian.Uint32(hello[0:]) == groupFwdMagic && t.gfwd != nil {
		if !t.known(binary.LittleEndian.Uint64(hello[8:])) {
			return errors.New("group call from an unknown node")
		}
		return t.gfwd(c, br)
	}
	if binary.LittleEndian.Uint32(hello[0:]) == kafkaFwdMagic && t.kfwd != nil {
		if !t.known(binary.LittleEndian.Uint64(hello[8:])) {
			return errors.New("Kafka request from an unknown node")
		}
		return t.kfwd(c, br, binary.LittleEndian.Uint32(hello[4:]))
	}
	if binary.LittleEndian.Uint32(hello[0:]) != transportMagic || binary.LittleEndian.Uint32(hello[4:]) != transportVersion {
		return errors.New("not a haraqa cluster peer")
	}
	from := binary.LittleEndian.Uint64(hello[8:])
	if !t.known(from) {
		return fmt.Errorf("hello from unknown node %d", from)
	}
	c.SetReadDeadline(time.Time{})
	var batch []envelope
	var buf []byte
	for {
		var size uint64
		e, nbuf, err := readFrame(br, buf, &size)
		buf = nbuf
		if err != nil {
			return err
		}
		t.msgsIn.Add(1)
		t.bytesIn.Add(size)
		e.from = from
		if e.msg != nil && e.msg.GetFrom() != from {
			return fmt.Errorf("message from %d on node %d's connection", e.msg.GetFrom(), from)
		}
		batch = append(batch, e)
		if br.Buffered() < 4 || len(batch) >= 4096 {
			t.recv(batch)
			batch = nil
		}
	}
}

// readBody reads the n bytes of a frame's body into buf (reused), growing
// it as the bytes arrive rather than by the length a peer claims: a header
// alone cannot make the node allocate up to maxMessage.
func readBody(br *bufio.Reader, buf []byte, n int) ([]byte, error) {
	const step = 1 << 20
	buf = buf[:0]
	for len(buf) < n {
		k := min(n-len(buf), step)
		buf = slices.Grow(buf, k)
		m, err := io.ReadFull(br, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
