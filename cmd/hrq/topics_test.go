package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestTopicsLifecycle(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "-auto-create=false")
	mustHRQ(t, b.addr, nil, "topics", "create", "alpha", "beta", "gamma")
	r := hrq(t, b.addr, nil, "topics", "create", "beta")
	if r.code != exitError {
		t.Fatalf("create of an existing topic: %v", r)
	}
	oneLineError(t, r, `topic "beta" already exists`, "--if-not-exists")
	mustHRQ(t, b.addr, nil, "topics", "create", "beta", "--if-not-exists")
	if got := mustHRQ(t, b.addr, nil, "topics", "list"); got != "alpha\nbeta\ngamma\n" {
		t.Fatalf("list: %q", got)
	}
	if got := mustHRQ(t, b.addr, nil, "topics", "ls", "b"); got != "beta\n" {
		t.Fatalf("list with a prefix: %q", got)
	}
	if got := mustHRQ(t, b.addr, nil, "topics", "list", "--match", "a$"); got != "alpha\nbeta\ngamma\n" {
		t.Fatalf("list --match: %q", got)
	}
	var names []string
	if err := json.Unmarshal([]byte(mustHRQ(t, b.addr, nil, "topics", "list", "--match", "^g", "--json")), &names); err != nil || len(names) != 1 || names[0] != "gamma" {
		t.Fatalf("list --json: %v %v", names, err)
	}

	mustHRQ(t, b.addr, strings.NewReader("1\n2\n3\n"), "produce", "alpha")
	desc := mustHRQ(t, b.addr, nil, "topics", "describe", "alpha", "beta")
	if !strings.Contains(desc, "TOPIC") || !strings.Contains(desc, "alpha  0      3    3") || !strings.Contains(desc, "beta   0      0    0         -") {
		t.Fatalf("describe:\n%s", desc)
	}
	var infos []topicInfo
	if err := json.Unmarshal([]byte(mustHRQ(t, b.addr, nil, "topics", "describe", "alpha", "beta", "--json")), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Messages != 3 || infos[0].FirstAppended == nil || infos[0].LastAppended == nil || infos[1].FirstAppended != nil {
		t.Fatalf("describe --json: %+v", infos)
	}

	mustHRQ(t, b.addr, nil, "topics", "delete", "beta", "gamma")
	mustHRQ(t, b.addr, nil, "topics", "delete", "gamma", "--if-exists")
	if got := mustHRQ(t, b.addr, nil, "topics", "list"); got != "alpha\n" {
		t.Fatalf("list after delete: %q", got)
	}
	// Without auto-create a produce to a missing topic is "not found".
	r = hrq(t, b.addr, nil, "produce", "gamma", "m")
	if r.code != exitNotFound {
		t.Fatalf("produce to a missing topic: %v", r)
	}
	oneLineError(t, r, `topic "gamma" not found`)
}

func TestOffsetsAndTruncate(t *testing.T) {
	t.Parallel()
	b := startBroker(t) // 256 KiB segments
	var in strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&in, "%05d%s\n", i, strings.Repeat(".", 50)) // 1.1 MB in all
	}
	mustHRQ(t, b.addr, strings.NewReader(in.String()), "produce", "t", "--batch-bytes", "16384")
	if got := mustHRQ(t, b.addr, nil, "offsets", "t", "--at", "@-1h"); got != "t 0\n" {
		t.Fatalf("offsets --at: %q", got)
	}
	r := hrq(t, b.addr, nil, "topics", "truncate", "t", "--before", "10000")
	if r.code != 0 {
		t.Fatalf("truncate --before 10000: %v", r)
	}
	start := truncatedStart(t, r.stdout) // stderr notes the offsets kept below 10000
	if start < 10000 && !strings.Contains(r.stderr, fmt.Sprintf("offsets %d to 9999 stay", start)) {
		t.Fatalf("truncate --before 10000 kept offsets from %d without saying so: %v", start, r)
	}
	if start == 0 || start > 10000 {
		t.Fatalf("truncate --before 10000: new start %d", start)
	}
	if got, want := mustHRQ(t, b.addr, nil, "offsets", "t"), fmt.Sprintf("t %d 20000\n", start); got != want {
		t.Fatalf("offsets after truncate: %q, want %q", got, want)
	}
	lines := strings.Split(mustHRQ(t, b.addr, nil, "consume", "t"), "\n")
	if len(lines)-1 != int(20000-start) || !strings.HasPrefix(lines[0], fmt.Sprintf("%05d", start)) {
		t.Fatalf("consume after truncate: %d lines from %q", len(lines)-1, lines[0])
	}
	// Keep the last 100: the start moves on, at most to 19900.
	r = hrq(t, b.addr, nil, "topics", "truncate", "t", "--before", "-100")
	start2 := truncatedStart(t, r.stdout)
	if start2 <= start || start2 > 19900 {
		t.Fatalf("truncate --before -100: new start %d after %d", start2, start)
	}
	var offs []offsetsInfo
	if err := json.Unmarshal([]byte(mustHRQ(t, b.addr, nil, "offsets", "t", "--json")), &offs); err != nil || len(offs) != 1 || offs[0].Start != start2 || offs[0].End != 20000 {
		t.Fatalf("offsets --json: %+v %v", offs, err)
	}
	r = hrq(t, b.addr, nil, "topics", "truncate", "t", "--before", "30000")
	if r.code != exitNotFound {
		t.Fatalf("truncate past the end: %v", r)
	}
	oneLineError(t, r, "offset 30000 out of range")
}

// truncatedStart reads "t now starts at offset N".
func truncatedStart(t *testing.T, out string) uint64 {
	t.Helper()
	f := strings.Fields(out)
	if len(f) != 6 || f[1] != "now" {
		t.Fatalf("truncate printed %q", out)
	}
	n, err := strconv.ParseUint(f[5], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWatch(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, nil, "topics", "create", "w1", "w2")
	w := startHRQ(t, b.addr, "watch", "w1", "w2")
	w.expectLine(t, "w1's first range", func(s string) bool { return s == "w1 0 0" })
	mustHRQ(t, b.addr, strings.NewReader("a\nb\nc\n"), "produce", "w1")
	w.expectLine(t, "w1's range after three messages", func(s string) bool { return s == "w1 0 3" })
	mustHRQ(t, b.addr, nil, "topics", "delete", "w2")
	if code := w.wait(t); code != exitNotFound || !strings.Contains(w.stderr.String(), `topic "w2" not found`) {
		t.Fatalf("watch of a deleted topic: exit %d, stderr %q", code, w.stderr)
	}

	w = startHRQ(t, b.addr, "watch", "w1", "--json")
	line := w.expectLine(t, "a JSON event", func(string) bool { return true })
	var ev struct {
		Topic      string
		Start, End uint64
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Topic != "w1" || ev.End != 3 {
		t.Fatalf("watch --json printed %q: %v", line, err)
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Fatalf("watch ended by SIGINT: exit %d, stderr %q", code, w.stderr)
	}
	if got := mustHRQ(t, b.addr, nil, "watch", "w1", "-n", "1"); got != "w1 0 3\n" {
		t.Fatalf("watch -n 1: %q", got)
	}
}
