package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
)

// Promise: a consume returns the messages from the offset asked, at most
// limit, with Next-Offset naming where to go on; the JSON form by Accept
// holds the same; binary values come back as value_b64.
func TestConsume(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	f.produce(t, "c", "text/plain", []byte("m0\nm1\nm2\n"), 200)
	f.produce(t, "c", "application/json", []byte(`[{"value":"m3","key":"k","headers":{"h":"v"},"timestamp":5}, {"value_b64":"/w=="}]`), 200)

	code, b, resp := f.do(t, "GET", "/topics/c/messages?offset=1&limit=3", nil, nil)
	if code != 200 || resp.Header.Get("Next-Offset") != "4" || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("consume: %d Next-Offset %q: %s", code, resp.Header.Get("Next-Offset"), b)
	}
	ms := ndjsonLines(t, b)
	if len(ms) != 3 || ms[0]["value"] != "m1" || ms[0]["offset"].(float64) != 1 || ms[2]["value"] != "m3" || ms[2]["key"] != "k" ||
		ms[2]["timestamp"].(float64) != 5 || ms[2]["headers"].(map[string]any)["h"] != "v" {
		t.Fatalf("consume answer %s", b)
	}
	code, b, resp = f.do(t, "GET", "/topics/c/messages?offset=4", map[string]string{"Accept": "application/json"}, nil)
	var arr []map[string]any
	if err := json.Unmarshal(b, &arr); code != 200 || err != nil || len(arr) != 1 || arr[0]["value_b64"] != "/w==" || resp.Header.Get("Next-Offset") != "5" {
		t.Fatalf("consume as JSON: %d %s (%v)", code, b, err)
	}
	// At the end: nothing, Next-Offset unchanged; wait= waits for a message.
	code, b, resp = f.do(t, "GET", "/topics/c/messages?offset=5", nil, nil)
	if code != 200 || len(b) != 0 || resp.Header.Get("Next-Offset") != "5" {
		t.Fatalf("at the end: %d %q %q", code, b, resp.Header.Get("Next-Offset"))
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		f.e.Append(context.Background(), "c", mustBatch("late"))
	}()
	code, b, _ = f.do(t, "GET", "/topics/c/messages?offset=5&wait=10s", nil, nil)
	if ms := ndjsonLines(t, b); code != 200 || len(ms) != 1 || ms[0]["value"] != "late" {
		t.Fatalf("long poll: %d %s", code, b)
	}
	// Out of range: 416 with the range.
	code, b, _ = f.do(t, "GET", "/topics/c/messages?offset=99", nil, nil)
	if e := decodeErr(t, b); code != http.StatusRequestedRangeNotSatisfiable || e.Start == nil || *e.End != 6 {
		t.Fatalf("out of range: %d %s", code, b)
	}
	code, _, _ = f.do(t, "GET", "/topics/nope/messages", nil, nil)
	if code != 404 {
		t.Fatalf("missing topic: %d", code)
	}
	code, _, _ = f.do(t, "GET", "/topics/c/messages?limit=x", nil, nil)
	if code != 400 {
		t.Fatalf("bad limit: %d", code)
	}
	// from_time: everything is after the epoch.
	code, b, _ = f.do(t, "GET", "/topics/c/messages?from_time=1970-01-01T00:00:00Z&limit=1", nil, nil)
	if ms := ndjsonLines(t, b); code != 200 || len(ms) != 1 || ms[0]["value"] != "m0" {
		t.Fatalf("from_time: %d %s", code, b)
	}
}

// Promise: a stream follows the topic: it sees a message produced after
// it started, as SSE with the offset as event id, and resumes after
// Last-Event-ID.
func TestStream(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	f.produce(t, "s", "text/plain", []byte("old\n"), 200)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/topics/s/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	f.produce(t, "s", "text/plain", []byte("new\n"), 200)
	br := bufio.NewReader(resp.Body)
	var id, data string
	for data == "" {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if v, ok := strings.CutPrefix(l, "id: "); ok {
			id = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "data: "); ok {
			data = v
		}
	}
	if id != "1" || !strings.Contains(data, `"value":"new"`) {
		t.Fatalf("first event id %q data %q, want the message produced after the start", id, data)
	}
	cancel()

	// Resume after id 0 as NDJSON: the stream starts at offset 1.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, "GET", f.srv.URL+"/topics/s/stream", nil)
	req.Header.Set("Last-Event-ID", "0")
	resp2, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	l, err := bufio.NewReader(resp2.Body).ReadString('\n')
	if err != nil || !strings.Contains(l, `"offset":1,`) {
		t.Fatalf("resumed stream's first line %q (%v)", l, err)
	}
}

// Promise: topic administration over HTTP does what the native protocol
// does: create, list by prefix and regex, describe, offsets and the offset
// at a time, truncate, delete.
func TestTopics(t *testing.T) {
	f := newFixture(t, Options{}, engine.Options{SegmentBytes: 4096})
	for _, n := range []string{"app.a", "app.b", "other"} {
		if code, b, _ := f.do(t, "PUT", "/topics/"+n, nil, nil); code != 201 {
			t.Fatalf("create %s: %d %s", n, code, b)
		}
	}
	if code, _, _ := f.do(t, "PUT", "/topics/other", nil, nil); code != 409 {
		t.Fatalf("create twice: %d", code)
	}
	_, b, _ := f.do(t, "GET", "/topics?prefix=app.", nil, nil)
	if string(b) != `{"topics":["app.a","app.b"]}`+"\n" {
		t.Fatalf("prefix: %s", b)
	}
	_, b, _ = f.do(t, "GET", "/topics?regex=^o", nil, nil)
	if string(b) != `{"topics":["other"]}`+"\n" {
		t.Fatalf("regex: %s", b)
	}
	if code, _, _ := f.do(t, "GET", "/topics?regex=(", nil, nil); code != 400 {
		t.Fatalf("bad regex: %d", code)
	}
	for range 20 {
		f.produce(t, "app.a", "text/plain", []byte(strings.Repeat("x", 1000)+"\n"), 200)
	}
	code, b, _ := f.do(t, "GET", "/topics/app.a", nil, nil)
	var info topicInfo
	if json.Unmarshal(b, &info); code != 200 || info.End != 20 || info.Segments == nil || *info.Segments < 2 {
		t.Fatalf("describe: %d %s", code, b)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, b, _ = f.do(t, "GET", "/topics/app.a/offsets?time="+future, nil, nil)
	var offs offsetsInfo
	if json.Unmarshal(b, &offs); code != 200 || offs.End != 20 || offs.AtTime == nil || *offs.AtTime != 20 {
		t.Fatalf("offsets: %d %s", code, b)
	}
	code, b, _ = f.do(t, "POST", "/topics/app.a/truncate?before_offset=10", nil, nil)
	var tr struct{ Start uint64 }
	if json.Unmarshal(b, &tr); code != 200 || tr.Start == 0 || tr.Start > 10 {
		t.Fatalf("truncate: %d %s", code, b)
	}
	if code, _, _ := f.do(t, "POST", "/topics/app.a/truncate", nil, nil); code != 400 {
		t.Fatalf("truncate without a cut: %d", code)
	}
	if code, _, _ := f.do(t, "DELETE", "/topics/app.b", nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.do(t, "DELETE", "/topics/app.b", nil, nil); code != 404 {
		t.Fatalf("delete twice: %d", code)
	}
	if code, _, _ := f.do(t, "GET", "/topics/app.b", nil, nil); code != 404 {
		t.Fatalf("describe deleted: %d", code)
	}
}

// Promise: with a token set, every route but /openapi.json answers 401
// without "Authorization: Bearer <token>", and works with it.
func TestToken(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, Token: "s3cret"}, engine.Options{})
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}} {
		code, b, resp := f.do(t, "GET", "/topics", hdr, nil)
		if code != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%v: %d %s", hdr, code, b)
		}
	}
	f.produce(t, "x", "text/plain", []byte("a\n"), 401)
	if len(f.e.Topics("")) != 0 {
		t.Fatal("an unauthorized produce created a topic")
	}
	code, _, _ := f.do(t, "POST", "/topics/x/messages", map[string]string{"Authorization": "Bearer s3cret", "Content-Type": "text/plain"}, strings.NewReader("a\n"))
	if code != 200 {
		t.Fatalf("with the token: %d", code)
	}
	if code, _, _ := f.do(t, "GET", "/openapi.json", nil, nil); code != 200 {
		t.Fatalf("openapi.json with no token: %d", code)
	}
}

// Promise: with permissions (-auth-file), each request's client is
// identified by its bearer token (401 when unknown or missing) and may do
// only what its entry allows on the topic (403 otherwise, nothing
// stored); a listing shows only the topics it has a permission on.
func TestPermissions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.toml")
	os.WriteFile(file, []byte(`
[[client]]
name = "shipper"
token-sha256 = "`+auth.HashToken("ship")+`"
produce = ["logs.*"]

[[client]]
name = "reader"
token-sha256 = "`+auth.HashToken("read")+`"
consume = ["logs.*"]

[[client]]
name = "ops"
token-sha256 = "`+auth.HashToken("ops")+`"
admin = ["*"]
`), 0o644)
	az, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{AutoCreateTopics: true, Auth: az}, engine.Options{})
	as := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "text/plain"}
	}
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"POST", "/topics/logs.app/messages", "", 401},
		{"POST", "/topics/logs.app/messages", "nobody", 401},
		{"POST", "/topics/logs.app/messages", "ship", 200},
		{"POST", "/topics/other/messages", "ship", 403},
		{"GET", "/topics/logs.app/messages", "ship", 403},
		{"GET", "/topics/logs.app/messages", "read", 200},
		{"POST", "/topics/logs.app/messages", "read", 403},
		{"DELETE", "/topics/logs.app", "read", 403},
		{"PUT", "/topics/other", "ops", 201},
		{"GET", "/openapi.json", "", 200},
	} {
		code, b, _ := f.do(t, c.method, c.path, as(c.token), strings.NewReader("m\n"))
		if code != c.code {
			t.Errorf("%s %s as %q: %d %s, want %d", c.method, c.path, c.token, code, b, c.code)
		}
	}
	if _, b, _ := f.do(t, "GET", "/topics", as("read"), nil); strings.TrimSpace(string(b)) != `{"topics":["logs.app"]}` {
		t.Errorf("reader's listing: %s", b)
	}
	if _, _, err := f.e.Offsets("other"); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, f.e, "other"); len(got) != 0 {
		t.Fatalf("a refused produce stored %q", values(got))
	}
}

// Promise: /metrics can tell what the HTTP API did: answers are counted
// per route and status class, and messages stored and sent are counted.
func TestCounts(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	f.produce(t, "c", "text/plain", []byte("a\nb\n"), 200)
	f.produce(t, "c", "application/xml", []byte("x"), 415)
	f.do(t, "GET", "/topics/c/messages", nil, nil)
	want := map[string]uint64{"POST /topics/{topic}/messages 2xx": 1, "POST /topics/{topic}/messages 4xx": 1, "GET /topics/{topic}/messages 2xx": 1}
	for _, c := range f.api.Counts() {
		if c.N != want[c.Route+" "+c.Class] {
			t.Errorf("%s %s: %d, want %d", c.Route, c.Class, c.N, want[c.Route+" "+c.Class])
		}
	}
	if p, c := f.api.Messages(); p != 2 || c != 2 {
		t.Fatalf("messages produced %d, consumed %d; want 2, 2", p, c)
	}
}
