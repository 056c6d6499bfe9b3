package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
)

// TestSIGTERMDrainsAndMarksClean checks the graceful-shutdown promise:
// SIGTERM under load lets acknowledged produces finish, syncs, writes the
// clean-shutdown marker and exits 0; a restart serves every acknowledged
// message.
func TestSIGTERMDrainsAndMarksClean(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the broker binary; skipped in -short")
	}
	bin := buildBroker(t)
	dir := t.TempDir()
	p := startBroker(t, bin, dir)
	c, err := dialRaw(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	for n := 0; n < 200; n++ {
		msg := "m" + strings.Repeat("x", n)
		batch, _ := record.AppendBatch(nil, []byte(msg))
		base, err := c.produce("term", batch)
		if err != nil {
			t.Fatal(err)
		}
		acked[base] = msg
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		<-p.logsDone // every line read before Wait closes the pipe
		done <- p.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("broker exited with %v\n%s", err, p.logText())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatal("broker did not stop within 30s of SIGTERM")
	}
	if !strings.Contains(p.logText(), "stopped cleanly") {
		t.Fatalf("no clean stop in the log:\n%s", p.logText())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "CLEAN")); err != nil {
		t.Fatalf("clean marker missing: %v", err)
	}
	p = startBroker(t, bin, dir)
	defer func() { p.cmd.Process.Kill(); p.cmd.Wait() }()
	c, err = dialRaw(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	got := c.readAll(t, "term")
	for off, want := range acked {
		if got[off] != want {
			t.Fatalf("offset %d: got %q want %q", off, got[off], want)
		}
	}
}

// TestFlagsAndEnv checks that HARAQA_BROKER_* variables set flags, that the
// command line wins over them, and that bad values are refused clearly.
func TestFlagsAndEnv(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-version"}, &out, nil); code != 0 || !strings.Contains(out.String(), "haraqa broker") {
		t.Fatalf("-version: code %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-fsync", "sometimes", t.TempDir()}, &out, nil); code != 2 || !strings.Contains(out.String(), "-fsync") {
		t.Fatalf("bad fsync: code %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-addr", "", "-unix", ""}, &out, nil); code != 2 || !strings.Contains(out.String(), "nothing to listen on") {
		t.Fatalf("no listener: code %d, output %q", code, out.String())
	}
	t.Setenv("HARAQA_BROKER_FSYNC", "bogus")
	out.Reset()
	if code := run([]string{t.TempDir()}, &out, nil); code != 2 || !strings.Contains(out.String(), "bogus") {
		t.Fatalf("env fsync: code %d, output %q", code, out.String())
	}
	t.Setenv("HARAQA_BROKER_FSYNC", "")
	t.Setenv("HARAQA_BROKER_MAX_CONNS", "many")
	out.Reset()
	if code := run(nil, &out, nil); code != 2 || !strings.Contains(out.String(), "HARAQA_BROKER_MAX_CONNS") {
		t.Fatalf("env bad int: code %d, output %q", code, out.String())
	}
}
