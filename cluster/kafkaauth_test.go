//go:build unix

package cluster_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/client"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The clients of the auth file the Kafka auth tests load: "app" may
// consume topic ka; "other" may consume what otherConsume says (a TOML
// array), or is not listed when otherConsume is empty. The -token
// (kafkaRoot) may do everything.
const (
	kafkaRoot     = "root-token"
	kafkaAppToken = "app-token"
	kafkaOther    = "other-token"
)

func writeKafkaAuth(t *testing.T, path, otherConsume string) {
	t.Helper()
	conf := "[[client]]\nname = \"app\"\ntoken-sha256 = \"" + auth.HashToken(kafkaAppToken) + "\"\nconsume = [\"ka\"]\n"
	if otherConsume != "" {
		conf += "[[client]]\nname = \"other\"\ntoken-sha256 = \"" + auth.HashToken(kafkaOther) + "\"\nconsume = " + otherConsume + "\n"
	}
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startAuthFrontCluster starts a frontCluster whose nodes run with
// -auth-file (a file of their own each, all alike at the start: "other"
// may consume ka) and -token; it returns the files by node id.
func startAuthFrontCluster(t *testing.T, size int) (*frontCluster, map[uint64]string) {
	t.Helper()
	files := map[uint64]string{}
	fc := startFrontClusterWith(t, size, []string{"-token", kafkaRoot}, func(p *proc) []string {
		files[p.id] = filepath.Join(p.dir, "auth.toml")
		writeKafkaAuth(t, files[p.id], `["ka"]`)
		return []string{"-auth-file", files[p.id]}
	})
	return fc, files
}

// createTopicAs creates topic with the -token.
func (fc *frontCluster) createTopicAs(topic string) {
	t := fc.t
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var cl *client.Client
		cl, err = client.Dial(ctx, "tcp://"+fc.nodes[0].addr, client.WithToken(kafkaRoot))
		if err == nil {
			err = cl.CreateTopic(ctx, topic)
			cl.Close()
		}
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("create topic %s: %v", topic, err)
}

// metaLeader waits for the metadata group's leader: the node whose Kafka
// listener coordinates the Kafka groups.
func (fc *frontCluster) metaLeader() uint64 {
	var meta uint64
	waitFor(fc.t, "a metadata leader", func() (bool, string) {
		for _, p := range fc.nodes {
			if s, err := status(p); err == nil && s.Meta.Leader != 0 {
				meta = s.Meta.Leader
				return true, ""
			}
		}
		return false, "none"
	})
	return meta
}

// reloadAuth makes node id re-read its auth file (SIGHUP) and waits until
// it logged that it did.
func (fc *frontCluster) reloadAuth(id uint64) {
	t := fc.t
	t.Helper()
	p := fc.byID(id)
	count := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return strings.Count(p.logs.String(), "auth file reloaded")
	}
	before := count()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("node %d to reload its auth file", id), func() (bool, string) {
		return count() > before, "not yet"
	})
}

// kafkaSession is a Kafka connection logged in with SASL/PLAIN.
type kafkaSession struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	corr int32
}

func kafkaLogin(t *testing.T, addr, password string) *kafkaSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &kafkaSession{t: t, c: c, r: bufio.NewReader(c)}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if r := s.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: code %d", r.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(1)
	au.SASLAuthBytes = []byte("\x00u\x00" + password)
	if r := s.do(au).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: code %d", r.ErrorCode)
	}
	return s
}

// do sends req and decodes its answer.
func (s *kafkaSession) do(req kmsg.Request) kmsg.Response {
	t := s.t
	t.Helper()
	s.corr++
	s.c.SetDeadline(time.Now().Add(60 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test"))
	if _, err := s.c.Write(f.AppendRequest(nil, req, s.corr)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(s.r, size[:]); err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(s.r, b); err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	b = b[4:] // correlation id
	if resp.IsFlexible() {
		b = b[1:] // empty tagged fields
	}
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	return resp
}

// join asks to join group as a consumer of topic (a first join: no
// member id yet) and returns the error code.
func (s *kafkaSession) join(group, topic string) int16 {
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(5)
	req.Group, req.ProtocolType = group, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 10_000
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{topic}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", md.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return s.do(req).(*kmsg.JoinGroupResponse).ErrorCode
}

// commit commits offset 0 of topic's partition for group (a "simple"
// commit, no generation) and returns the partition's error code.
func (s *kafkaSession) commit(group, topic string) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(2)
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return s.do(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// groupHoldSASL is groupHold logging in with SASL/PLAIN (the password is
// the token).
const groupHoldSASL = `
import sys, time, threading
from confluent_kafka import Consumer
bootstrap, topic, group, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
              "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
              "sasl.username": "app", "sasl.password": password})
c.subscribe([topic])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
deadline = time.time() + 90
while not stop.is_set() and time.time() < deadline:
    c.poll(0.2)
c.close()
`

// With -auth-file, the members of one Kafka group still meet in one
// group whichever nodes of a cluster they bootstrapped from, and the
// node coordinating the groups applies the permissions of the client a
// forwarded request came from. Two librdkafka consumers of a group
// logged in with SASL/PLAIN on nodes 2 and 3 are the two members the
// coordinator describes; before, each node kept a group of its own (one
// member each) and both were handed the topic's partition. A client the
// coordinator's auth file does not let consume the topic is refused
// (JoinGroup and OffsetCommit forwarded from a node whose file would let
// it, which tells the coordinator's check from the forwarding node's:
// before, that node served them itself and let them through), and so is
// one its file no longer lists after a reload, while a permitted client
// on the same node commits.
func TestClusterKafkaGroupAuthForwarded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	py := confluentPython(t)
	fc, files := startAuthFrontCluster(t, 3)
	fc.createTopicAs("ka")
	fc.waitLeader("ka")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The members meet.
	fc.holdConsumersWith(ctx, py, groupHoldSASL, "ka", "kga", []string{kafkaAppToken}, 2, 3)
	var got string
	met := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !met; time.Sleep(200 * time.Millisecond) {
		coord := fc.metaLeader()
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.SetVersion(1)
		req.Groups = []string{"kga"}
		s := kafkaLogin(t, fc.kafka[coord], kafkaAppToken)
		g := s.do(req).(*kmsg.DescribeGroupsResponse).Groups[0]
		s.c.Close()
		got = fmt.Sprintf("node %d: state %s, %d members, error %d", coord, g.State, len(g.Members), g.ErrorCode)
		met = g.State == "Stable" && len(g.Members) == 2
	}
	if !met {
		t.Fatalf("the coordinator describes group kga as %s; want Stable with the 2 members on nodes 2 and 3", got)
	}

	// The coordinator applies the forwarded client's permissions, from
	// its own file. A change of coordinator meanwhile repeats the round.
	for attempt := 1; ; attempt++ {
		coord := fc.metaLeader()
		fwd := coord%3 + 1
		writeKafkaAuth(t, files[coord], `["elsewhere"]`)
		fc.reloadAuth(coord)
		other := kafkaLogin(t, fc.kafka[fwd], kafkaOther)
		join, commit := other.join("kgo", "ka"), other.commit("kgo", "ka")
		appCommit := kafkaLogin(t, fc.kafka[fwd], kafkaAppToken).commit("kgp", "ka")
		// A reload that removes "other" from the coordinator's file.
		writeKafkaAuth(t, files[coord], "")
		fc.reloadAuth(coord)
		goneJoin, goneCommit := other.join("kgo", "ka"), other.commit("kgo", "ka")
		// COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: retriable, as for a
		// Kafka client.
		retriable := func(c int16) bool { return c == 15 || c == 16 }
		if now := fc.metaLeader(); now != coord || retriable(join) || retriable(commit) || retriable(appCommit) || retriable(goneJoin) || retriable(goneCommit) {
			writeKafkaAuth(t, files[coord], `["ka"]`)
			fc.reloadAuth(coord)
			if attempt < 3 {
				t.Logf("coordinator node %d (now %d) answered codes %d %d %d %d %d during the round; again", coord, now, join, commit, appCommit, goneJoin, goneCommit)
				continue
			}
			t.Fatalf("the coordinator kept moving or was not reachable: node %d, now %d, codes %d %d %d %d %d", coord, now, join, commit, appCommit, goneJoin, goneCommit)
		}
		const groupAuthFailed, topicAuthFailed = 30, 29
		if join != groupAuthFailed || commit != topicAuthFailed {
			t.Errorf("a client node %d's file lets consume ka and coordinator node %d's does not: forwarded JoinGroup code %d (want %d), OffsetCommit code %d (want %d)",
				fwd, coord, join, groupAuthFailed, commit, topicAuthFailed)
		}
		if goneJoin != groupAuthFailed || goneCommit != topicAuthFailed {
			t.Errorf("a client the coordinator's file no longer lists: forwarded JoinGroup code %d (want %d), OffsetCommit code %d (want %d)",
				goneJoin, groupAuthFailed, goneCommit, topicAuthFailed)
		}
		if appCommit != 0 {
			t.Errorf("a client that may consume ka: forwarded OffsetCommit code %d, want 0", appCommit)
		}
		break
	}
}
