package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	var res benchResult
	r := hrq(t, b.addr, nil, "bench", "produce", "load", "-n", "5000", "-s", "50", "-z", "s2", "--batch-bytes", "65536", "--json")
	if r.code != 0 || r.stderr != "" { // stderr is no terminal: no progress line
		t.Fatalf("bench produce: %v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Mode != "produce" || res.Topic != "load" || res.Messages != 5000 || res.Bytes != 250000 || res.Failed != 0 || res.MsgsPerSec <= 0 {
		t.Fatalf("bench produce: %+v", res)
	}
	r = hrq(t, b.addr, nil, "bench", "consume", "load", "--json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("bench consume: %v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Mode != "consume" || res.Messages != 5000 || res.Bytes != 250000 {
		t.Fatalf("bench consume: %+v", res)
	}
	out := mustHRQ(t, b.addr, nil, "bench", "consume", "load", "-n", "10")
	if !strings.HasPrefix(out, `consume "load": 10 messages, 500 bytes in `) {
		t.Fatalf("bench consume summary: %q", out)
	}
}

// TestBenchProgressOnTerminal runs bench produce with its stdout and
// stderr on a pseudo-terminal, as in a person's shell, and reads what the
// terminal got: progress lines with the rates, then the summary.
func TestBenchProgressOnTerminal(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := hrqCmd(t, ctx, b.addr, "bench", "produce", "-n", "300000", "-s", "100", "--batch-bytes", "131072")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 140})
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer tty.Close()
	var screen bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&screen, tty) // ends with EIO once hrq exits
		copied <- err
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bench produce: %v", err)
	}
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("terminal output did not end")
	}
	out := screen.String()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("exit %d: %q", ee.ExitCode(), out)
	}
	for _, want := range []string{"msgs/s", "MB/s", "acked", "ETA", "/300000", "\r",
		`produce "hrq-bench": 300000 messages, 30000000 bytes in`} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
}
