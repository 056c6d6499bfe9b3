package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
)

// consume of several topics writes each one's messages; --match picks the
// topics by a regular expression; with --follow it writes the messages of
// a matching topic created after it started, tagged with their topic.
func TestConsumeManyTopics(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, strings.NewReader("a1\na2\n"), "produce", "logs.a")
	mustHRQ(t, b.addr, strings.NewReader("b1\n"), "produce", "logs.b")
	mustHRQ(t, b.addr, strings.NewReader("m1\n"), "produce", "metrics")
	if got := mustHRQ(t, b.addr, nil, "consume", "logs.b", "metrics"); got != "b1\nm1\n" {
		t.Fatalf("consume logs.b metrics: %q", got)
	}
	if got := mustHRQ(t, b.addr, nil, "consume", "--match", `^logs\.`); got != "a1\na2\nb1\n" {
		t.Fatalf("consume --match: %q", got)
	}
	if got := mustHRQ(t, b.addr, nil, "consume", "--match", `^logs\.`, "-n", "2"); got != "a1\na2\n" {
		t.Fatalf("consume --match -n 2: %q", got)
	}
	if r := hrq(t, b.addr, nil, "consume", "metrics", "--match", "x"); r.code == 0 {
		t.Fatalf("topics and --match: %v", r)
	}
	f := startHRQ(t, b.addr, "consume", "--match", `^logs\.`, "--follow", "--json")
	seen := map[string]bool{}
	for range 3 {
		f.expectLine(t, "a message of logs.*", func(s string) bool {
			var j jsonLine
			if json.Unmarshal([]byte(s), &j) != nil || !strings.HasPrefix(j.Topic, "logs.") {
				return false
			}
			seen[j.Topic] = true
			return true
		})
	}
	mustHRQ(t, b.addr, strings.NewReader("c1\n"), "produce", "logs.c")
	f.expectLine(t, "the message of the topic created later", func(s string) bool {
		var j jsonLine
		return json.Unmarshal([]byte(s), &j) == nil && j.Topic == "logs.c" && strings.Contains(s, `"c1"`)
	})
	if err := f.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t); code != 0 || f.stderr.Len() != 0 || !seen["logs.a"] || !seen["logs.b"] {
		t.Fatalf("exit %d, stderr %q, topics %v", code, f.stderr, seen)
	}
}
