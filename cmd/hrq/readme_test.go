package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestREADMEShellExamples runs every line of README.md's sh code blocks,
// in order, in one bash session (set -e, pipefail) in a fresh copy of the
// repository, as a new user following the README would: it installs the
// binaries with the README's own go install line, starts the broker as
// the quick start does and runs every hrq and haraqa-dump example against
// it. So the README cannot promise a command that does not work.
//
// What the test changes, and why:
//   - the Unix socket /tmp/haraqa.sock and TCP port 4353 become a private
//     socket and a free port (HARAQA_BROKER_ADDR and HARAQA_ADDR point the
//     defaults there), so that runs do not collide;
//   - go install writes into a private GOBIN, which the README's PATH line
//     puts first instead of $(go env GOPATH)/bin;
//   - the HTTP port 127.0.0.1:4354 becomes a free port too
//     (HARAQA_BROKER_HTTP), and a curl .../stream follow is stopped after
//     5s, which must be its only failure (timeout's 124);
//   - the Kafka listener's 127.0.0.1:9092 becomes a free port too;
//   - commands that run until Ctrl-C (--follow, watch) get SIGINT after 5s
//     and must exit 0, as the README says they do;
//   - the quick start's "sleep 1" (a moment for the broker to listen)
//     waits until the broker's socket exists, up to 20s, so that a slow
//     machine does not fail the test;
//   - go test lines are not run: they are the suite this test is part of
//     (CI runs them itself).
func TestREADMEShellExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the binaries and runs the README against a broker; skipped in -short")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := shellLines(string(readme))
	if len(lines) < 20 {
		t.Fatalf("found only %d shell lines in README.md", len(lines))
	}

	work := t.TempDir()
	if err := copyRepo(repo, work); err != nil {
		t.Fatal(err)
	}
	gobin := t.TempDir()
	sockDir, err := os.MkdirTemp("", "rd") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "h.sock")
	port := freePort(t)
	httpPort := freePort(t)  // the broker's -http, for the HTTP API's curl examples
	kafkaPort := freePort(t) // the Kafka listener's, for the kcat examples

	var script strings.Builder
	script.WriteString("set -eo pipefail\n")
	for _, l := range lines {
		cmd := l.text
		cmd = strings.ReplaceAll(cmd, "/tmp/haraqa.sock", sock)
		cmd = strings.ReplaceAll(cmd, "127.0.0.1:4353", port)
		cmd = strings.ReplaceAll(cmd, "127.0.0.1:4354", httpPort)
		cmd = strings.ReplaceAll(cmd, "127.0.0.1:9092", kafkaPort)
		switch {
		case strings.HasPrefix(cmd, "go test "):
			cmd = ": not run here: " + strings.ReplaceAll(cmd, "'", "")
		case cmd == `export PATH="$(go env GOPATH)/bin:$PATH"`:
			cmd = `export PATH="$GOBIN:$PATH"`
		case strings.Contains(cmd, "--follow") || strings.HasPrefix(cmd, "hrq watch "):
			cmd = "timeout --preserve-status -s INT 5 " + cmd
		case strings.Contains(cmd, "/stream"):
			// An HTTP follow runs until Ctrl-C: stopped after 5s (124).
			// The line may end in a comment: the check goes on the next.
			cmd = "if timeout 5 " + cmd + "\nthen :; else [ $? -eq 124 ]; fi"
		case strings.HasPrefix(cmd, "sleep 1 "):
			cmd = fmt.Sprintf("for i in $(seq 200); do [ -S %s ] && break; sleep 0.1; done", shellQuote(sock))
		}
		fmt.Fprintf(&script, "echo %s >&2\n%s\n", shellQuote(fmt.Sprintf(">>> README.md:%d: %s", l.line, l.text)), cmd)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	ownProcessGroup(cmd) // the broker it starts in the background too
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HARAQA_") && !strings.HasPrefix(kv, "GOBIN=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "GOBIN="+gobin, "HARAQA_BROKER_ADDR="+port, "HARAQA_BROKER_HTTP="+httpPort, "HARAQA_ADDR=tcp://"+port)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	t.Cleanup(func() {
		if cmd.Process != nil {
			killProcessGroup(cmd)
		}
	})
	err = cmd.Run()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("the README's shell examples failed (%v); the last lines:\n%s", err, lastLines(out.String(), 60))
	}
	text := out.String()
	t.Logf("the README's shell examples ran:\n%s", text)
	for _, want := range []string{"100000\n", "hello world\n", "orders now starts at offset", `"base_offset":0,"count":2`, "Next-Offset: 3", `"value":"GET /about"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, lastLines(text, 60))
		}
	}
}

// shellLine is one command line of a README sh block.
type shellLine struct {
	line int // in README.md, from 1
	text string
}

// shellLines returns the command lines of markdown's ```sh blocks, in
// order, without blank and comment-only lines.
func shellLines(markdown string) []shellLine {
	var out []shellLine
	in := false
	for i, l := range strings.Split(markdown, "\n") {
		switch {
		case !in && strings.TrimSpace(l) == "```sh":
			in = true
		case in && strings.TrimSpace(l) == "```":
			in = false
		case in && strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#"):
			out = append(out, shellLine{line: i + 1, text: strings.TrimSpace(l)})
		}
	}
	return out
}

// copyRepo copies the repository's files (not .git, nor a data directory
// or binaries left at its root) to dst, as a fresh clone would hold them.
func copyRepo(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && (d.Name() == ".git" || rel == "data"):
			return filepath.SkipDir
		case rel == "broker" || rel == "hrq" || strings.HasSuffix(rel, ".test"):
			return nil
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		outf, err := os.OpenFile(filepath.Join(dst, rel), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(outf, in); err != nil {
			outf.Close()
			return err
		}
		return outf.Close()
	})
}

// freePort returns a TCP address on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shellQuote quotes s for bash, as one word taken literally.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
