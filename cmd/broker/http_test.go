package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// httpAddr returns the HTTP listener's address of an in-process broker
// started with -http (the last of its ready addresses).
func (p *inProcess) httpAddr(t *testing.T) string {
	t.Helper()
	a := p.addrs[len(p.addrs)-1]
	if _, ok := a.(*net.TCPAddr); !ok {
		t.Fatalf("no HTTP address among %v", p.addrs)
	}
	return "http://" + a.String()
}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitStatus polls url until it answers code, up to 20s, and returns the
// body.
func waitStatus(t *testing.T, url string, code int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, body := get(t, url)
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d, want %d; body %s", url, got, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadyzFollowsVolumes checks that a load balancer's readiness probe
// tells the truth about produces: /readyz answers 503 with a JSON reason
// naming the volumes while fewer than -min-volumes are healthy, and 200
// again once the missing volume is rebuilt; /healthz stays 200 throughout.
func TestReadyzFollowsVolumes(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-min-volumes", "2", v1, v2)
	base := p.httpAddr(t)
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz with both volumes: %d %s", code, body)
	}

	// The health check fences a volume whose identity file is gone.
	id := filepath.Join(v2, "VOLUME")
	if err := os.Rename(id, id+".away"); err != nil {
		t.Fatal(err)
	}
	body := waitStatus(t, base+"/readyz", 503)
	var un struct {
		Status  string
		Reasons []struct{ Check, Error string }
	}
	if err := json.Unmarshal([]byte(body), &un); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if un.Status != "unready" || len(un.Reasons) != 1 || un.Reasons[0].Check != "volumes" ||
		!strings.Contains(un.Reasons[0].Error, "1 healthy volumes, -min-volumes 2") || !strings.Contains(un.Reasons[0].Error, v2) {
		t.Fatalf("/readyz reasons: %s", body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz with a volume fenced: %d", code)
	}

	// Its identity back, the volume is rebuilt and rejoins.
	if err := os.Rename(id+".away", id); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", 200)
}

// TestHTTPFlag checks that -http empty serves no HTTP, that
// HARAQA_BROKER_HTTP sets it, and that an HTTP address in use is a clear
// start failure naming the flag.
func TestHTTPFlag(t *testing.T) {
	p := runInProcess(t, "-addr", "127.0.0.1:0", t.TempDir())
	if len(p.addrs) != 1 {
		t.Fatalf("-http empty: listening on %v", p.addrs)
	}
	p.stop(t)

	t.Setenv("HARAQA_BROKER_HTTP", "127.0.0.1:0")
	c, fs := newFlags()
	if err := loadLayers(c, fs); err != nil || c.http != "127.0.0.1:0" {
		t.Fatalf("HARAQA_BROKER_HTTP: %q, %v", c.http, err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, out := refuse(t, "-addr", "127.0.0.1:0", "-http", l.Addr().String(), t.TempDir())
	if code != exitFailure || !strings.Contains(out, "-http "+l.Addr().String()) || !strings.Contains(out, "address already in use") {
		t.Fatalf("HTTP address in use: code %d, output %q", code, out)
	}
}

// TestMetricsWired checks that the broker's /metrics and status page
// reflect its traffic (the engine and server feed the metrics the -http
// listener serves), and that -pprof mounts the profiler.
func TestMetricsWired(t *testing.T) {
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-pprof", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp://"+p.addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Produce(ctx, "wired", []byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, p.httpAddr(t)+"/metrics")
	for _, want := range []string{"\nharaqa_produced_messages_total{topic=\"wired\"} 5\n", "\nharaqa_request_duration_seconds_count{op=\"produce\"} 1\n",
		"\nharaqa_fsync_duration_seconds_count ", "\nharaqa_build_info{version=\"dev\"} 1\n", "\nharaqa_volume_state{state=\"healthy\""} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics: %d, lacks %q:\n%s", code, want, body)
		}
	}
	if code, body := get(t, p.httpAddr(t)+"/"); code != 200 || !strings.Contains(body, "<td>wired</td>") {
		t.Fatalf("status page: %d\n%s", code, body)
	}
	if code, _ := get(t, p.httpAddr(t)+"/nothing-here"); code != 404 {
		t.Fatalf("unknown path: %d, want 404", code)
	}
	if code, _ := get(t, p.httpAddr(t)+"/debug/pprof/"); code != 200 {
		t.Fatalf("-pprof: /debug/pprof/ answered %d", code)
	}
}

// do sends method url with body (JSON) and returns the status and body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestGroupLagMatchesClients checks that the consumer-group lag an
// operator scrapes from /metrics and reads on the status page is the lag
// the clients report (the HTTP API's describe): 20 messages, 2 acked, 3
// more leased.
func TestGroupLagMatchesClients(t *testing.T) {
	p := runInProcess(t, "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", t.TempDir())
	base := p.httpAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp://"+p.addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := make([][]byte, 20)
	for i := range msgs {
		msgs[i] = []byte("m")
	}
	if _, err := c.Produce(ctx, "jobs", msgs...); err != nil {
		t.Fatal(err)
	}
	g := base + "/topics/jobs/groups/workers"
	if code, body := do(t, "PUT", g, `{"start":"earliest"}`); code/100 != 2 {
		t.Fatalf("create group: %d %s", code, body)
	}
	code, body := do(t, "POST", g+"/members", `{"name":"w1"}`)
	var join struct {
		Member string
		Epoch  uint64
	}
	if err := json.Unmarshal([]byte(body), &join); code != 200 || err != nil {
		t.Fatalf("join: %d %s %v", code, body, err)
	}
	q := "?member=" + join.Member + "&epoch=" + strconv.FormatUint(join.Epoch, 10)
	if code, body := do(t, "POST", g+"/fetch"+q+"&max=5", ""); code != 200 {
		t.Fatalf("fetch: %d %s", code, body)
	}
	if code, body := do(t, "POST", g+"/ack"+q, `{"ranges":[{"first":0,"next":2}]}`); code/100 != 2 {
		t.Fatalf("ack: %d %s", code, body)
	}
	code, body = get(t, g)
	var desc struct {
		Lag      uint64 `json:"lag"`
		InFlight uint64 `json:"in_flight"`
	}
	if err := json.Unmarshal([]byte(body), &desc); code != 200 || err != nil {
		t.Fatalf("describe: %d %s %v", code, body, err)
	}
	if desc.Lag != 18 || desc.InFlight != 3 {
		t.Fatalf("describe: lag %d, in flight %d; want 18 and 3 (%s)", desc.Lag, desc.InFlight, body)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf("\nharaqa_group_lag_messages{group=\"workers\",topic=\"jobs\"} %d\n", desc.Lag),
		fmt.Sprintf("\nharaqa_group_in_flight_messages{group=\"workers\",topic=\"jobs\"} %d\n", desc.InFlight),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, page := get(t, base+"/"); !strings.Contains(page, `<td>jobs</td><td>workers</td><td class="n">2</td><td class="n">18</td><td class="n">3</td>`) {
		t.Errorf("the status page lacks the group's row (committed 2, lag 18, in flight 3):\n%s", page)
	}
}

// TestReadinessStates checks /readyz's other reasons: the engine still
// opening (recovery), a protocol listener not serving, and shutdown.
func TestReadinessStates(t *testing.T) {
	rd := &readiness{minVolumes: 1, listeners: 2}
	failed := func() []string {
		var out []string
		for _, c := range rd.checks() {
			if err := c.Check(); err != nil {
				out = append(out, c.Name+": "+err.Error())
			}
		}
		return out
	}
	if got := strings.Join(failed(), "; "); got != "engine: opening the data directories (recovery); volumes: engine not open; listeners: 0 of 2 protocol listeners serving" {
		t.Fatalf("while opening: %s", got)
	}
	rd.serving.Add(2)
	rd.stopping.Store(true)
	if got := strings.Join(failed(), "; "); got != "engine: shutting down; volumes: engine not open" {
		t.Fatalf("while stopping: %s", got)
	}
}
