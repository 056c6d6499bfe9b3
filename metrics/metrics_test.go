package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/internal/testbroker"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

// scrape fetches m's exposition and returns every sample by its name and
// labels as written ("name{a=\"b\"}").
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	ts := httptest.NewServer(m.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// start runs a broker whose engine and server feed m, with m attached.
func start(t *testing.T, m *Metrics, eopts engine.Options) (*testbroker.Broker, *client.Client) {
	t.Helper()
	eopts.Observer = m
	b := testbroker.Start(t, "tcp", eopts, server.Options{AutoCreateTopics: true, Observer: m})
	m.Attach(Sources{Engine: b.Engine, Conns: b.Server.Conns})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return b, c
}

func produce(t *testing.T, c *client.Client, topic string, produces, perBatch int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < produces; i++ {
		msgs := make([][]byte, perBatch)
		for j := range msgs {
			msgs[j] = fmt.Appendf(nil, "%s-%d-%d", topic, i, j)
		}
		if _, err := c.Produce(ctx, topic, msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScrapeAfterWorkload checks that an operator reading /metrics after
// a known workload sees exactly what happened: the produced and consumed
// message counts of each topic, bytes consumed equal to bytes produced
// when everything was read once, one request observation per produce,
// every batch in exactly one group commit, and fsyncs observed.
func TestScrapeAfterWorkload(t *testing.T) {
	m := New(Options{Version: "v-test"})
	_, c := start(t, m, engine.Options{})
	produce(t, c, "orders", 7, 10)
	produce(t, c, "audit", 5, 3)
	var buf client.ConsumeBuffer
	for off := uint64(0); off < 70; {
		msgs, err := c.Consume(context.Background(), "orders", off, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		off = msgs.Next()
	}

	// The broker observes a consume's duration after it has written the
	// answer, which the client may read first: wait (bounded) for it.
	s := scrape(t, m)
	for deadline := time.Now().Add(5 * time.Second); s[`haraqa_request_duration_seconds_count{op="consume"}`] < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		s = scrape(t, m)
	}
	for name, want := range map[string]float64{
		`haraqa_produced_messages_total{topic="orders"}`:      70,
		`haraqa_produced_messages_total{topic="audit"}`:       15,
		`haraqa_consumed_messages_total{topic="orders"}`:      70,
		`haraqa_consumed_messages_total{topic="audit"}`:       0,
		`haraqa_request_duration_seconds_count{op="produce"}`: 12,
		`haraqa_group_commit_batches_sum`:                     12,
		`haraqa_topics`:                                       2,
		`haraqa_open_connections`:                             1,
		`haraqa_build_info{version="v-test"}`:                 1,
		`haraqa_idempotent_duplicates_total`:                  0,
	} {
		if got, ok := s[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	pb, cb := s[`haraqa_produced_bytes_total{topic="orders"}`], s[`haraqa_consumed_bytes_total{topic="orders"}`]
	if pb <= 70 || cb != pb {
		t.Errorf("orders: produced %v bytes, consumed %v; want equal and above the message count", pb, cb)
	}
	for _, name := range []string{`haraqa_request_duration_seconds_count{op="consume"}`, `haraqa_fsync_duration_seconds_count`,
		`haraqa_group_commit_batches_count`, `haraqa_group_commit_bytes_count`, `go_goroutines`, `process_open_fds`} {
		if s[name] < 1 {
			t.Errorf("%s = %v, want observations", name, s[name])
		}
	}
	if s[`haraqa_group_commit_bytes_sum`] != pb+s[`haraqa_produced_bytes_total{topic="audit"}`] {
		t.Errorf("group commit bytes %v, produced %v + %v", s[`haraqa_group_commit_bytes_sum`], pb, s[`haraqa_produced_bytes_total{topic="audit"}`])
	}
}

// TestTopicLabelCap checks that many topics cannot blow up a scrape: past
// MaxTopics, topics share one "_other_" series whose counts are their sum,
// and a topic named "_other_" is summed in too instead of clashing with it.
func TestTopicLabelCap(t *testing.T) {
	m := New(Options{MaxTopics: 2})
	_, c := start(t, m, engine.Options{})
	produce(t, c, "a", 1, 1)
	produce(t, c, "b", 1, 2)
	produce(t, c, "c", 1, 4)
	produce(t, c, "d", 1, 8)
	produce(t, c, "_other_", 1, 16)
	s := scrape(t, m)
	want := map[string]float64{
		`haraqa_produced_messages_total{topic="_other_"}`: 4 + 8 + 16,
		`haraqa_produced_messages_total{topic="a"}`:       1,
		`haraqa_produced_messages_total{topic="b"}`:       2,
		`haraqa_topics_unlabelled`:                        3,
		`haraqa_topics`:                                   5,
	}
	for name, w := range want {
		if s[name] != w {
			t.Errorf("%s = %v, want %v", name, s[name], w)
		}
	}
	n := 0
	for name := range s {
		if strings.HasPrefix(name, "haraqa_produced_messages_total{") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d produced-messages series, want 3 (a, b, _other_)", n)
	}
	// A deleted topic frees its label for the next one.
	if err := c.DeleteTopic(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	s = scrape(t, m)
	if s[`haraqa_produced_messages_total{topic="c"}`] != 4 || s[`haraqa_produced_messages_total{topic="_other_"}`] != 8+16 {
		t.Errorf("after deleting a: c %v, _other_ %v", s[`haraqa_produced_messages_total{topic="c"}`], s[`haraqa_produced_messages_total{topic="_other_"}`])
	}
}

// TestVolumeStateAndDuplicates checks the volume-state series (one per
// state, 1 for the current one) as a volume is fenced, and the
// idempotent-producer duplicate counter.
func TestVolumeStateAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	m := New(Options{})
	b, _ := start(t, m, engine.Options{Volumes: []string{v1, v2}, HealthInterval: time.Hour})
	s := scrape(t, m)
	if s[`haraqa_volume_state{state="healthy",volume="`+v2+`"}`] != 1 || s[`haraqa_volume_state{state="fenced",volume="`+v2+`"}`] != 0 {
		t.Fatalf("v2 not healthy: %v", s)
	}
	if err := os.Remove(filepath.Join(v2, "VOLUME")); err != nil {
		t.Fatal(err)
	}
	b.Engine.CheckVolumes()
	s = scrape(t, m)
	if s[`haraqa_volume_state{state="healthy",volume="`+v2+`"}`] != 0 || s[`haraqa_volume_state{state="fenced",volume="`+v2+`"}`] != 1 ||
		s[`haraqa_volume_state{state="healthy",volume="`+v1+`"}`] != 1 || s[`haraqa_volumes_fenced_total`] != 1 {
		t.Fatalf("after fencing v2: %v", s)
	}

	// A batch resent by an idempotent producer is stored once, counted as
	// a duplicate.
	ctx := context.Background()
	if err := b.Engine.CreateTopic("idem"); err != nil {
		t.Fatal(err)
	}
	pid := b.Engine.NewProducerID()
	for range 2 {
		batch, err := record.AppendBatch(nil, []byte("once"))
		if err != nil {
			t.Fatal(err)
		}
		record.SetProducer(batch, pid, 0)
		if _, err := b.Engine.Append(ctx, "idem", batch); err != nil {
			t.Fatal(err)
		}
	}
	s = scrape(t, m)
	if s[`haraqa_idempotent_duplicates_total`] != 1 || s[`haraqa_produced_messages_total{topic="idem"}`] != 1 {
		t.Fatalf("duplicates %v, produced %v; want 1 and 1", s[`haraqa_idempotent_duplicates_total`], s[`haraqa_produced_messages_total{topic="idem"}`])
	}
}

// TestObserversAllocateNothing checks that what the hot paths call costs
// no allocation.
func TestObserversAllocateNothing(t *testing.T) {
	m := New(Options{})
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest(2, time.Millisecond)
		m.ObserveSync(time.Millisecond)
		m.ObserveGroup(3, 4096)
	}); n != 0 {
		t.Fatalf("%v allocations per observation, want 0", n)
	}
}

// BenchmarkObserveRequest: what the server's per-request observation
// costs (the clock read and the histogram).
func BenchmarkObserveRequest(b *testing.B) {
	m := New(Options{})
	for b.Loop() {
		start := time.Now()
		m.ObserveRequest(2, time.Since(start))
	}
}

// TestNoTopicLabels checks MaxTopics below 0 (-metrics-max-topics 0):
// every topic is summed into "_other_", none has a series of its own.
func TestNoTopicLabels(t *testing.T) {
	m := New(Options{MaxTopics: -1})
	_, c := start(t, m, engine.Options{})
	produce(t, c, "a", 1, 3)
	produce(t, c, "b", 1, 4)
	s := scrape(t, m)
	if s[`haraqa_produced_messages_total{topic="_other_"}`] != 7 || s[`haraqa_topics_unlabelled`] != 2 {
		t.Fatalf("_other_ %v, unlabelled %v; want 7 and 2", s[`haraqa_produced_messages_total{topic="_other_"}`], s[`haraqa_topics_unlabelled`])
	}
	for name := range s {
		if strings.Contains(name, `topic="a"`) || strings.Contains(name, `topic="b"`) {
			t.Errorf("series of its own: %s", name)
		}
	}
}
