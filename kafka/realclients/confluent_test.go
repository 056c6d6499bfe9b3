package realclients

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/internal/testtool"
)

// python returns a python3 that imports confluent_kafka (Debian's
// python3-confluent-kafka installs it for the system python3).
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import confluent_kafka").Run() == nil {
			return path
		}
	}
	testtool.Missing(t, "no python3 with confluent_kafka (.ci/install-deps installs Debian's python3-confluent-kafka)")
	return ""
}

// Promise: librdkafka's idempotent producer (acks=all, lz4) loses nothing
// it had acknowledged and stores nothing twice when the broker restarts
// in the middle of its run; a librdkafka group consumer's commit survives a
// broker restart and the group resumes from it.
func TestConfluentRestart(t *testing.T) {
	py := python(t)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const n = 4000
	cmd := exec.CommandContext(ctx, py, "testdata/confluent.py", "produce", b.kafkaAddr, "py", "0", strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]bool{}
	restarted := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch f[0] {
		case "half":
			b.restart()
			restarted = true
		case "acked":
			i, _ := strconv.Atoi(f[1])
			acked[i] = true
		case "failed":
			t.Logf("not acknowledged: %s", sc.Text())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("producer: %v\n%s", err, stderr.String())
	}
	if !restarted || len(acked) < n/2 {
		t.Fatalf("restarted %v, %d acknowledged", restarted, len(acked))
	}
	msgs := readAll(t, b.native(t), "py")
	seen := map[int]bool{}
	last := -1
	for _, m := range msgs {
		i, err := strconv.Atoi(strings.TrimPrefix(string(m.Value), "m"))
		if err != nil || seen[i] || i <= last {
			t.Fatalf("message %q at offset %d: duplicate or out of order", m.Value, m.Offset)
		}
		seen[i], last = true, i
	}
	for i := range acked {
		if !seen[i] {
			t.Fatalf("acknowledged m%d lost", i)
		}
	}
	t.Logf("%d acknowledged, %d stored across a restart", len(acked), len(msgs))

	consume := func(count int) []string {
		out, err := exec.CommandContext(ctx, py, "testdata/confluent.py", "consume", b.kafkaAddr, "py", "pyg", strconv.Itoa(count)).CombinedOutput()
		if err != nil {
			t.Fatalf("consumer: %v\n%s", err, out)
		}
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "msg ") {
				got = append(got, l)
			}
		}
		return got
	}
	first := consume(1000)
	if first[0] != "msg 0 "+string(msgs[0].Value) || len(first) != 1000 {
		t.Fatalf("first consumer: %v ...", first[:3])
	}
	b.restart()
	second := consume(500)
	if want := fmt.Sprintf("msg 1000 %s", msgs[1000].Value); second[0] != want {
		t.Fatalf("after a restart the group resumed at %q, want %q", second[0], want)
	}
}
