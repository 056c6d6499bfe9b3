package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run the built hrq binary against the built broker binary on a
// Unix socket, as a shell would. Both are built once per test run.
var bins struct {
	dir         string
	hrq, broker string
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "hrq-test-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bins.dir = dir
		bins.hrq, bins.broker = filepath.Join(dir, "hrq"), filepath.Join(dir, "broker")
		hrqArgs := []string{"build", "-o", bins.hrq}
		if raceEnabled {
			hrqArgs = append(hrqArgs, "-race") // hrq's own goroutines run under the detector too
		}
		for _, args := range [][]string{append(hrqArgs, "."), {"build", "-o", bins.broker, "../broker"}} {
			cmd := exec.Command("go", args...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "go %s: %v\n", strings.Join(args, " "), err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// broker is a running broker binary.
type broker struct {
	addr  string // unix:///...
	sock  string
	data  string
	extra []string
	cmd   *exec.Cmd
	mu    sync.Mutex
	log   bytes.Buffer
}

// startBroker starts a broker on a Unix socket in a fresh directory and
// stops it when the test ends. Its segments are small (256 KiB) so that
// truncation has segments to drop; batches must fit one.
func startBroker(t *testing.T, extra ...string) *broker {
	t.Helper()
	// Socket paths are short-lived and short: t.TempDir() can pass the
	// 108-byte limit of a socket address.
	sockDir, err := os.MkdirTemp("", "hrq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	return startBrokerAt(t, filepath.Join(sockDir, "b.sock"), filepath.Join(t.TempDir(), "data"), extra...)
}

// restart starts a stopped broker again on its socket and data.
func (b *broker) restart(t *testing.T) *broker {
	t.Helper()
	return startBrokerAt(t, b.sock, b.data, b.extra...)
}

// stop stops the broker with SIGTERM and waits for it to exit.
func (b *broker) stop(t *testing.T) {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
}

func startBrokerAt(t *testing.T, sock, data string, extra ...string) *broker {
	t.Helper()
	args := append([]string{"-addr", "", "-http", "", "-unix", sock, "-fsync", "never", "-segment-bytes", "262144"}, extra...)
	args = append(args, data)
	b := &broker{addr: "unix://" + sock, sock: sock, data: data, extra: extra, cmd: exec.Command(bins.broker, args...)}
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.mu.Lock()
			b.log.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
			if strings.Contains(sc.Text(), "msg=listening") {
				select {
				case <-ready:
				default:
					close(ready)
				}
			}
		}
	}()
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("broker did not start:\n%s", b.logText())
	}
	return b
}

func (b *broker) logText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

// result is how an hrq run ended.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %.2000q\nstderr: %q", r.code, r.stdout, r.stderr)
}

// hrqCmd returns an hrq command against addr (through HARAQA_ADDR; an
// empty addr leaves it unset), bounded by the test's context.
func hrqCmd(t *testing.T, ctx context.Context, addr string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, bins.hrq, args...)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HARAQA_") {
			env = append(env, kv)
		}
	}
	if addr != "" {
		env = append(env, "HARAQA_ADDR="+addr)
	}
	cmd.Env = env
	return cmd
}

// hrq runs hrq to the end with stdin (nil: empty) and returns how it
// ended. It fails the test if hrq takes more than a minute.
func hrq(t *testing.T, addr string, stdin io.Reader, args ...string) result {
	t.Helper()
	return hrqEnv(t, addr, nil, stdin, args...)
}

// hrqEnv is hrq with extra environment variables.
func hrqEnv(t *testing.T, addr string, env []string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := hrqCmd(t, ctx, addr, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("hrq %s: still running after a minute", strings.Join(args, " "))
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("hrq %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustHRQ runs hrq and fails the test unless it exits 0 with nothing on
// stderr; it returns stdout.
func mustHRQ(t *testing.T, addr string, stdin io.Reader, args ...string) string {
	t.Helper()
	r := hrq(t, addr, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("hrq %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// running is an hrq process that runs until stopped: --follow, watch.
type running struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *syncBuffer
	cancel context.CancelFunc
}

func startHRQ(t *testing.T, addr string, args ...string) *running {
	t.Helper()
	return startHRQWithStdin(t, addr, nil, args...)
}

func startHRQWithStdin(t *testing.T, addr string, stdin *os.File, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r := &running{cmd: hrqCmd(t, ctx, addr, args...), lines: make(chan string, 1024), stderr: &syncBuffer{}, cancel: cancel}
	r.cmd.Stderr = r.stderr
	if stdin != nil {
		r.cmd.Stdin = stdin
	}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		r.cmd.Wait()
	})
	return r
}

// expectLine waits up to 10 seconds for a line of stdout for which ok
// holds, skipping the others, and returns it.
func (r *running) expectLine(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, open := <-r.lines:
			if !open {
				t.Fatalf("hrq ended before printing %s; stderr: %q", what, r.stderr.String())
			}
			if ok(line) {
				return line
			}
		case <-timeout:
			t.Fatalf("no %s within 10s; stderr: %q", what, r.stderr.String())
		}
	}
}

// wait waits for the process to end (up to 10 seconds) and returns its
// exit code; stdout must have been read to its end.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	for range r.lines {
	}
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatal("hrq did not exit within 10s")
	}
	return -1
}

// numbers returns "1\n2\n...n\n", as seq 1 n prints it.
func numbers(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String()
}

// oneLineError checks that stderr is exactly one line that contains every
// one of want.
func oneLineError(t *testing.T, r result, want ...string) {
	t.Helper()
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "hrq: ") {
		t.Fatalf("stderr is not one line starting with \"hrq: \": %v", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("stderr lacks %q: %v", w, r)
		}
	}
}

// syncBuffer is a bytes.Buffer that a process's stderr copier may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int { return len(s.String()) }
