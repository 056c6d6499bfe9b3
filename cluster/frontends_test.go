//go:build unix

package cluster_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frontCluster is a procCluster whose nodes also serve the HTTP API and
// the Kafka listener.
type frontCluster struct {
	*procCluster
	http, kafka map[uint64]string
}

func startFrontCluster(t *testing.T, size int, extra ...string) *frontCluster {
	t.Helper()
	return startFrontClusterWith(t, size, extra, nil)
}

// startFrontClusterWith is startFrontCluster with nodeArgs, when set,
// adding arguments of each node's own (before it starts).
func startFrontClusterWith(t *testing.T, size int, extra []string, nodeArgs func(p *proc) []string) *frontCluster {
	t.Helper()
	c := &procCluster{t: t, bin: brokerBin(t), extra: extra}
	fc := &frontCluster{procCluster: c, http: map[uint64]string{}, kafka: map[uint64]string{}}
	var ps []string
	for i := 1; i <= size; i++ {
		p := &proc{id: uint64(i), dir: t.TempDir(), addr: freePort(t), caddr: freePort(t)}
		fc.http[p.id], fc.kafka[p.id] = freePort(t), freePort(t)
		p.extra = []string{"-http", fc.http[p.id], "-kafka-addr", fc.kafka[p.id]}
		if nodeArgs != nil {
			p.extra = append(p.extra, nodeArgs(p)...)
		}
		c.nodes = append(c.nodes, p)
		ps = append(ps, fmt.Sprintf("%d=%s", i, p.caddr))
	}
	c.peers = strings.Join(ps, ",")
	for _, p := range c.nodes {
		c.start(p)
	}
	t.Cleanup(func() {
		for _, p := range c.nodes {
			c.kill(p)
		}
		if t.Failed() {
			for _, p := range c.nodes {
				p.mu.Lock()
				t.Logf("node %d log tail:\n%s", p.id, tailLines(p.logs.String(), 30))
				p.mu.Unlock()
			}
		}
	})
	return fc
}

// httpProduce posts one NDJSON message to topic on node id's HTTP API.
func (fc *frontCluster) httpProduce(id uint64, topic string) (int, http.Header, map[string]any) {
	fc.t.Helper()
	cl := &http.Client{Timeout: 60 * time.Second}
	resp, err := cl.Post("http://"+fc.http[id]+"/topics/"+topic+"/messages", "application/x-ndjson", strings.NewReader(`{"value":"x"}`+"\n"))
	if err != nil {
		fc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	return resp.StatusCode, resp.Header, body
}

// kafkaDo sends one Kafka request to addr on a connection of its own and
// decodes the answer.
func kafkaDo(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test"))
	if _, err := c.Write(f.AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, b); err != nil {
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

// kafkaBatch is a record batch v2 holding one record.
func kafkaBatch(value string) []byte {
	rec := kmsg.Record{Value: []byte(value)}
	body := rec.AppendTo(nil)[1:]
	raw := binary.AppendVarint(nil, int64(len(body)))
	raw = append(raw, body...)
	b := kmsg.RecordBatch{Magic: 2, FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: raw}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// kafkaProduce produces one record to topic on node id's Kafka listener
// and returns the partition's error code.
func (fc *frontCluster) kafkaProduce(id uint64, topic string) int16 {
	fc.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(7)
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = kafkaBatch("k")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kafkaDo(fc.t, fc.kafka[id], req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// A produce a cluster node cannot take is answered with a retriable error
// on the HTTP API and the Kafka listener, so that clients retry rather
// than give up: a node that is not a replica of the topic (HTTP 503 with
// Retry-After; Kafka NOT_LEADER_OR_FOLLOWER), and a produce not committed
// in time because no majority of the topic's replicas is up (HTTP 503
// with Retry-After, saying it may still be stored; Kafka
// REQUEST_TIMED_OUT). Before, both were HTTP 500 and Kafka
// UNKNOWN_SERVER_ERROR, which clients do not retry.
func TestClusterProduceErrorsRetriable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	fc := startFrontCluster(t, 3, "-replication", "2")
	// With 2 replicas of 3 nodes, topics are placed round-robin: find one
	// node 1 does not replicate and one it does.
	var away, here string
	for i := 0; away == "" || here == ""; i++ {
		if i == 6 {
			t.Fatal("no topic placed away from node 1 and none on it")
		}
		name := fmt.Sprintf("t%d", i)
		fc.createTopic(name)
		waitFor(t, "the topic in node 1's catalog", func() (bool, string) {
			_, err := topicStatus(fc.nodes[0], name)
			return err == nil, fmt.Sprint(err)
		})
		st, _ := topicStatus(fc.nodes[0], name)
		on := false
		for _, r := range st.Replicas {
			on = on || r == 1
		}
		if on && here == "" {
			here = name
		} else if !on && away == "" {
			away = name
		}
	}
	code, hdr, body := fc.httpProduce(1, away)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || body["retriable"] != true {
		t.Errorf("HTTP produce on a node that is not a replica: %d, Retry-After %q, %v; want 503, retriable, with Retry-After", code, hdr.Get("Retry-After"), body)
	}
	if code := fc.kafkaProduce(1, away); code != 6 {
		t.Errorf("Kafka produce on a node that is not a replica: error %d, want NOT_LEADER_OR_FOLLOWER (6)", code)
	}
	// The topic's other replica goes down: node 1 alone cannot commit.
	st, _ := topicStatus(fc.nodes[0], here)
	for _, r := range st.Replicas {
		if r != 1 {
			fc.kill(fc.byID(r))
		}
	}
	type httpAns struct {
		code int
		hdr  http.Header
		body map[string]any
	}
	hc := make(chan httpAns, 1)
	go func() {
		var a httpAns
		a.code, a.hdr, a.body = fc.httpProduce(1, here)
		hc <- a
	}()
	kcode := fc.kafkaProduce(1, here)
	a := <-hc
	if a.code != http.StatusServiceUnavailable || a.hdr.Get("Retry-After") == "" || a.body["retriable"] != true ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "may still be stored") {
		t.Errorf("HTTP produce without a majority: %d, Retry-After %q, %v; want 503, retriable, with Retry-After, saying it may still be stored", a.code, a.hdr.Get("Retry-After"), a.body)
	}
	if kcode != 7 {
		t.Errorf("Kafka produce without a majority: error %d, want REQUEST_TIMED_OUT (7)", kcode)
	}
}
