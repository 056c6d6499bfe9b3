package server

import (
	"bytes"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/vfs"
)

// logBuffer collects a server's log lines for a test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines that contain every one of words.
func (l *logBuffer) lines(words ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// secretDir is a data directory name that must never reach a client.
const secretDir = "/srv/haraqa-private-volume"

// fullDiskServer serves an engine on a MemFS under secretDir, logging to
// the returned buffer.
func fullDiskServer(t *testing.T) (*vfs.MemFS, *testServer, *logBuffer) {
	t.Helper()
	fs := vfs.NewMemFS()
	e := openEngine(t, engine.Options{Dir: secretDir, FS: fs, SegmentBytes: 1 << 20})
	var log logBuffer
	ts := startServer(t, e, "unix", Options{AutoCreateTopics: true, Logger: log.logger()})
	return fs, ts, &log
}

// Promise: an error frame tells the client what failed, never where the
// broker keeps its files; the operator finds the full error, with the
// path, in the broker's log.
func TestErrorFramesCarryNoPaths(t *testing.T) {
	mfs, ts, log := fullDiskServer(t)
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "fits"))
	mfs.SetCapacity(1) // the disk is full
	_, err := p.produce("t", batchOf(t, "does not fit"))
	pe := wantCode(t, err, netproto.CodeStorage)
	if strings.Contains(pe.Message, secretDir) || strings.Contains(pe.Message, "/") {
		t.Fatalf("error frame names a path: %q", pe.Message)
	}
	t.Logf("error frame: %q", pe.Message)
	if !strings.Contains(pe.Message, "no space left on device") || !strings.Contains(pe.Message, `"t"`) {
		t.Fatalf("error frame %q does not say what failed", pe.Message)
	}
	if len(log.lines(secretDir, "no space left on device")) == 0 {
		t.Fatalf("the log lacks the full error:\n%s", log)
	}

	// Any other error with a path: a write fault.
	mfs.SetCapacity(0)
	mfs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite {
			return newEIO("write", name)
		}
		return nil
	})
	_, err = p.produce("t", batchOf(t, "faulted"))
	pe = wantCode(t, err, netproto.CodeStorage)
	if strings.Contains(pe.Message, secretDir) {
		t.Fatalf("error frame names a path: %q", pe.Message)
	}
	if len(log.lines("request failed", secretDir, "input/output error")) == 0 {
		t.Fatalf("the log lacks the full error:\n%s", log)
	}
}

// Promise: a full disk is visible in the broker's log: one line when
// produces start failing for lack of space, naming the topic and the
// volume, and one when space is available again; not a line per failed
// produce.
func TestFullDiskLoggedOncePerEpisode(t *testing.T) {
	mfs, ts, log := fullDiskServer(t)
	p := mustDial(t, ts, "")
	p.mustProduce(t, "t", batchOf(t, "fits"))
	for episode := 1; episode <= 2; episode++ {
		mfs.SetCapacity(1)
		for range 5 {
			_, err := p.produce("t", batchOf(t, "does not fit"))
			wantCode(t, err, netproto.CodeStorage)
		}
		full := log.lines("level=ERROR", "no space", "topic=t", "volume="+secretDir)
		if len(full) != episode {
			t.Fatalf("episode %d: %d full-disk lines, want %d:\n%s", episode, len(full), episode, log)
		}
		mfs.SetCapacity(0)
		p.mustProduce(t, "t", batchOf(t, "fits again"))
		p.mustProduce(t, "t", batchOf(t, "and again"))
		if again := log.lines("space available again"); len(again) != episode {
			t.Fatalf("episode %d: %d 'space available again' lines, want %d:\n%s", episode, len(again), episode, log)
		}
	}
}

// Promise: file paths are cut from the text of any error a client sees,
// whatever wraps them.
func TestPublicText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"engine: storage error: topic \"t\": write /srv/d/t/0.log: no space left on device",
			"engine: storage error: topic \"t\": write: no space left on device"},
		{"engine: no other mirror to rebuild /mnt/v2 from", "engine: no other mirror to rebuild from"},
		{"segment (/a/b.log) is short", "segment () is short"},
		{"compression s2/zstd", "compression s2/zstd"},
	} {
		if got, _ := publicText(errString(c.in)); got != c.want {
			t.Errorf("publicText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got, cut := cutDirs("open data/t/0.log: EIO", []string{"data"}); got != "open <volume>/t/0.log: EIO" || !cut {
		t.Errorf("cutDirs: %q %v", got, cut)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// osPathError is an *fs.PathError with EIO, built for a fault.
func newEIO(op, path string) error { return &fs.PathError{Op: op, Path: path, Err: syscall.EIO} }
