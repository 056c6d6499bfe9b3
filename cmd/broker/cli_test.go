package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// lockedBuffer is a bytes.Buffer that the broker's logger writes while a
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inProcess is a broker run by run in this test process.
type inProcess struct {
	addrs []net.Addr
	log   *lockedBuffer
	code  chan int
}

// runInProcess starts run(args) and waits until it serves. The test's
// working directory is a fresh temporary one, so that stray directories a
// bad parse would create land there.
func runInProcess(t *testing.T, args ...string) *inProcess {
	t.Helper()
	p := &inProcess{log: &lockedBuffer{}, code: make(chan int, 1)}
	ready := make(chan []net.Addr, 1)
	args = append([]string{"-http", ""}, args...) // no fixed HTTP port unless asked for: tests run in parallel
	go func() { p.code <- run(args, p.log, ready) }()
	select {
	case p.addrs = <-ready:
	case code := <-p.code:
		t.Fatalf("broker exited with %d before serving:\n%s", code, p.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("broker did not serve within 20s:\n%s", p.log)
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends this process SIGTERM, which the running broker catches, and
// waits for run to return 0.
func (p *inProcess) stop(t *testing.T) {
	t.Helper()
	if p.code == nil {
		return
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-p.code:
		if code != 0 {
			t.Errorf("broker exited with %d:\n%s", code, p.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("broker did not stop within 30s of SIGTERM:\n%s", p.log)
	}
	p.code = nil
}

// refuse runs run(args), which must return (not serve) within 10s: it
// returns the exit code and the output. A broker that serves instead is
// stopped with SIGTERM and the test fails.
func refuse(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out := &lockedBuffer{}
	code := make(chan int, 1)
	go func() { code <- run(append([]string{"-http", ""}, args...), out, nil) }()
	select {
	case c := <-code:
		return c, out.String()
	case <-time.After(10 * time.Second):
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		<-code
		t.Fatalf("%q: the broker served instead of refusing:\n%s", args, out)
		return 0, ""
	}
}

// TestFlagsAfterDataDirectory checks that flags after a data directory
// are flags, not more data directories: the broker listens where they
// say and creates no directory named after a flag or its value.
func TestFlagsAfterDataDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	sock := filepath.Join(t.TempDir(), "b.sock")
	p := runInProcess(t, "d1", "-addr", "", "-unix", sock)
	if len(p.addrs) != 1 || p.addrs[0].String() != sock {
		t.Errorf("listening on %v, want only %s", p.addrs, sock)
	}
	p.stop(t)
	entries, _ := os.ReadDir(".")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "d1" {
		t.Fatalf("the working directory holds %q, want only the data directory d1", names)
	}
	// "--" ends the flags: what follows is a directory even if it looks like a flag.
	if code, out := refuse(t, "-addr", "", "-unix", sock, "--", "-x"); code != exitUsage || !strings.Contains(out, `"-x" starts with '-'`) {
		t.Fatalf("a directory named like a flag: code %d, output %q", code, out)
	}
}

// TestDataDirectoryMustBeADirectory checks that a data directory that is a
// regular file or a socket is refused with a message that says so, before
// anything listens.
func TestDataDirectoryMustBeADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sockPath := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for path, kind := range map[string]string{file: "regular file", sockPath: "socket"} {
		code, out := refuse(t, "-addr", "127.0.0.1:0", path)
		if code != exitUsage || !strings.Contains(out, "is a "+kind+", not a directory") {
			t.Errorf("%s: code %d, output %q", kind, code, out)
		}
	}
}

// TestHelpAndBadFlags checks the operator's messages: -h shows the usage
// line, the flags and the environment variables and exits 0; an unknown
// flag or a bad value is one line naming the flag or the variable, exit 2.
func TestHelpAndBadFlags(t *testing.T) {
	code, help := refuse(t, "-h")
	if code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
	for _, want := range []string{"usage: broker [flags] [DATA_DIR...]", "-fsync-interval", "HARAQA_BROKER_<FLAG>", "HARAQA_ADDR"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h output lacks %q:\n%s", want, help)
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{args: []string{"-bogus"}, want: []string{"-bogus", "broker -h"}},
		{args: []string{"-fsync", "sometimes"}, want: []string{"-fsync", "sometimes", "always, interval or never"}},
		{args: []string{"-log-level", "loud"}, want: []string{"-log-level", "loud"}},
		{args: []string{"-max-conns", "0"}, want: []string{"-max-conns 0"}},
		{env: map[string]string{"HARAQA_BROKER_FSYNC": "bogus"}, want: []string{"HARAQA_BROKER_FSYNC", "bogus"}},
		{env: map[string]string{"HARAQA_BROKER_MAX_CONNS": "many"}, want: []string{"HARAQA_BROKER_MAX_CONNS", "many"}},
		{env: map[string]string{"HARAQA_BROKER_MAX_IN_FLIGHT": "0"}, want: []string{"HARAQA_BROKER_MAX_IN_FLIGHT=0"}},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		code, out := refuse(t, append(tc.args, "-addr", "127.0.0.1:0", t.TempDir())...)
		if code != exitUsage {
			t.Errorf("%v %v: exit %d, want %d (%q)", tc.args, tc.env, code, exitUsage, out)
		}
		if n := strings.Count(out, "\n"); n != 1 {
			t.Errorf("%v %v: %d lines, want one:\n%s", tc.args, tc.env, n, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v %v: output %q lacks %q", tc.args, tc.env, out, w)
			}
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
}

// TestHRQVariablesDoNotConfigureTheBroker checks that a shell set up for
// hrq (HARAQA_ADDR pointing at a socket, HARAQA_TOKEN) starts a broker
// that still listens on its own -addr and asks for no token.
func TestHRQVariablesDoNotConfigureTheBroker(t *testing.T) {
	t.Setenv("HARAQA_ADDR", "unix://"+filepath.Join(t.TempDir(), "missing", "hrq.sock"))
	t.Setenv("HARAQA_TOKEN", "for-hrq")
	p := runInProcess(t, "-addr", "127.0.0.1:0", t.TempDir())
	if len(p.addrs) != 1 || p.addrs[0].Network() != "tcp" {
		t.Fatalf("listening on %v, want the TCP -addr only", p.addrs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp://"+p.addrs[0].String())
	if err != nil {
		t.Fatalf("a client without a token: %v", err)
	}
	c.Close()
}

// TestPortInUseBeforeDataDirectory checks that an address in use is
// reported (naming the flag) before the data directory is created.
func TestPortInUseBeforeDataDirectory(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	data := filepath.Join(t.TempDir(), "data")
	code, out := refuse(t, "-addr", l.Addr().String(), data)
	if code != exitFailure || !strings.Contains(out, "-addr "+l.Addr().String()) {
		t.Errorf("port in use: exit %d, output %q", code, out)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created before the port was checked (stat: %v)", err)
	}
}

// TestOperatorLog checks what the log tells an operator: the start line
// has the version and the settings; at debug, connections and requests;
// at info, topics created (also by a first produce) and deleted and
// refused tokens; at shutdown,
// what it waits for.
func TestOperatorLog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "b.sock")
	p := runInProcess(t, "-addr", "", "-unix", sock, "-log-level", "debug", "-token", "s3cret", "-fsync", "never", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix://"+sock, client.WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Produce(ctx, "autoc", []byte("m")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := client.Dial(ctx, "unix://"+sock, client.WithToken("wrong")); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a wrong token: %v", err)
	}
	p.stop(t)
	log := p.log.String()
	for _, want := range []string{
		`msg="haraqa broker starting" version=dev`, "fsync=never", "token=set", "log-level=debug",
		`msg="haraqa broker serving" version=dev listeners=unix://` + sock, "max_conns=10000",
		`msg="server: connection opened"`, `msg="server: request"`, "op=create-topic",
		`msg="topic created" topic=orders`, `msg="topic deleted" topic=orders`,
		`msg="topic created" topic=autoc`, `by="auto-create on produce"`,
		`msg="server: refused a connection: bad token"`,
		"shutting down", "wait_up_to=30s", "stopped cleanly",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(log, "s3cret") {
		t.Errorf("the log shows the token")
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

// TestLateSignalAfterCleanStop checks that a signal arriving after the
// broker stopped cleanly, while the process exits, does not kill it (the
// exit status would be the signal's, not 0). Before, serve unregistered
// its handler when it returned, and the SIGTERM sent here killed the test
// process.
func TestLateSignalAfterCleanStop(t *testing.T) {
	p := runInProcess(t, "-addr", "127.0.0.1:0", t.TempDir())
	p.stop(t)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the signal is delivered, or the process is gone
}
