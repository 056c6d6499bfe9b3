package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSeqRoundTrip is `seq 1 100000 | hrq produce t` then
// `hrq consume t --from beginning -e | wc -l`: 100000 lines, the same ones.
func TestSeqRoundTrip(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	in := numbers(100000)
	mustHRQ(t, b.addr, strings.NewReader(in), "produce", "t")
	out := mustHRQ(t, b.addr, nil, "consume", "t", "--from", "beginning", "-e")
	if n := strings.Count(out, "\n"); n != 100000 {
		t.Fatalf("consume printed %d lines, want 100000", n)
	}
	if out != in {
		t.Fatal("consume printed other lines than were produced")
	}
	// Without --follow, -e is the default.
	if out2 := mustHRQ(t, b.addr, nil, "consume", "t"); out2 != in {
		t.Fatal("consume without -e printed other lines")
	}
	if got := mustHRQ(t, b.addr, nil, "offsets", "t"); got != "t 0 100000\n" {
		t.Fatalf("offsets: %q", got)
	}
}

func TestConsumeFrom(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	before := time.Now().Add(-time.Second)
	mustHRQ(t, b.addr, strings.NewReader(numbers(100)), "produce", "t")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "97"}, "98\n99\n100\n"},
		{[]string{"--from", "-2"}, "99\n100\n"},
		{[]string{"--from=-1000", "-n", "2"}, "1\n2\n"},
		{[]string{"-o", "end"}, ""},
		{[]string{"--from", "@" + before.Format(time.RFC3339Nano), "-n", "1"}, "1\n"},
		{[]string{"--from", "@-1h", "-n", "1"}, "1\n"},
		{[]string{"--from", "@" + time.Now().Add(time.Hour).Format(time.RFC3339), "-e"}, ""},
		{[]string{"--from", "10", "-n", "3", "--format", `{{.Offset}}\t{{.Value}}`}, "10\t11\n11\t12\n12\t13\n"},
		{[]string{"--from", "98", "-D", ","}, "99,100,"},
		{[]string{"--from", "99", "-0"}, "100\x00"},
	} {
		got := mustHRQ(t, b.addr, nil, append([]string{"consume", "t"}, c.args...)...)
		if got != c.want {
			t.Errorf("consume t %s: got %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	r := hrq(t, b.addr, nil, "consume", "t", "--from", "500")
	if r.code != exitNotFound {
		t.Fatalf("--from past the end: %v", r)
	}
	oneLineError(t, r, "offset 500 out of range", "[0, 100)")
}

func TestFollowPrintsLaterMessages(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, nil, "produce", "logs", "first")
	f := startHRQ(t, b.addr, "consume", "logs", "--follow")
	f.expectLine(t, "the first line", func(s string) bool { return s == "first" })
	// hrq has read to the end and waits: this message comes after it started.
	mustHRQ(t, b.addr, nil, "produce", "logs", "second")
	f.expectLine(t, "the line produced after --follow started", func(s string) bool { return s == "second" })
	if err := f.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t); code != 0 || f.stderr.Len() != 0 {
		t.Fatalf("--follow ended by SIGINT: exit %d, stderr %q; want 0 and nothing", code, f.stderr)
	}
	// -n ends a follow; it waits at offset 2 until the message arrives.
	f = startHRQ(t, b.addr, "consume", "logs", "--follow", "--from", "2", "-n", "1")
	mustHRQ(t, b.addr, nil, "produce", "logs", "third")
	f.expectLine(t, "the third line", func(s string) bool { return s == "third" })
	if code := f.wait(t); code != 0 {
		t.Fatalf("--follow -n 1 exited %d; stderr %q", code, f.stderr)
	}
}

// jsonLine is what consume --json prints per message.
type jsonLine struct {
	Topic      string    `json:"topic"`
	Offset     *uint64   `json:"offset"`
	Timestamp  time.Time `json:"timestamp"`
	AppendTime time.Time `json:"append_time"`
	Key        *string   `json:"key"`
	Headers    []struct {
		Key, Value string
	} `json:"headers"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding"`
}

func consumeJSON(t *testing.T, addr string, args ...string) []jsonLine {
	t.Helper()
	out := mustHRQ(t, addr, nil, append([]string{"consume", "--json"}, args...)...)
	var lines []jsonLine
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var j jsonLine
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if j.Offset == nil || j.Value == nil || j.Timestamp.IsZero() || j.AppendTime.IsZero() {
			t.Fatalf("line %q lacks offset, value or a time", l)
		}
		lines = append(lines, j)
	}
	return lines
}

func TestJSONKeysHeadersCompression(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	start := time.Now().Add(-time.Minute)
	mustHRQ(t, b.addr, strings.NewReader("a\nb\n"), "produce", "ev", "--key", "user-42", "-H", "src=shell", "-H", "src=two", "-z", "zstd")
	mustHRQ(t, b.addr, strings.NewReader("k1:v1\nnokey\n"), "produce", "ev", "-K", ":", "--compression", "s2")
	mustHRQ(t, b.addr, bytes.NewReader([]byte{0xff, 0xfe}), "produce", "ev", "--file", "-")
	lines := consumeJSON(t, b.addr, "ev")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5", len(lines))
	}
	for i, l := range lines {
		if *l.Offset != uint64(i) || l.Topic != "ev" || l.Timestamp.Before(start) {
			t.Errorf("line %d: offset %d topic %q timestamp %v", i, *l.Offset, l.Topic, l.Timestamp)
		}
	}
	if l := lines[1]; *l.Value != "b" || l.Key == nil || *l.Key != "user-42" || len(l.Headers) != 2 ||
		l.Headers[0].Key != "src" || l.Headers[0].Value != "shell" || l.Headers[1].Value != "two" {
		t.Errorf("keyed message: %+v", l)
	}
	if l := lines[2]; *l.Value != "v1" || l.Key == nil || *l.Key != "k1" || len(l.Headers) != 0 {
		t.Errorf("-K message: %+v", l)
	}
	if l := lines[3]; *l.Value != "nokey" || l.Key != nil {
		t.Errorf("-K message without the separator: %+v", l)
	}
	if l := lines[4]; *l.Value != "//4=" || l.ValueEncoding != "base64" {
		t.Errorf("binary message: %+v", l)
	}
	got := mustHRQ(t, b.addr, nil, "consume", "ev", "-n", "1", "--format", `{{.Key}} {{.Header "src"}} {{len .Headers}} {{.Value}}`)
	if got != "user-42 shell 2 a\n" {
		t.Errorf("--format: %q", got)
	}
}

func TestProduceSources(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	// Messages as arguments: stdin is a pipe that never ends, so reading
	// it would hang until the test's timeout.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	mustHRQ(t, b.addr, pr, "produce", "args", "hello", "hello world")
	if got := mustHRQ(t, b.addr, nil, "consume", "args", "-D", "|"); got != "hello|hello world|" {
		t.Fatalf("arguments: %q", got)
	}

	mustHRQ(t, b.addr, strings.NewReader("x\x00y z\x00last"), "produce", "nul", "-0")
	if got := mustHRQ(t, b.addr, nil, "consume", "nul", "-0"); got != "x\x00y z\x00last\x00" {
		t.Fatalf("-0: %q", got)
	}
	mustHRQ(t, b.addr, strings.NewReader("a, b,,c"), "produce", "delim", "-D", ", ")
	if got := mustHRQ(t, b.addr, nil, "consume", "delim"); got != "a\nb,,c\n" {
		t.Fatalf("-D: %q", got)
	}
	f := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(f, []byte("line 1\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustHRQ(t, b.addr, nil, "produce", "files", "--file", f, "--file", f)
	if got := mustHRQ(t, b.addr, nil, "consume", "files", "-0"); got != "line 1\nline 2\n\x00line 1\nline 2\n\x00" {
		t.Fatalf("--file: %q", got)
	}
	r := hrq(t, b.addr, nil, "produce", "files", "-v", "one")
	if r.code != 0 || r.stderr != "hrq: stored 1 messages at offsets 2..2 in \"files\"\n" {
		t.Fatalf("-v: %v", r)
	}
}

func TestProduceManyBatches(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	// Larger lines than seq's: many batches, several segments.
	var in strings.Builder
	for i := range 20000 {
		in.WriteString(strconv.Itoa(i) + strings.Repeat("x", 200) + "\n")
	}
	mustHRQ(t, b.addr, strings.NewReader(in.String()), "produce", "big", "--linger", "0", "--in-flight", "8", "--batch-bytes", "65536")
	if out := mustHRQ(t, b.addr, nil, "consume", "big"); out != in.String() {
		t.Fatal("consume printed other lines than were produced")
	}
}

// TestBrokerRestart: --follow rides out a broker restart; a produce whose
// broker went away gives up after --timeout with the connection exit code.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, nil, "produce", "t", "one")
	f := startHRQ(t, b.addr, "consume", "t", "--follow")
	f.expectLine(t, "the first line", func(s string) bool { return s == "one" })

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p := startHRQWithStdin(t, b.addr, pr, "produce", "t", "--timeout", "1s")
	pw.WriteString("two\n")
	f.expectLine(t, "a line from the piped produce", func(s string) bool { return s == "two" })

	b.stop(t)
	pw.WriteString("lost\n")
	pw.Close()
	if code := p.wait(t); code != exitConn || !strings.Contains(p.stderr.String(), "no acknowledgement for 1s") {
		t.Fatalf("produce without a broker: exit %d, stderr %q", code, p.stderr)
	}

	b = b.restart(t)
	mustHRQ(t, b.addr, nil, "produce", "t", "three")
	f.expectLine(t, "a line produced after the restart", func(s string) bool { return s == "three" })
	if !strings.Contains(f.stderr.String(), "retrying") {
		t.Errorf("--follow did not report the lost connection: %q", f.stderr)
	}
}
