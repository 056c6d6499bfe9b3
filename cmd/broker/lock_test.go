package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
)

// TestSecondBrokerRefused: an acknowledged message is never lost when two
// brokers are pointed at one data directory. The second broker process
// exits 1 at once with an error naming the volume and the first one's pid;
// the first keeps serving what it acknowledged.
func TestSecondBrokerRefused(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	p := startBroker(t, bin, dir)
	defer func() { p.cmd.Process.Kill(); <-p.logsDone; p.cmd.Wait() }()
	c, err := dialRaw(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := record.AppendBatch(nil, []byte("first"))
	if _, err := c.produce("t", batch); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "-addr", "", "-http", "", "-unix", filepath.Join(dir, "second.sock"), data)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the second broker did not exit:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("second broker: %v, want exit 1\n%s", err, out)
	}
	pid := "pid " + strconv.Itoa(p.cmd.Process.Pid)
	if !strings.Contains(string(out), data) || !strings.Contains(string(out), pid) {
		t.Fatalf("second broker's error does not name the volume and %s:\n%s", pid, out)
	}
	if n := strings.Count(strings.TrimSpace(string(out)), "\nbroker: "); n != 1 || !strings.Contains(string(out), "locked by another broker") {
		t.Errorf("second broker: want one error line about the lock, got:\n%s", out)
	}
	// The first broker still serves and still accepts writes.
	if _, err := c.produce("t", batch); err != nil {
		t.Fatalf("the first broker refused a produce after the second one tried its directory: %v", err)
	}
	if got := c.readAll(t, "t"); got[0] != "first" || got[1] != "first" {
		t.Fatalf("the first broker lost its messages: %v", got)
	}
}

// TestUnwritableDataDirectory: a data directory the broker cannot create
// or write stops it at start with exit 1 and one line naming the
// directory, not a panic or a broker serving without storage.
func TestUnwritableDataDirectory(t *testing.T) {
	var data string
	if os.Geteuid() != 0 {
		parent := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(parent, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(parent, 0o755) })
		data = filepath.Join(parent, "data")
	} else {
		// Permissions do not stop root: procfs refuses a new directory
		// to anyone.
		data = "/proc/haraqa-test-" + strconv.Itoa(os.Getpid())
	}
	code, out := refuse(t, "-addr", "127.0.0.1:0", "-http", "", data)
	if code != exitFailure {
		t.Errorf("exit %d, want %d: %q", code, exitFailure, out)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "broker: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], data) {
		t.Errorf("want one error line naming %s, got:\n%s", data, out)
	}
}
