package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBadAddressIsUsage checks that an address hrq cannot parse is a usage
// error (exit 2) that names where it came from, not a connection error.
func TestBadAddressIsUsage(t *testing.T) {
	t.Parallel()
	r := hrq(t, "", nil, "--addr", "bogus://x", "topics", "list")
	if r.code != exitUsage {
		t.Fatalf("--addr bogus://x: %v", r)
	}
	oneLineError(t, r, `"bogus://x"`, "--addr")
	r = hrq(t, "localhost", nil, "topics", "list")
	if r.code != exitUsage {
		t.Fatalf("HARAQA_ADDR=localhost: %v", r)
	}
	oneLineError(t, r, "HARAQA_ADDR", "HOST:PORT")
}

// TestCreateAndDeleteEveryTopic checks that create and delete try every
// topic named: one that fails gets its error line, the others are still
// created or deleted, and the exit code is not 0.
func TestCreateAndDeleteEveryTopic(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, nil, "topics", "create", "a")
	r := hrq(t, b.addr, nil, "topics", "create", "a", "b", "c")
	if r.code != exitError {
		t.Fatalf("create a b c with a existing: %v", r)
	}
	oneLineError(t, r, `topic "a" already exists`)
	if got := mustHRQ(t, b.addr, nil, "topics", "list"); got != "a\nb\nc\n" {
		t.Fatalf("topics after create a b c: %q", got)
	}
	r = hrq(t, b.addr, nil, "topics", "delete", "x", "b", "y")
	if r.code != exitNotFound || strings.Count(r.stderr, "\n") != 2 || !strings.Contains(r.stderr, `"x"`) || !strings.Contains(r.stderr, `"y"`) {
		t.Fatalf("delete x b y: %v", r)
	}
	if got := mustHRQ(t, b.addr, nil, "topics", "list"); got != "a\nc\n" {
		t.Fatalf("topics after delete x b y: %q", got)
	}
}

// TestMissingFileIsUsage checks that --file naming a file that does not
// exist is a usage error, found before anything is sent.
func TestMissingFileIsUsage(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	missing := filepath.Join(t.TempDir(), "missing.jpg")
	r := hrq(t, b.addr, nil, "produce", "blobs", "--file", missing)
	if r.code != exitUsage {
		t.Fatalf("--file missing: %v", r)
	}
	oneLineError(t, r, missing, "no such file")
	if got := mustHRQ(t, b.addr, nil, "topics", "list"); got != "" {
		t.Fatalf("a topic was created: %q", got)
	}
}

// TestSuggestions checks that a mistyped command gets a suggestion.
func TestSuggestions(t *testing.T) {
	t.Parallel()
	for args, want := range map[string]string{"consum": "did you mean consume?", "topics creat": "did you mean create?"} {
		r := hrq(t, "", nil, strings.Fields(args)...)
		if r.code != exitUsage {
			t.Fatalf("hrq %s: %v", args, r)
		}
		oneLineError(t, r, want)
	}
}

// TestCompleteTopicNames checks that shell completion offers the broker's
// topic names for topic arguments (and only where a topic goes).
func TestCompleteTopicNames(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, nil, "topics", "create", "orders", "ops", "payments")
	for args, want := range map[string]string{
		"consume o":                "orders\nops\n",
		"topics delete orders ":    "orders\nops\npayments\n",
		"watch ":                   "orders\nops\npayments\n",
		"consume orders ":          "orders\nops\npayments\n", // consume takes several topics
		"produce p":                "payments\n",
		"topics truncate pay":      "payments\n",
		"bench consume ":           "orders\nops\npayments\n",
		"offsets orders payments ": "orders\nops\npayments\n",
	} {
		fields := strings.Fields(args)
		if strings.HasSuffix(args, " ") {
			fields = append(fields, "")
		}
		r := hrq(t, b.addr, nil, append([]string{"__complete"}, fields...)...)
		got, _, _ := strings.Cut(r.stdout, ":") // the directive line follows
		if r.code != 0 || !sameLines(got, want) {
			t.Errorf("complete %q: %v; want %q", args, r, want)
		}
	}
}

// sameLines compares two newline-separated lists as sets.
func sameLines(a, b string) bool {
	set := map[string]int{}
	for _, l := range strings.Fields(a) {
		set[l]++
	}
	for _, l := range strings.Fields(b) {
		set[l]--
	}
	for _, n := range set {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestBenchStallReport checks what bench says when the broker stops
// answering and stderr is no terminal: status lines while it waits (not
// silence until --timeout), and a summary whose failed count is the
// error line's count of messages not stored.
func TestBenchStallReport(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	run := startHRQ(t, b.addr, "bench", "produce", "-n", "100000000", "--timeout", "3s", "--status-every", "500ms")
	waitStderr := func(what, want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(run.stderr.String(), want); {
			if time.Now().After(deadline) {
				t.Fatalf("no %s on stderr within 20s: %q", what, run.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStderr("status line", "acked")
	if err := pauseProcess(b.cmd.Process); err != nil {
		t.Fatal(err)
	}
	defer resumeProcess(b.cmd.Process)
	waitStderr("status line about the wait", "no acknowledgement for")
	var lines []string
	for l := range run.lines {
		lines = append(lines, l)
	}
	code := run.wait(t)
	stdout, stderr := strings.Join(lines, "\n")+"\n", run.stderr.String()
	if code != exitConn {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	failed := regexp.MustCompile(`, (\d+) failed\n`).FindStringSubmatch(stdout)
	notStored := regexp.MustCompile(`; (\d+) messages not stored`).FindStringSubmatch(stderr)
	if failed == nil || notStored == nil || failed[1] != notStored[1] || failed[1] == "0" {
		t.Fatalf("the summary's failed count and the error's not-stored count differ (or are 0)\nstdout: %s\nstderr: %s", stdout, stderr)
	}
}

// TestTruncateSaysWhatStays checks that a truncation that keeps messages
// below the asked position (the broker drops whole segments only) says so,
// instead of appearing to do nothing.
func TestTruncateSaysWhatStays(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, strings.NewReader(numbers(100)), "produce", "small")
	r := hrq(t, b.addr, nil, "topics", "truncate", "small", "--before", "-10")
	if r.code != 0 || r.stdout != "small now starts at offset 0\n" {
		t.Fatalf("truncate: %v", r)
	}
	if !strings.Contains(r.stderr, "offsets 0 to 89 stay") || !strings.Contains(r.stderr, "whole segments") {
		t.Fatalf("truncate that dropped nothing does not say why: %v", r)
	}
}

// TestSignalsStayCaught checks that hrq keeps catching SIGINT after its run
// ends: a second Ctrl-C (or timeout(1), which signals the process and its
// group) arriving while hrq exits must not kill it with status 130 after a
// clean stop. Before, the handler was removed before os.Exit, and the
// signal sent here killed the test process.
func TestSignalsStayCaught(t *testing.T) {
	if code := runMain([]string{"--version"}); code != 0 {
		t.Fatalf("hrq --version: exit %d", code)
	}
	if err := interruptSelf(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the signal is delivered, or the process is gone
}
