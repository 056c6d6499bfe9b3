//go:build unix

package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaLeaders creates three topics (led by the three nodes in turn) and
// waits until each is led by its preferred replica.
func (fc *frontCluster) kafkaLeaders(topics ...string) map[string]uint64 {
	fc.t.Helper()
	for _, tp := range topics {
		fc.createTopic(tp)
	}
	leaders := fc.waitLeaders(topics...)
	distinct := map[uint64]bool{}
	for _, l := range leaders {
		distinct[l] = true
	}
	if len(distinct) != len(topics) {
		fc.t.Fatalf("topics not led by different nodes: %v", leaders)
	}
	return leaders
}

// kafkaMetadataOK asks node id's Kafka listener for the topics' metadata
// and returns "" when it names every node as a broker at its Kafka
// address and each topic's leader and replicas, else what differs.
func (fc *frontCluster) kafkaMetadataOK(id uint64, leaders map[string]uint64) string {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	for tp := range leaders {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(tp)
		req.Topics = append(req.Topics, rt)
	}
	resp := kafkaDo(fc.t, fc.kafka[id], req).(*kmsg.MetadataResponse)
	brokers := map[int32]string{}
	for _, b := range resp.Brokers {
		brokers[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	for _, p := range fc.nodes {
		if alive(p) && brokers[int32(p.id)] != fc.kafka[p.id] {
			return fmt.Sprintf("node %d names brokers %v, want node %d at %s", id, brokers, p.id, fc.kafka[p.id])
		}
	}
	for _, rt := range resp.Topics {
		tp := *rt.Topic
		if rt.ErrorCode != 0 || len(rt.Partitions) != 1 {
			return fmt.Sprintf("node %d: topic %s error %d, %d partitions", id, tp, rt.ErrorCode, len(rt.Partitions))
		}
		p := rt.Partitions[0]
		if p.Leader != int32(leaders[tp]) || !slices.Equal(p.Replicas, []int32{1, 2, 3}) {
			return fmt.Sprintf("node %d: topic %s leader %d replicas %v, want leader %d replicas [1 2 3]", id, tp, p.Leader, p.Replicas, leaders[tp])
		}
	}
	return ""
}

// A Kafka client learns the whole cluster from any node it asks: every
// node's Metadata answer names the three nodes as brokers at their Kafka
// addresses and each topic's partition with its Raft leader, for topics
// led by different nodes. Before, each node named only itself, as node
// 0, leading every partition.
func TestClusterKafkaMetadataNamesLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	fc := startFrontCluster(t, 3)
	leaders := fc.kafkaLeaders("ma", "mb", "mc")
	for _, p := range fc.nodes {
		// The nodes announce their Kafka addresses through the metadata
		// group, a moment after they start.
		deadline := time.Now().Add(20 * time.Second)
		for {
			diff := fc.kafkaMetadataOK(p.id, leaders)
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(diff)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// kafkaProduce is a librdkafka producer (idempotent, acks=all): it sends
// COUNT messages to each topic named, "p1-TOPIC-i", flushes and prints
// "sent1 N" (N delivered); after a line on stdin it sends as many again,
// "p2-TOPIC-i", and prints "sent2 N" and the delivery errors.
const kafkaProduce = `
import sys
from confluent_kafka import Producer
bootstrap, count, topics = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
              "message.timeout.ms": 40000, "topic.metadata.refresh.interval.ms": 1000})
ok, errs = [0], []
def done(err, msg):
    if err is None:
        ok[0] += 1
    else:
        errs.append(str(err))
def send(phase):
    for i in range(count):
        for t in topics:
            p.produce(t, ("%s-%s-%d" % (phase, t, i)).encode(), on_delivery=done)
            p.poll(0)
    left = p.flush(45)
    print(phase, "sent", ok[0], "left", left, "errors", errs[:3], flush=True)
send("p1")
sys.stdin.readline()
send("p2")
`

// A librdkafka producer bootstrapped from one node sends each topic's
// messages to the topic's leader (the node it bootstrapped from forwards
// none of them), every message is stored once; and after that node dies
// it keeps producing through the other brokers it learned. Before, the
// client knew only the node it bootstrapped from: every produce went
// through it, and with it dead nothing could be sent.
func TestClusterKafkaProducerFollowsLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	py := confluentPython(t)
	fc := startFrontCluster(t, 3)
	leaders := fc.kafkaLeaders("pa", "pb", "pc")
	seed := fc.byID(leaders["pc"]) // leads neither pa nor pb
	// Wait until the seed knows every Kafka address (announced through the
	// metadata group); what the producer does is judged below.
	for deadline := time.Now().Add(20 * time.Second); ; {
		diff := fc.kafkaMetadataOK(seed.id, leaders)
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Log(diff)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const count = 100
	cmd := exec.CommandContext(ctx, py, "-c", kafkaProduce, fc.kafka[seed.id], fmt.Sprint(count), "pa", "pb")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewReader(stdout)
	line := func(want string) {
		t.Helper()
		l, err := out.ReadString('\n')
		if err != nil || strings.TrimSpace(l) != want {
			t.Fatalf("producer printed %q (%v), want %q; stderr:\n%s", l, err, want, stderr.String())
		}
	}
	line(fmt.Sprintf("p1 sent %d left 0 errors []", 2*count))
	for _, tp := range []string{"pa", "pb"} {
		g, err := topicStatus(seed, tp)
		if err != nil {
			t.Fatal(err)
		}
		if g.ProducesForwarded != 0 {
			t.Fatalf("node %d (bootstrap, not the leader of %s) forwarded %d produce batches: the client did not send to the leader, node %d", seed.id, tp, g.ProducesForwarded, leaders[tp])
		}
	}
	fc.kill(seed)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	line(fmt.Sprintf("p2 sent %d left 0 errors []", 4*count))
	var live []*proc
	for _, p := range fc.nodes {
		if p != seed {
			live = append(live, p)
		}
	}
	for _, tp := range []string{"pa", "pb"} {
		logs := fc.convergeOn(tp, 2*count, live)
		for i, raw := range logs {
			seen := map[string]int{}
			for _, m := range messages(t, raw) {
				seen[m]++
			}
			for _, phase := range []string{"p1", "p2"} {
				for j := range count {
					if m := fmt.Sprintf("%s-%s-%d", phase, tp, j); seen[m] != 1 {
						t.Fatalf("node %d: %q stored %d times, want once", live[i].id, m, seen[m])
					}
				}
			}
			if len(seen) != 2*count {
				t.Fatalf("node %d: %d distinct messages in %s, want %d", live[i].id, len(seen), tp, 2*count)
			}
		}
	}
}
