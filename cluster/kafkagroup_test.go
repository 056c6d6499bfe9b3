//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtool"
)

// confluentPython returns a python3 that imports confluent_kafka
// (Debian's python3-confluent-kafka installs it for the system python3).
func confluentPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import confluent_kafka").Run() == nil {
			return path
		}
	}
	testtool.Missing(t, "no python3 with confluent_kafka (.ci/install-deps installs Debian's python3-confluent-kafka)")
	return ""
}

// groupConsume is a librdkafka group consumer: it reads COUNT messages,
// prints the first offset, commits synchronously after the last and
// prints the committed offset.
const groupConsume = `
import sys, time
from confluent_kafka import Consumer
bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe([topic])
got, last = 0, None
deadline = time.time() + 60
while got < count and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    if last is None:
        print("first", m.offset(), flush=True)
    got, last = got + 1, m
if last is None:
    sys.exit("nothing consumed")
c.commit(message=last, asynchronous=False)
print("committed", last.offset() + 1, flush=True)
c.close()
`

// A Kafka consumer group works whichever node of a cluster its client
// bootstraps from: a librdkafka consumer talking to a follower commits
// (the commit runs on the topic's leader and replicates), and a consumer
// of the same group on the other follower resumes from that commit.
// Before, a follower refused the commit with a retriable error and the
// client retried against it until it gave up.
func TestClusterKafkaGroupOnFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	py := confluentPython(t)
	fc := startFrontCluster(t, 3)
	fc.createTopic("kt")
	lead := fc.waitLeader("kt")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := client.Dial(ctx, fc.seedList())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := cl.Produce(ctx, "kt", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	var followers []uint64
	for _, p := range fc.nodes {
		if p != lead {
			followers = append(followers, p.id)
		}
	}
	run := func(node uint64, wantFirst, wantCommitted int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, py, "-c", groupConsume, fc.kafka[node], "kt", "kg", "10")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("consumer on node %d (the leader is node %d): %v\n%s", node, lead.id, err, out)
		}
		want := fmt.Sprintf("first %d\ncommitted %d\n", wantFirst, wantCommitted)
		if !strings.Contains(string(out), want) {
			t.Fatalf("consumer on node %d printed\n%s\nwant\n%s", node, out, want)
		}
	}
	run(followers[0], 0, 10)
	fc.waitCommitted("kt", "kg", 10)
	run(followers[1], 10, 20)
	fc.waitCommitted("kt", "kg", 20)
}
