package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConsumeGroup: hrq consume --group reads as a member of a consumer
// group and acks what it wrote: a second run of the same group gets only
// what was not written before (-n stops early, the rest stays for the
// next run), and groups list/describe/seek/delete show and manage the
// group's progress.
func TestConsumeGroup(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	mustHRQ(t, b.addr, strings.NewReader(numbers(100)), "produce", "t")

	first := mustHRQ(t, b.addr, nil, "consume", "t", "--group", "g", "-n", "30")
	if first != numbers(30) {
		t.Fatalf("first 30 through the group: %q", first)
	}
	rest := mustHRQ(t, b.addr, nil, "consume", "t", "--group", "g")
	if first+rest != numbers(100) {
		t.Fatalf("the second run printed %d lines, not the 70 the first left: %q", strings.Count(rest, "\n"), rest)
	}
	if again := mustHRQ(t, b.addr, nil, "consume", "t", "-g", "g"); again != "" {
		t.Fatalf("a third run printed acked messages again: %q", again)
	}

	list := mustHRQ(t, b.addr, nil, "groups", "list")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "t g 100 0 0" {
		t.Fatalf("groups list: %q", list)
	}
	var d struct {
		Committed uint64 `json:"committed"`
		Lag       uint64 `json:"lag"`
		InFlight  uint64 `json:"in_flight"`
		Members   []any  `json:"members"`
	}
	if err := json.Unmarshal([]byte(mustHRQ(t, b.addr, nil, "groups", "describe", "t", "g", "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Committed != 100 || d.Lag != 0 || d.InFlight != 0 || len(d.Members) != 0 {
		t.Fatalf("describe after reading everything: %+v", d)
	}
	text := mustHRQ(t, b.addr, nil, "groups", "describe", "t", "g")
	for _, want := range []string{"committed:", "lag:", "in flight:", "redeliveries:", "dead-lettered:", "members:"} {
		if !strings.Contains(text, want) {
			t.Fatalf("describe does not say %q:\n%s", want, text)
		}
	}

	if out := mustHRQ(t, b.addr, nil, "groups", "seek", "t", "g", "--to", "90"); !strings.Contains(out, "offset 90") {
		t.Fatalf("seek: %q", out)
	}
	if out := mustHRQ(t, b.addr, nil, "consume", "t", "--group", "g"); out != strings.Join(strings.Split(numbers(100), "\n")[90:], "\n") {
		t.Fatalf("after seeking to 90: %q", out)
	}
	if r := hrq(t, b.addr, nil, "consume", "t", "u", "--group", "g"); r.code != exitUsage {
		t.Fatalf("--group with two topics: %v", r)
	}
	mustHRQ(t, b.addr, nil, "groups", "delete", "t", "g")
	r := hrq(t, b.addr, nil, "groups", "describe", "t", "g")
	if r.code != exitNotFound {
		t.Fatalf("describe of a deleted group: %v", r)
	}
	oneLineError(t, r, `group "g"`, "not found")
}
