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
	"github.com/twmb/franz-go/pkg/kmsg"
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

// groupHold is a librdkafka group consumer that stays in its group until
// its stdin closes (at most 90 s).
const groupHold = `
import sys, time, threading
from confluent_kafka import Consumer
bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
c.subscribe([topic])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
deadline = time.time() + 90
while not stop.is_set() and time.time() < deadline:
    c.poll(0.2)
c.close()
`

// holdConsumers starts a groupHold consumer of group on topic at each
// node given.
func (fc *frontCluster) holdConsumers(ctx context.Context, py, topic, group string, nodes ...uint64) {
	fc.holdConsumersWith(ctx, py, groupHold, topic, group, nil, nodes...)
}

// holdConsumersWith is holdConsumers with another consumer script, given
// the Kafka address, topic, group and args.
func (fc *frontCluster) holdConsumersWith(ctx context.Context, py, script, topic, group string, args []string, nodes ...uint64) {
	t := fc.t
	for _, node := range nodes {
		cmd := exec.CommandContext(ctx, py, append([]string{"-c", script, fc.kafka[node], topic, group}, args...)...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close()
			cmd.Wait()
			if t.Failed() {
				t.Logf("consumer on node %d:\n%s", node, out.String())
			}
		})
	}
}

// waitMembers waits until node describes group as Stable with want
// members, through its Kafka listener.
func (fc *frontCluster) waitMembers(node uint64, group string, want int) {
	t := fc.t
	t.Helper()
	var got string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.SetVersion(1)
		req.Groups = []string{group}
		resp := kafkaDo(t, fc.kafka[node], req).(*kmsg.DescribeGroupsResponse)
		g := resp.Groups[0]
		got = fmt.Sprintf("state %s, %d members, error %d", g.State, len(g.Members), g.ErrorCode)
		if g.State == "Stable" && len(g.Members) == want {
			return
		}
	}
	t.Fatalf("node %d describes group %s as %s; want Stable with %d members", node, group, got, want)
}

// The members of one Kafka group meet in one group whichever nodes of a
// cluster they bootstrapped from: two librdkafka consumers of a group,
// one on node 2 and one on node 3, are the two members of the group that
// node 1 describes. Before, each node's listener kept a group of its own
// (one member each, node 1 none), and both members were handed the
// topic's partition.
func TestClusterKafkaGroupMembersMeet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	py := confluentPython(t)
	fc := startFrontCluster(t, 3)
	fc.createTopic("km")
	fc.waitLeader("km")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fc.holdConsumers(ctx, py, "km", "kgm", 2, 3)
	fc.waitMembers(1, "kgm", 2)
}

// When the node that coordinates the Kafka groups (the metadata group's
// leader) dies, the members of a group on the other nodes meet again at
// the next one.
func TestClusterKafkaGroupCoordinatorDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	py := confluentPython(t)
	fc := startFrontCluster(t, 3)
	fc.createTopic("kc")
	fc.waitLeader("kc")
	var meta uint64
	waitFor(t, "a metadata leader", func() (bool, string) {
		s, err := status(fc.nodes[0])
		if err != nil {
			return false, err.Error()
		}
		meta = s.Meta.Leader
		return meta != 0, "none"
	})
	var others []uint64
	for _, p := range fc.nodes {
		if p.id != meta {
			others = append(others, p.id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fc.holdConsumers(ctx, py, "kc", "kgc", others...)
	fc.waitMembers(others[0], "kgc", 2)
	fc.kill(fc.byID(meta))
	fc.waitMembers(others[1], "kgc", 2)
}
