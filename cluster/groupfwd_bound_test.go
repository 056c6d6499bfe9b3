package cluster

import (
	"bufio"
	"bytes"
	"net"
	"runtime"
	"testing"
)

// Whoever reaches the cluster listener cannot make a node hold unbounded
// memory with a forwarded group call: its JSON is read up to
// maxGroupFwdRequest (a call is a few names and a configuration), and a
// larger one is refused without being read whole.
func TestGroupFwdRequestBounded(t *testing.T) {
	a, b := net.Pipe()
	const sent = 32 << 20
	go func() {
		defer a.Close()
		a.Write([]byte(`{"op":"`))
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for range sent >> 20 {
			if _, err := a.Write(chunk); err != nil {
				return // the node stopped reading
			}
		}
		a.Write([]byte(`"}`))
		var sink [4096]byte
		for {
			if _, err := a.Read(sink[:]); err != nil {
				return
			}
		}
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := (&Node{}).serveGroupFwd(b, bufio.NewReader(b))
	runtime.ReadMemStats(&after)
	b.Close()
	if err == nil {
		t.Fatalf("a %d MiB forwarded group call was read whole", sent>>20)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("reading a %d MiB forwarded group call allocated %d bytes", sent>>20, got)
	}
}
