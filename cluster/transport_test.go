package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"runtime"
	"testing"
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
