package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	brokerBin string
	buildErr  error
)

// brokerBinary builds ../cmd/broker once per test process.
func brokerBinary(b testing.TB) string {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hqbench-bin-")
		if buildErr != nil {
			return
		}
		brokerBin = filepath.Join(buildDir, "broker")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		// Built in the root module (the parent of bench/), with the root
		// go.mod and go.sum: the broker's own dependencies need not be
		// listed in bench's go.sum.
		cmd := exec.Command(gobin, "build", "-o", brokerBin, "./cmd/broker")
		if _, file, _, ok := runtime.Caller(0); ok {
			cmd.Dir = filepath.Dir(filepath.Dir(file)) // the repository root, wherever the test binary runs
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the broker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return brokerBin
}

func cleanupBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// brokerLog is a child broker's stderr: it keeps the last lines and sends
// the address of the first "listening" line on addr.
type brokerLog struct {
	addr chan string

	mu   sync.Mutex
	buf  []byte // guarded by mu: the tail of the output
	line []byte // guarded by mu: the line being written
	sent bool   // guarded by mu: addr was sent
}

func (l *brokerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > 16<<10 {
		l.buf = l.buf[len(l.buf)-8<<10:]
	}
	for _, c := range p {
		if c != '\n' {
			l.line = append(l.line, c)
			continue
		}
		if !l.sent && bytes.Contains(l.line, []byte("msg=listening")) {
			l.addr <- listenAddr(string(l.line))
			l.sent = true
		}
		l.line = l.line[:0]
	}
	return len(p), nil
}

func (l *brokerLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// outOfProcess starts cmd/broker as a child process with its defaults
// but -fsync, listening on a free loopback port or a Unix socket, and
// stops it with SIGTERM at the end of the benchmark.
func outOfProcess(network string) func(b *testing.B, t tier) broker {
	return func(b *testing.B, t tier) broker { return startProcess(b, network, t) }
}

// startProcess starts cmd/broker as outOfProcess does, with extra flags
// after the defaults (so they win).
func startProcess(b *testing.B, network string, t tier, extra ...string) *haraqaBroker {
	h, err := tryStartProcess(b, network, t, extra...)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// tryStartProcess is startProcess, returning an error when the process
// exits before it listens (e.g. an address picked free a moment before
// was taken by another process meanwhile).
func tryStartProcess(b *testing.B, network string, t tier, extra ...string) (*haraqaBroker, error) {
	bin := brokerBinary(b)
	args := []string{"-fsync", policy(t).String(), "-log-level", "info", "-http", ""}
	if network == "unix" {
		args = append(args, "-addr", "", "-unix", socketPath(b))
	} else {
		args = append(args, "-addr", "127.0.0.1:0")
	}
	args = append(append(args, extra...), dataDir(b, "haraqa-proc"))
	cmd := exec.Command(bin, args...)
	out := &brokerLog{addr: make(chan string, 1)}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	var once sync.Once
	early := false // exited before listening: reported by the error returned
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if waitErr != nil && !early {
					b.Errorf("broker process: %v\n%s", waitErr, out)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-exited
				b.Errorf("broker process did not stop in 30s\n%s", out)
			}
		})
	}
	b.Cleanup(stop)
	select {
	case a := <-out.addr:
		return &haraqaBroker{addr: network + "://" + a, pid: cmd.Process.Pid, stop: stop}, nil
	case <-exited:
		early = true
		return nil, fmt.Errorf("broker process exited: %v\n%s", waitErr, out)
	case <-time.After(30 * time.Second):
		b.Fatalf("broker process not listening after 30s\n%s", out)
	}
	return nil, nil
}

// listenAddr takes addr=… from a slog text line.
func listenAddr(line string) string {
	for f := range strings.FieldsSeq(line) {
		if a, ok := strings.CutPrefix(f, "addr="); ok {
			return string(bytes.Trim([]byte(a), `"`))
		}
	}
	return ""
}
