package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"runtime"
	"testing"

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
