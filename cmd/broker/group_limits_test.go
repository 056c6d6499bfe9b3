package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// The group limit flags reach the engine: with -max-groups 1 a second
// group on a topic is refused (the HTTP API answers 429 GroupLimit) and
// -max-group-in-flight caps what one member's fetch leases.
func TestGroupLimitFlags(t *testing.T) {
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-max-groups", "1", "-max-group-in-flight", "3", t.TempDir())
	base := p.httpAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp://"+p.addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Produce(ctx, "jobs", []byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, "PUT", base+"/topics/jobs/groups/one", `{}`); code/100 != 2 {
		t.Fatalf("first group: %d %s", code, body)
	}
	if code, body := do(t, "PUT", base+"/topics/jobs/groups/two", `{}`); code/100 == 2 {
		t.Fatalf("second group with -max-groups 1: %d %s", code, body)
	}
	code, body := do(t, "POST", base+"/topics/jobs/groups/one/members", `{}`)
	var join struct{ Member string }
	if err := json.Unmarshal([]byte(body), &join); code != 200 || err != nil {
		t.Fatalf("join: %d %s %v", code, body, err)
	}
	code, body = do(t, "POST", base+"/topics/jobs/groups/one/fetch?member="+join.Member+"&max=5", "")
	if n := strings.Count(body, `"offset":`); code != 200 || n != 3 {
		t.Fatalf("fetch of 5 with -max-group-in-flight 3: %d, %d messages: %s", code, n, body)
	}
}
