package main

import (
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/internal/testbroker"
	"github.com/haraqa/haraqa/server"
	"github.com/haraqa/haraqa/vfs"
)

// Promise: a produce that fails because the broker cannot store (a full
// disk) says so at once on stderr and exits with the storage code, not
// the connection code, naming "no space".
func TestProduceFullDisk(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMemFS()
	b := testbroker.Start(t, "unix", engine.Options{Dir: "/data", FS: fs, SegmentBytes: 1 << 20}, server.Options{AutoCreateTopics: true})
	addr := b.Addr

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
