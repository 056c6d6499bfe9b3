package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/internal/testtool"
)

// httpBroker is a built broker with its HTTP API on a free loopback port.
type httpBroker struct {
	*brokerProc
	url string // http://127.0.0.1:port
}

// startHTTPBroker runs the binary with -http on a free port (extra flags
// after it) and returns it once it serves.
func startHTTPBroker(t *testing.T, bin, dir string, extra ...string) *httpBroker {
	t.Helper()
	p := startBroker(t, bin, dir, append([]string{"-http", "127.0.0.1:0", "-log-level", "info"}, extra...)...)
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.logsDone
			p.cmd.Wait()
		}
	})
	m := regexp.MustCompile(`msg="serving HTTP" addr=(\S+)`).FindStringSubmatch(p.logText())
	if m == nil {
		t.Fatalf("no HTTP address in the log:\n%s", p.logText())
	}
	return &httpBroker{brokerProc: p, url: "http://" + m[1]}
}

// curlResult is what curl got.
type curlResult struct {
	code   int
	header http.Header
	body   string
}

// curl runs the real curl binary with args (a URL path is prefixed with
// the broker's URL) and returns the final response.
func (b *httpBroker) curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	bin := testtool.Need(t, "curl", "curl")
	full := []string{"-sS", "-i", "--max-time", "30", "-H", "Expect:"}
	for _, a := range args {
		if strings.HasPrefix(a, "/") {
			a = b.url + a
		}
		full = append(full, a)
	}
	out, err := exec.Command(bin, full...).Output()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	return parseCurl(t, out)
}

// parseCurl reads curl -i output: header blocks (1xx ones skipped), then
// the body.
func parseCurl(t *testing.T, out []byte) curlResult {
	t.Helper()
	// curl writes a chunked body de-chunked: drop the header that says
	// chunked, and the body runs to the end.
	out = bytes.ReplaceAll(out, []byte("\r\nTransfer-Encoding: chunked\r\n"), []byte("\r\n"))
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("curl output %q: %v", out, err)
		}
		if resp.StatusCode >= 200 {
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			return curlResult{code: resp.StatusCode, header: resp.Header, body: body.String()}
		}
	}
}

// want fails unless the result has code.
func (r curlResult) want(t *testing.T, what string, code int) curlResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d: %s", what, r.code, code, r.body)
	}
	return r
}

// jsonField decodes the body and returns one field.
func (r curlResult) jsonField(t *testing.T, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	return m[name]
}

// TestHTTPAPIWithCurl drives every route (consumer groups included) of the HTTP API with the real
// curl binary against the built broker. Promises: each endpoint does what
// README and openapi.json say; a gzip body is decompressed; past the body
// limit the answer is 413; over the in-flight limit 429 with Retry-After;
// below -min-volumes 503 with Retry-After; an SSE follow started before a
// produce sees the message.
func TestHTTPAPIWithCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the broker binary; skipped in -short")
	}
	testtool.Need(t, "curl", "curl")
	bin := buildBroker(t)
	dir := t.TempDir()
	v2 := filepath.Join(dir, "v2")
	b := startHTTPBroker(t, bin, dir, "-http-max-body", "65536", "-http-max-in-flight", "1",
		"-http-request-timeout", "5s", "-min-volumes", "2", "-volumes", v2)
	work := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return "@" + p
	}

	b.curl(t, "-X", "PUT", "/topics/logs").want(t, "create", 201)
	b.curl(t, "-X", "PUT", "/topics/logs").want(t, "create again", 409)
	b.curl(t, "-X", "PUT", "/topics/other").want(t, "create other", 201)
	if r := b.curl(t, "/topics?prefix=lo").want(t, "list by prefix", 200); strings.TrimSpace(r.body) != `{"topics":["logs"]}` {
		t.Fatalf("list by prefix: %s", r.body)
	}
	if r := b.curl(t, "/topics?regex=^oth").want(t, "list by regex", 200); strings.TrimSpace(r.body) != `{"topics":["other"]}` {
		t.Fatalf("list by regex: %s", r.body)
	}

	// Produce in each format; a gzip body.
	r := b.curl(t, "-H", "Content-Type: application/x-ndjson", "--data-binary", file("a.ndjson", []byte("{\"n\":0}\n{\"n\":1}\n")), "/topics/logs/messages").want(t, "ndjson", 200)
	if r.jsonField(t, "base_offset").(float64) != 0 || r.jsonField(t, "count").(float64) != 2 {
		t.Fatalf("ndjson answer %s", r.body)
	}
	b.curl(t, "-H", "Content-Type: text/plain", "--data-binary", file("b.txt", []byte("text line\n")), "/topics/logs/messages").want(t, "text", 200)
	b.curl(t, "-H", "Content-Type: application/json", "-d", `["s",{"value":"v","key":"k"},{"value_b64":"/wA="}]`, "/topics/logs/messages").want(t, "json", 200)
	b.curl(t, "-H", "Content-Type: application/octet-stream", "--data-binary", file("c.bin", []byte("\x00bin\n")), "/topics/logs/messages").want(t, "binary", 200)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	for i := range 1000 {
		fmt.Fprintf(zw, "gz line %d\n", i)
	}
	zw.Close()
	r = b.curl(t, "-H", "Content-Type: text/plain", "-H", "Content-Encoding: gzip", "--data-binary", file("d.gz", gz.Bytes()), "/topics/logs/messages").want(t, "gzip", 200)
	if r.jsonField(t, "base_offset").(float64) != 7 || r.jsonField(t, "count").(float64) != 1000 {
		t.Fatalf("gzip answer %s", r.body)
	}

	// Consume: NDJSON, a JSON array by Accept, Next-Offset.
	r = b.curl(t, "/topics/logs/messages?offset=1&limit=4").want(t, "consume", 200)
	lines := strings.Split(strings.TrimSpace(r.body), "\n")
	if r.header.Get("Next-Offset") != "5" || len(lines) != 4 || !strings.Contains(lines[0], `"value":"{\"n\":1}"`) || !strings.Contains(lines[3], `"key":"k"`) {
		t.Fatalf("consume: Next-Offset %q body %s", r.header.Get("Next-Offset"), r.body)
	}
	r = b.curl(t, "-H", "Accept: application/json", "/topics/logs/messages?offset=5&limit=2").want(t, "consume as JSON", 200)
	var arr []map[string]any
	if err := json.Unmarshal([]byte(r.body), &arr); err != nil || len(arr) != 2 || arr[0]["value_b64"] != "/wA=" || arr[1]["value"] != "\x00bin\n" {
		t.Fatalf("consume as JSON: %s (%v)", r.body, err)
	}
	r = b.curl(t, "/topics/logs/messages?offset=1007&wait=200ms").want(t, "consume at the end", 200)
	if r.body != "" || r.header.Get("Next-Offset") != "1007" {
		t.Fatalf("at the end: %q Next-Offset %q", r.body, r.header.Get("Next-Offset"))
	}
	r = b.curl(t, "/topics/logs").want(t, "describe", 200)
	if r.jsonField(t, "end").(float64) != 1007 {
		t.Fatalf("describe: %s", r.body)
	}
	r = b.curl(t, "/topics/logs/offsets?time=2000-01-01T00:00:00Z").want(t, "offsets", 200)
	if r.jsonField(t, "at_time").(float64) != 0 || r.jsonField(t, "end").(float64) != 1007 {
		t.Fatalf("offsets: %s", r.body)
	}
	b.curl(t, "-X", "POST", "/topics/logs/truncate?before_offset=1").want(t, "truncate", 200)
	b.curl(t, "/openapi.json").want(t, "openapi", 200)

	// SSE follow: started first, sees a message produced after it.
	follow := exec.Command(testtool.Need(t, "curl", "curl"), "-sS", "-N", "--max-time", "20", "-H", "Accept: text/event-stream", b.url+"/topics/logs/stream")
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry:") {
		t.Fatalf("stream did not start: %q", sc.Text())
	}
	b.curl(t, "-H", "Content-Type: text/plain", "-d", "after the follow started", "/topics/logs/messages").want(t, "produce while following", 200)
	var event []string
	for sc.Scan() && len(event) < 2 {
		if sc.Text() != "" {
			event = append(event, sc.Text())
		}
	}
	if len(event) != 2 || event[0] != "id: 1007" || !strings.Contains(event[1], `"value":"after the follow started"`) {
		t.Fatalf("SSE event %q", event)
	}
	follow.Process.Kill()

	// 413 past the body limit.
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 5000)
	b.curl(t, "-H", "Content-Type: text/plain", "--data-binary", file("big.txt", big), "/topics/logs/messages").want(t, "over the body limit", 413)
	// 429 while another produce holds the one in-flight slot.
	hold, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(hold, "POST /topics/logs/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nheld")
	// A probe that comes before the held request is in its handler is
	// answered 200 and stored (on a loaded machine it happens): it is
	// numbered, and only the refused one must be missing from the log.
	deadline := time.Now().Add(10 * time.Second)
	refused, probesStored := "", 0
	for i := 0; ; i++ {
		refused = fmt.Sprintf("refused %d", i)
		r = b.curl(t, "-H", "Content-Type: text/plain", "-d", refused, "/topics/logs/messages")
		if r.code == 429 || time.Now().After(deadline) {
			break
		}
		if r.code == 200 {
			probesStored++
		}
		time.Sleep(50 * time.Millisecond) // the held request is not in its handler yet
	}
	if r.want(t, "over the in-flight limit", 429); r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	hold.Close()

	// A consumer group: create, join, fetch, ack, nack, describe, leave.
	b.curl(t, "-X", "PUT", "-d", `{"ack_wait":"1m"}`, "/topics/logs/groups/g").want(t, "create group", 201)
	member := b.curl(t, "-X", "POST", "/topics/logs/groups/g/members").want(t, "join", 200).jsonField(t, "member").(string)
	r = b.curl(t, "-X", "POST", "/topics/logs/groups/g/fetch?member="+member+"&max=2").want(t, "fetch", 200)
	if lines := strings.Split(strings.TrimSpace(r.body), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"offset":0,`) || !strings.Contains(lines[0], `"deliveries":1`) || r.header.Get("Group-Epoch") == "" {
		t.Fatalf("group fetch: %s", r.body)
	}
	b.curl(t, "-X", "POST", "-d", `{"offsets":[0]}`, "/topics/logs/groups/g/ack?member="+member+"&epoch="+r.header.Get("Group-Epoch")).want(t, "ack", 204)
	b.curl(t, "-X", "POST", "-d", `{"offsets":[5]}`, "/topics/logs/groups/g/ack?member="+member).want(t, "ack of an offset not leased", 409)
	b.curl(t, "-X", "POST", "/topics/logs/groups/g/nack?member="+member).want(t, "nack", 204)
	r = b.curl(t, "-X", "POST", "/topics/logs/groups/g/fetch?member="+member+"&max=1").want(t, "fetch after nack", 200)
	if !strings.Contains(r.body, `"offset":1,`) || !strings.Contains(r.body, `"deliveries":2`) {
		t.Fatalf("redelivery after nack: %s", r.body)
	}
	b.curl(t, "-X", "POST", "/topics/logs/groups/g/extend?member="+member).want(t, "extend", 204)
	r = b.curl(t, "/topics/logs/groups/g").want(t, "describe group", 200)
	if r.jsonField(t, "committed").(float64) != 1 || r.jsonField(t, "in_flight").(float64) != 1 {
		t.Fatalf("describe group: %s", r.body)
	}
	b.curl(t, "/topics/logs/groups").want(t, "list groups", 200)
	b.curl(t, "-X", "DELETE", "/topics/logs/groups/g/members/"+member).want(t, "leave", 204)
	b.curl(t, "-X", "DELETE", "/topics/logs/groups/g").want(t, "delete group", 204)

	b.curl(t, "-X", "DELETE", "/topics/other").want(t, "delete", 204)
	b.curl(t, "-X", "DELETE", "/topics/other").want(t, "delete again", 404)

	// /metrics counts the API's answers and messages.
	r = b.curl(t, "/metrics").want(t, "metrics", 200)
	for _, re := range []string{`haraqa_http_api_requests_total\{code="2xx",route="POST /topics/\{topic\}/messages"\} [1-9]`,
		`haraqa_http_api_requests_total\{code="4xx",route="POST /topics/\{topic\}/messages"\} [1-9]`,
		fmt.Sprintf(`haraqa_http_api_messages_total\{direction="produced"\} %d\n`, 1008+probesStored), `haraqa_http_api_messages_total\{direction="consumed"\} [1-9]`} {
		if !regexp.MustCompile(re).MatchString(r.body) {
			t.Errorf("/metrics lacks %s:\n%s", re, grepLines(r.body, "haraqa_http_api"))
		}
	}

	// 503 below -min-volumes: the second volume goes away.
	if err := os.RemoveAll(v2); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		r = b.curl(t, "-H", "Content-Type: text/plain", "-d", "below min volumes", "/topics/logs/messages")
		if r.code != 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the health check has not fenced it yet
	}
	if r.want(t, "below -min-volumes", 503); r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}

	// Only what was answered 200 is stored.
	c, err := dialRaw(b.sock)
	if err != nil {
		t.Fatal(err)
	}
	got := c.readAll(t, "logs")
	for off, v := range got {
		if v == refused || strings.Contains(v, "held") || strings.HasPrefix(v, "0123456789") {
			t.Fatalf("offset %d holds %q from a refused request", off, v)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
