package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// A peer's frame header cannot make a node allocate memory the peer never
// sends: a length word claiming the largest frame, followed by a few bytes
// and the end of the connection, costs the node about what arrived, not
// the 128 MiB claimed (a few such connections would otherwise take
// gigabytes). The frame is refused as cut short, without a panic.
func TestTransportFrameLengthNotTrusted(t *testing.T) {
	tr := newTransport(1, nil, map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"}, slog.New(slog.DiscardHandler), func([]envelope) {})
	for _, claim := range []uint32{maxMessage, maxMessage / 2, 1 << 24} {
		a, b := net.Pipe()
		go func() {
			defer a.Close()
			var hello [16]byte
			binary.LittleEndian.PutUint32(hello[0:], transportMagic)
			binary.LittleEndian.PutUint32(hello[4:], transportVersion)
			binary.LittleEndian.PutUint64(hello[8:], 2)
			a.Write(hello[:])
			frame := binary.LittleEndian.AppendUint32(nil, claim)
			frame = binary.LittleEndian.AppendUint64(frame, 7) // group
			a.Write(append(frame, make([]byte, 1000)...))
		}()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := tr.serve(b)
		runtime.ReadMemStats(&after)
		b.Close()
		if err == nil {
			t.Fatalf("claim %d: a frame cut short was accepted", claim)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
			t.Errorf("claim %d with 1,000 bytes sent: the node allocated %d bytes", claim, got)
		}
	}
}

// An admin request is read within a bound: a peer (or anything that
// reaches the cluster listener) sending an endless JSON string cannot make
// the node buffer it all; the request is refused.
func TestAdminRequestBounded(t *testing.T) {
	tr := newTransport(1, nil, map[uint64]string{1: "127.0.0.1:1"}, slog.New(slog.DiscardHandler), func([]envelope) {})
	called := false
	tr.admin = func(context.Context, *AdminRequest) error { called = true; return nil }
	a, b := net.Pipe()
	const sent = 32 << 20
	go func() {
		defer a.Close()
		var hello [16]byte
		binary.LittleEndian.PutUint32(hello[0:], adminMagic)
		binary.LittleEndian.PutUint32(hello[4:], 1)
		a.Write(hello[:])
		a.Write([]byte(`{"op":"`))
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for range sent >> 20 {
			if _, err := a.Write(chunk); err != nil {
				return // the node stopped reading
			}
		}
		a.Write([]byte(`"}`))
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := tr.serve(b)
	runtime.ReadMemStats(&after)
	b.Close()
	if err == nil || called {
		t.Fatalf("a %d MiB admin request was taken (err %v, run %v)", sent>>20, err, called)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("reading a %d MiB admin request allocated %d bytes", sent>>20, got)
	}
}

// A peer that does not keep up (paused, a slow link) cannot make a node
// queue unbounded memory for it: what waits for one peer is capped in
// bytes (about maxQueuedPerPeer), not only in messages, and the liveness
// frames still go in.
func TestTransportQueueBoundedInBytes(t *testing.T) {
	tr := newTransport(1, nil, map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"}, slog.New(slog.DiscardHandler), func([]envelope) {})
	data := make([]byte, 1<<20)
	for i := range 200 {
		tr.send(5, []*pb.Message{{Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)),
			Entries: []*pb.Entry{{Index: new(uint64(i + 2)), Term: new(uint64(1)), Data: data}}}})
	}
	tr.sendNode(2, []byte{frameLive, 1, 2, 3, 4, 5, 6, 7, 8})
	p := tr.peers[2]
	p.mu.Lock()
	defer p.mu.Unlock()
	var bytes int
	for _, e := range p.q {
		if e.msg != nil {
			for _, en := range e.msg.GetEntries() {
				bytes += len(en.GetData())
			}
		}
	}
	if bytes > maxQueuedPerPeer+len(data) {
		t.Errorf("%d MiB of entries queued for one peer (%d messages), cap %d MiB", bytes>>20, len(p.q), maxQueuedPerPeer>>20)
	}
	if last := p.q[len(p.q)-1]; last.msg != nil {
		t.Error("the liveness frame was not queued behind a full queue")
	}
}

// The loop writes a round's small frames to an idle peer connection
// itself: a leader's append reaches a follower (and a follower's answer
// the leader) even while the peer goroutine has not run, so that it does
// not wait for that goroutine to be scheduled while the loop syncs its
// Raft log (on a loaded machine that wait was longer than the round trip).
func TestTransportLoopWritesSmallRoundsItself(t *testing.T) {
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := map[uint64]string{1: lnA.Addr().String(), 2: lnB.Addr().String()}
	got := make(chan *pb.Message, 16)
	a := newTransport(1, lnA, peers, slog.New(slog.DiscardHandler), func([]envelope) {})
	b := newTransport(2, lnB, peers, slog.New(slog.DiscardHandler), func(es []envelope) {
		for _, e := range es {
			got <- e.msg
		}
	})
	var held atomic.Bool
	release := make(chan struct{})
	a.holdPeer = func(*peer) {
		if held.Load() {
			<-release
		}
	}
	a.start()
	b.start()
	defer b.close()
	defer a.close()
	defer close(release)
	app := func(i uint64) *pb.Message {
		return &pb.Message{Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(1)),
			Entries: []*pb.Entry{{Index: new(i), Term: new(uint64(1)), Data: []byte("batch")}}}
	}
	a.send(9, []*pb.Message{app(2)}) // the peer goroutine connects
	select {
	case m := <-got:
		if m.GetEntries()[0].GetIndex() != 2 {
			t.Fatalf("got %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first message never arrived")
	}
	// The peer goroutine finishes its write (it answers the first message
	// before it lets go of the connection), then stops at its next wake-up.
	p := a.peers[2]
	for deadline := time.Now().Add(10 * time.Second); !p.wmu.TryLock(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the peer goroutine kept the connection for 10 s")
		}
	}
	p.wmu.Unlock()
	held.Store(true)
	a.sendNow(9, []*pb.Message{app(3)})
	a.writeNow()
	select {
	case m := <-got:
		if m.GetEntries()[0].GetIndex() != 3 {
			t.Fatalf("got %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop's append did not reach the peer while its goroutine was held")
	}
	if a.directOut.Load() != 1 {
		t.Errorf("writes by the loop: %d, want 1", a.directOut.Load())
	}
}

// When the socket takes only part of the loop's write (a peer that reads
// slowly), the rest goes out before any later frame: the peer reads every
// frame whole and in order.
func TestTransportLoopWritePartialKeepsOrder(t *testing.T) {
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := map[uint64]string{1: lnA.Addr().String(), 2: ln.Addr().String()}
	a := newTransport(1, lnA, peers, slog.New(slog.DiscardHandler), func([]envelope) {})
	a.start()
	defer a.close()
	data := make([]byte, 60<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	app := func(i uint64) []*pb.Message {
		return []*pb.Message{{Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(1)),
			Entries: []*pb.Entry{{Index: new(i), Term: new(uint64(1)), Data: data}}}}
	}
	a.send(9, app(1)) // the peer goroutine connects
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var hello [16]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		t.Fatal(err)
	}
	var size uint64
	var buf []byte
	next := uint64(1)
	readOne := func() {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var e envelope
		var err error
		e, buf, err = readFrame(br, buf, &size)
		if err != nil {
			t.Fatalf("frame %d: %v", next, err)
		}
		en := e.msg.GetEntries()
		if len(en) != 1 || en[0].GetIndex() != next || !bytes.Equal(en[0].Data, data) {
			t.Fatalf("frame %d: got index %v, %d entries", next, en, len(en))
		}
		next++
	}
	readOne()
	// The peer stops reading: the loop writes until the socket takes only
	// part of a round, then queues more behind it. (The peer goroutine
	// lets go of the connection first: it wrote the first frame.)
	p := a.peers[2]
	for deadline := time.Now().Add(10 * time.Second); !p.wmu.TryLock(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the peer goroutine kept the connection for 10 s")
		}
	}
	p.wmu.Unlock()
	i := uint64(2)
	for ; i < 2000 && a.directRest.Load() == 0; i++ {
		a.sendNow(9, app(i))
		a.writeNow()
	}
	if a.directRest.Load() == 0 {
		t.Fatal("the socket never refused part of a write")
	}
	for k := range 3 {
		a.sendNow(9, app(i+uint64(k)))
		a.writeNow()
	}
	last := i + 2
	for next <= last {
		readOne()
	}
	if a.directOut.Load() == 0 {
		t.Error("the loop wrote nothing itself")
	}
}
