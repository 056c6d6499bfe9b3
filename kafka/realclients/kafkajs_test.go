package realclients

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/haraqa/haraqa/internal/testtool"
)

// Promise: kafkajs produces (acks=-1, keys, headers) and consumes in a
// consumer group that commits: it reads every message back in order, the
// native client sees the same keys and headers, and the commit lands in the
// haraqa group.
func TestKafkajs(t *testing.T) {
	node := testtool.Need(t, "node", "nodejs")
	if _, err := os.Stat("kafkajs/node_modules/kafkajs"); err != nil {
		testtool.Missing(t, "kafkajs is not installed (.ci/install-deps runs npm ci in kafka/realclients/kafkajs)")
	}
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const n = 1000
	cmd := exec.CommandContext(ctx, node, "run.js", b.kafkaAddr, "js", "jsgroup", fmt.Sprint(n))
	cmd.Dir = "kafkajs"
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	var res struct{ Got []string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Got) != n {
		t.Fatalf("kafkajs consumed %d, want %d", len(res.Got), n)
	}
	for i, g := range res.Got {
		if want := fmt.Sprintf("%d|key-%d|value-%d|%d", i, i, i, i); g != want {
			t.Fatalf("kafkajs message %d: %q, want %q", i, g, want)
		}
	}
	for i, m := range readAll(t, b.native(t), "js") {
		if string(m.Key) != fmt.Sprint("key-", i) || string(m.Value) != fmt.Sprint("value-", i) ||
			len(m.Headers) != 1 || m.Headers[0].Key != "n" || string(m.Headers[0].Value) != fmt.Sprint(i) {
			t.Fatalf("native read %d: %+v", i, m)
		}
	}
	if info, err := b.e.DescribeGroup("js", "jsgroup"); err != nil || info.Committed != n {
		t.Fatalf("haraqa group: %+v %v, want committed %d", info, err, n)
	}
}
