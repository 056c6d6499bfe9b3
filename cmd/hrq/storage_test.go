package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
	"github.com/haraqa/haraqa/vfs"
)

// Promise: a produce that fails because the broker cannot store (a full
// disk) says so at once on stderr and exits with the storage code, not
// the connection code, naming "no space".
func TestProduceFullDisk(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMemFS()
	quiet := slog.New(slog.DiscardHandler)
	e, err := engine.Open(engine.Options{Dir: "/data", FS: fs, SegmentBytes: 1 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "hrq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	addr := "unix://" + filepath.Join(sockDir, "b.sock")
	l, err := server.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(e, server.Options{AutoCreateTopics: true, Logger: quiet})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		e.Close()
	})

	mustHRQ(t, addr, nil, "produce", "t", "fits")
	fs.SetCapacity(1) // the disk is full
	start := time.Now()
	r := hrq(t, addr, nil, "produce", "t", "--timeout", "1s", "does not fit")
	if r.code != exitStorage {
		t.Fatalf("produce on a full disk: %v; want exit %d", r, exitStorage)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "cannot store") || !strings.Contains(lines[1], "no space left on device") ||
		!strings.Contains(lines[1], "no acknowledgement for 1s") {
		t.Fatalf("stderr: want the storage problem at once, then the storage failure: %v", r)
	}
	t.Logf("exit %d after %v:\n%s", r.code, time.Since(start).Round(time.Millisecond), r.stderr)
}
