package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// Promise: an operator is told at start when the descriptor limit or
// vm.max_map_count is too low for the topics on disk, and what to set.
func TestLimitWarnings(t *testing.T) {
	if w := limitWarnings(1000, 20000, 65530); len(w) != 0 {
		t.Fatalf("1,000 topics under 20,000 descriptors warned: %q", w)
	}
	w := limitWarnings(16000, 20000, 65530)
	if len(w) != 1 || !strings.Contains(w[0], "LimitNOFILE") || !strings.Contains(w[0], "16000 topics") {
		t.Fatalf("16,000 topics under 20,000 descriptors: %q", w)
	}
	w = limitWarnings(60000, 1<<20, 65530)
	if len(w) != 1 || !strings.Contains(w[0], "vm.max_map_count") {
		t.Fatalf("60,000 topics under vm.max_map_count 65,530: %q", w)
	}
}

// limitedBroker runs the broker binary with RLIMIT_NOFILE soft:hard (set
// by prlimit(1) before it starts) and waits until it listens.
func limitedBroker(t *testing.T, bin, dir string, soft, hard int, extra ...string) *brokerProc {
	t.Helper()
	sock := filepath.Join(dir, "broker.sock")
	args := []string{"--nofile=" + strconv.Itoa(soft) + ":" + strconv.Itoa(hard), "--", bin, "-addr", "", "-http", "", "-unix", sock}
	args = append(append(args, extra...), filepath.Join(dir, "data"))
	cmd := exec.Command("prlimit", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	p := &brokerProc{cmd: cmd, sock: sock, logs: &bytes.Buffer{}, logsDone: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.logsDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		once := false
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !once && strings.Contains(sc.Text(), "msg=listening") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-p.logsDone:
		cmd.Wait()
		t.Fatalf("broker exited:\n%s", p.logText())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("broker did not start:\n%s", p.logText())
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits for the broker to exit (killing it after a
// bound).
func (p *brokerProc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.logsDone:
	case <-time.After(120 * time.Second):
		p.cmd.Process.Kill()
		<-p.logsDone
		t.Errorf("broker did not stop within 120 s of SIGTERM")
	}
	p.cmd.Wait()
}

// Promise: the broker raises its soft descriptor limit to the hard limit,
// logs the limit in force, and warns (naming LimitNOFILE) when it is too
// low for the topics on disk.
func TestBrokerRaisesAndChecksLimits(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(engine.Options{Dir: filepath.Join(dir, "data"), Fsync: engine.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 160 {
		if err := e.CreateTopic("t" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	p := limitedBroker(t, buildBroker(t), dir, 100, 200)
	p.stop(t)
	logs := p.logText()
	if !strings.Contains(logs, `msg="file limits" descriptors=200 `) {
		t.Fatalf("no file limits line with the raised limit 200:\n%s", logs)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "LimitNOFILE") || !strings.Contains(logs, "160 topics are on disk") {
		t.Fatalf("no warning that 200 descriptors are too few for 160 topics:\n%s", logs)
	}
}
