package server

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/vfs"
)

// memSegmentBytes keeps the in-memory file system's segments small: MemFS
// backs a segment's mapping with a buffer of the whole segment size, and
// zeroing the default 1 GiB each time a topic is created took seconds on a
// loaded machine, past the test peer's read timeout.
const memSegmentBytes = 1 << 20

// Promise: a produce that auto-creates its topic and cannot create it is
// told why (here a failing disk), never "topic not found" — the topic was
// asked for and the client must learn what stopped it.
func TestAutoCreateFailureSaysWhy(t *testing.T) {
	fs := vfs.NewMemFS()
	e := openEngine(t, engine.Options{FS: fs, Dir: "/data", SegmentBytes: memSegmentBytes})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.Contains(name, "/topics/fresh/") {
			return errors.New("injected: no inodes left")
		}
		return nil
	})
	_, err := p.produce("fresh", batchOf(t, "a"))
	pe := wantCode(t, err, netproto.CodeStorage)
	if !strings.Contains(pe.Message, "injected: no inodes left") || !pe.Retriable {
		t.Fatalf("produce to an uncreatable topic: %v (retriable %v), want the cause, retriable", pe, pe.Retriable)
	}
	fs.SetFault(nil)
	if _, err := p.produce("fresh", batchOf(t, "b")); err != nil {
		t.Fatalf("produce once the disk works again: %v", err)
	}
}

// Promise: a broker out of file descriptors tells the producer so, with a
// retriable Resource error — not "topic not found", not a storage fault —
// and the produce works once descriptors are free again.
func TestAutoCreateOutOfDescriptors(t *testing.T) {
	fs := vfs.NewMemFS()
	e := openEngine(t, engine.Options{FS: fs, Dir: "/data", SegmentBytes: memSegmentBytes})
	ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
	p := mustDial(t, ts, "")
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.Contains(name, "/topics/fresh/") {
			return syscall.EMFILE
		}
		return nil
	})
	_, err := p.produce("fresh", batchOf(t, "a"))
	if pe := wantCode(t, err, netproto.CodeResource); !pe.Retriable {
		t.Fatalf("resource error not retriable: %v", pe)
	}
	fs.SetFault(nil)
	if _, err := p.produce("fresh", batchOf(t, "b")); err != nil {
		t.Fatalf("produce once descriptors are free: %v", err)
	}
	if n := e.Stats().ResourceErrors; n != 1 {
		t.Fatalf("ResourceErrors = %d, want 1", n)
	}
}
