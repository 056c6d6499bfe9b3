package cluster

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"testing"
	"time"
	"unsafe"

	pb "go.etcd.io/raft/v3/raftpb"
)

// pairTransports starts two transports (nodes 1 and 2) on 127.0.0.1 and
// returns node 1's and a channel of what node 2 receives.
func pairTransports(t *testing.T) (*transport, chan envelope) {
	t.Helper()
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := map[uint64]string{1: l1.Addr().String(), 2: l2.Addr().String()}
	got := make(chan envelope, 64)
	quiet := slog.New(slog.DiscardHandler)
	t1 := newTransport(1, l1, peers, quiet, func([]envelope) {})
	t2 := newTransport(2, l2, peers, quiet, func(es []envelope) {
		for _, e := range es {
			got <- e
		}
	})
	t1.start()
	t2.start()
	t.Cleanup(func() { t1.close(); t2.close() })
	return t1, got
}

func appendMsg(datas ...[]byte) *pb.Message {
	m := &pb.Message{Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(7)),
		LogTerm: new(uint64(6)), Index: new(uint64(41)), Commit: new(uint64(40))}
	for i, d := range datas {
		m.Entries = append(m.Entries, &pb.Entry{Term: new(uint64(7)), Index: new(uint64(42 + i)), Type: pb.EntryNormal.Enum(), Data: d})
	}
	return m
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) + seed
	}
	return b
}

func receive(t *testing.T, got chan envelope) envelope {
	t.Helper()
	select {
	case e := <-got:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received in 10s")
		return envelope{}
	}
}

// A follower receives every field of an append and every entry's data
// exactly as the leader sent them, and entries without data stay
// without; other messages and node frames travel as before.
func TestTransportCarriesEntries(t *testing.T) {
	t1, got := pairTransports(t)
	sent := appendMsg(nil, pattern(10, 1), pattern(100_000, 2), []byte{}, pattern(4096, 3), pattern(4095, 4))
	sent.Context, sent.Vote, sent.RejectHint = []byte("ctx"), new(uint64(3)), new(uint64(9)) // any other field travels too
	t1.send(5, []*pb.Message{sent})
	hb := &pb.Message{Type: pb.MsgHeartbeat.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(7)), Commit: new(uint64(3))}
	t1.send(6, []*pb.Message{hb})
	t1.sendNode(2, []byte{1, 2, 3})

	e := receive(t, got)
	if e.group != 5 || e.from != 1 {
		t.Fatalf("group %d from %d, want 5 from 1", e.group, e.from)
	}
	m := e.msg
	if m.GetType() != pb.MsgApp || m.GetTo() != 2 || m.GetFrom() != 1 || m.GetTerm() != 7 || m.GetLogTerm() != 6 ||
		m.GetIndex() != 41 || m.GetCommit() != 40 || string(m.GetContext()) != "ctx" || m.GetVote() != 3 || m.GetRejectHint() != 9 {
		t.Fatalf("message fields changed: %v", m)
	}
	if len(m.Entries) != len(sent.Entries) {
		t.Fatalf("%d entries, sent %d", len(m.Entries), len(sent.Entries))
	}
	for i, x := range m.Entries {
		want := sent.Entries[i]
		if x.GetTerm() != want.GetTerm() || x.GetIndex() != want.GetIndex() || x.GetType() != want.GetType() || !bytes.Equal(x.Data, want.Data) {
			t.Fatalf("entry %d: term %d index %d type %v, %d bytes; sent %d %d %v, %d bytes",
				i, x.GetTerm(), x.GetIndex(), x.GetType(), len(x.Data), want.GetTerm(), want.GetIndex(), want.GetType(), len(want.Data))
		}
		if len(want.Data) == 0 && x.Data != nil {
			t.Fatalf("entry %d: empty data arrived as a non-nil slice", i)
		}
	}
	e = receive(t, got)
	if e.group != 6 || e.msg.GetType() != pb.MsgHeartbeat || e.msg.GetCommit() != 3 || len(e.msg.Entries) != 0 {
		t.Fatalf("heartbeat arrived as group %d %v", e.group, e.msg)
	}
	e = receive(t, got)
	if e.group != nodeFrame || !bytes.Equal(e.raw, []byte{1, 2, 3}) {
		t.Fatalf("node frame arrived as group %d %v", e.group, e.raw)
	}
	// The sender's entries are not modified by the sending.
	if len(sent.Entries) != 6 || !bytes.Equal(sent.Entries[2].Data, pattern(100_000, 2)) {
		t.Fatal("the sent message's entries changed")
	}
}

// A follower copies an append's entry data once, out of the socket: the
// entries of a frame share one buffer (they were decoded each into an
// allocation of its own, a second copy of every byte).
func TestTransportEntriesShareOneBuffer(t *testing.T) {
	t1, got := pairTransports(t)
	t1.send(5, []*pb.Message{appendMsg(pattern(40_000, 1), pattern(40_000, 2), pattern(40_000, 3))})
	m := receive(t, got).msg
	if len(m.Entries) != 3 {
		t.Fatalf("%d entries", len(m.Entries))
	}
	for i := 1; i < 3; i++ {
		prev, cur := m.Entries[i-1].Data, m.Entries[i].Data
		end := uintptr(unsafe.Pointer(unsafe.SliceData(prev))) + uintptr(len(prev))
		if uintptr(unsafe.Pointer(unsafe.SliceData(cur))) != end {
			t.Fatalf("entry %d's data does not follow entry %d's in one buffer", i, i-1)
		}
	}
}

// A leader writes a large entry's data from the entry itself: the frame
// writer's vectors hold the entry's own bytes, not a copy.
func TestFrameWriterDoesNotCopyLargeEntries(t *testing.T) {
	big := pattern(64<<10, 9)
	m := appendMsg(pattern(10, 1), big)
	var w frameWriter
	if err := w.add(envelope{group: 3, msg: m}); err != nil {
		t.Fatal(err)
	}
	w.cut()
	found := false
	for _, v := range w.vecs {
		if unsafe.SliceData(v) == unsafe.SliceData(big) && len(v) == len(big) {
			found = true
		}
	}
	if !found {
		t.Fatal("the large entry's data was copied into the frame")
	}
	if len(m.Entries) != 2 {
		t.Fatal("the message's entries were not restored")
	}
	// And the frame decodes.
	var buf bytes.Buffer
	for _, v := range w.vecs {
		buf.Write(v)
	}
	var size uint64
	e, _, err := readFrame(bufio.NewReader(&buf), nil, &size)
	if err != nil {
		t.Fatal(err)
	}
	if e.group != 3 || len(e.msg.Entries) != 2 || !bytes.Equal(e.msg.Entries[1].Data, big) || size != uint64(w.n) {
		t.Fatalf("decoded group %d, %d entries, %d bytes of %d", e.group, len(e.msg.Entries), size, w.n)
	}
}

// Damaged frames are refused with an error, never a panic.
func TestReadFrameRefusesDamage(t *testing.T) {
	var w frameWriter
	if err := w.add(envelope{group: 3, msg: appendMsg(pattern(5000, 1), pattern(10, 2))}); err != nil {
		t.Fatal(err)
	}
	w.cut()
	var frame []byte
	for _, v := range w.vecs {
		frame = append(frame, v...)
	}
	for i := 4; i < len(frame) && i < 200; i++ {
		for _, x := range []byte{0xff, 0x00, 0x80} {
			d := append([]byte(nil), frame...)
			d[i] = x
			var size uint64
			readFrame(bufio.NewReader(bytes.NewReader(d)), nil, &size) // must not panic
		}
	}
	for cut := 0; cut < len(frame); cut += 97 {
		var size uint64
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(frame[:cut])), nil, &size); err == nil {
			t.Fatalf("a frame cut at %d of %d bytes was read", cut, len(frame))
		}
	}
}
