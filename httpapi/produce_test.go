package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/haraqa/haraqa/engine"
)

// Promise: each produce format stores its messages byte for byte, in
// order, as one batch, and answers with the base offset and count.
func TestProduceFormats(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	// NDJSON: the line's bytes; \r\n and empty lines handled.
	b := f.produce(t, "t", "application/x-ndjson", []byte("{\"a\":1}\r\n\n[1,2]\n\"s\""), 200)
	var res produceResult
	if err := json.Unmarshal(b, &res); err != nil || res.BaseOffset != 0 || res.Count != 3 || res.NextOffset != 3 {
		t.Fatalf("ndjson answer %s (%v)", b, err)
	}
	// text/plain, invalid UTF-8 kept as bytes.
	f.produce(t, "t", "text/plain; charset=utf-8", []byte("plain line\nbad \xff\xfe utf8\n"), 200)
	// JSON array: strings, objects with value, value_b64, key, headers, timestamp.
	f.produce(t, "t", "application/json", []byte(`["str", {"value":"v","key":"k","headers":{"b":"2","a":"1"},"timestamp":"2026-01-02T03:04:05Z"},
		{"value_b64":"AAEC/w=="}, {"value":{"x":[1,2]}}]`), 200)
	// One binary message.
	f.produce(t, "t", "application/octet-stream", []byte("\x00\x01raw\nbytes"), 200)
	// ?format= overrides a wrong Content-Type (a shipper that cannot set it).
	f.produce(t, "t?format=ndjson", "application/json", []byte("{\"l\":1}\n{\"l\":2}\n"), 200)

	got := stored(t, f.e, "t")
	want := []string{`{"a":1}`, `[1,2]`, `"s"`, "plain line", "bad \xff\xfe utf8", "str", "v", "\x00\x01\x02\xff", `{"x":[1,2]}`, "\x00\x01raw\nbytes", `{"l":1}`, `{"l":2}`}
	if !slices.Equal(values(got), want) {
		t.Fatalf("stored %q\nwant %q", values(got), want)
	}
	m := got[6]
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	hi := m.Headers()
	k1, v1, _ := hi.Next()
	if string(m.Key) != "k" || m.Timestamp != ts || m.NumHeaders() != 2 || string(k1) != "a" || string(v1) != "1" {
		t.Fatalf("message object stored as key %q ts %d headers %d first %s=%s", m.Key, m.Timestamp, m.NumHeaders(), k1, v1)
	}
}

// Promise: gzip and zstd bodies are decompressed as they are read.
func TestProduceCompressed(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("g1\ng2\n"))
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll([]byte("z1\nz2\n"), nil)
	for _, c := range []struct {
		enc  string
		body []byte
	}{{"gzip", gz.Bytes()}, {"zstd", zs}} {
		code, b, _ := f.do(t, "POST", "/topics/c/messages", map[string]string{"Content-Type": "text/plain", "Content-Encoding": c.enc}, bytes.NewReader(c.body))
		if code != 200 {
			t.Fatalf("%s: %d %s", c.enc, code, b)
		}
	}
	if got := values(stored(t, f.e, "c")); !slices.Equal(got, []string{"g1", "g2", "z1", "z2"}) {
		t.Fatalf("stored %q", got)
	}
	code, b, _ := f.do(t, "POST", "/topics/c/messages", map[string]string{"Content-Type": "text/plain", "Content-Encoding": "br"}, strings.NewReader("x"))
	if code != http.StatusUnsupportedMediaType {
		t.Fatalf("brotli: %d %s", code, b)
	}
	code, b, _ = f.do(t, "POST", "/topics/c/messages", map[string]string{"Content-Type": "text/plain", "Content-Encoding": "gzip"}, strings.NewReader("not gzip"))
	if code != http.StatusBadRequest {
		t.Fatalf("bad gzip: %d %s", code, b)
	}
}

// Promise: bad input gets a clear answer naming the line, and nothing of
// the body is stored.
func TestProduceBadInput(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, MaxLineBytes: 64, MaxBodyBytes: 4096, MaxMessages: 10}, engine.Options{})
	f.produce(t, "b", "text/plain", []byte("first\n"), 200)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	cases := []struct {
		name, ctype, enc string
		body             string
		code, line       int
	}{
		{"malformed ndjson", "application/x-ndjson", "", "{\"ok\":1}\n{\"bad\":\n{}\n", 400, 2},
		{"malformed json array", "application/json", "", `["a", {"value":"b"}, {"value":]`, 400, 3},
		{"json not an array", "application/json", "", `{"value":"x"}`, 400, 0},
		{"json element of wrong type", "application/json", "", `["a", 5]`, 400, 2},
		{"json unknown field", "application/json", "", `[{"log":"x"}]`, 400, 1},
		{"json object without value", "application/json", "", `[{"key":"x"}]`, 400, 1},
		{"json bad base64", "application/json", "", `[{"value_b64":"***"}]`, 400, 1},
		{"line over the limit", "text/plain", "", "ok\n" + strings.Repeat("x", 65) + "\nok\n", 400, 2},
		{"last line over the limit", "text/plain", "", "ok\n" + strings.Repeat("x", 200), 400, 2},
		{"wrong content type", "application/xml", "", "<a/>", 415, 0},
		{"no content type", "", "", "a\n", 415, 0},
		{"body over the limit", "text/plain", "", strings.Repeat("abcdefg\n", 600), 413, 0},
		{"decompressed over the limit", "application/octet-stream", "gzip", bomb.String(), 413, 0},
		{"too many messages", "text/plain", "", strings.Repeat("m\n", 11), 413, 11},
		{"empty body", "text/plain", "", "\n\n", 400, 0},
	}
	for _, c := range cases {
		hdr := map[string]string{"Content-Type": c.ctype}
		if c.enc != "" {
			hdr["Content-Encoding"] = c.enc
		}
		code, b, _ := f.do(t, "POST", "/topics/b/messages", hdr, strings.NewReader(c.body))
		if code != c.code {
			t.Errorf("%s: status %d, want %d: %s", c.name, code, c.code, b)
			continue
		}
		if e := decodeErr(t, b); e.Line != c.line {
			t.Errorf("%s: line %d, want %d: %s", c.name, e.Line, c.line, b)
		}
	}
	f.produce(t, "b?format=xml", "text/plain", []byte("a\n"), 400)
	// A body over the limit (sent chunked: no Content-Length to refuse it
	// by) ends the connection: the rest of it is not read.
	code, _, resp := f.do(t, "POST", "/topics/b/messages", map[string]string{"Content-Type": "application/octet-stream"}, io.MultiReader(strings.NewReader(strings.Repeat("abcdefg\n", 600))))
	if code != 413 || !resp.Close {
		t.Errorf("chunked body over the limit: %d, connection closed %v", code, resp.Close)
	}
	if got := values(stored(t, f.e, "b")); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("after bad input the topic holds %q, want only the first message", got)
	}
}

// Promise: with auto-create off a produce to a missing topic is a 404 and
// creates nothing.
func TestProduceMissingTopic(t *testing.T) {
	f := newFixture(t, Options{}, engine.Options{})
	b := f.produce(t, "nope", "text/plain", []byte("x\n"), 404)
	decodeErr(t, b)
	if len(f.e.Topics("")) != 0 {
		t.Fatal("a topic was created")
	}
	f.produce(t, "bad..name/", "text/plain", []byte("x\n"), 404) // the mux refuses the path
	f.produce(t, "bad%20name", "text/plain", []byte("x\n"), 400)
}

// Promise: a request retried with the same Idempotency-Key is stored once
// and answered with the first answer's offsets; the same key with a
// different body is refused.
func TestProduceIdempotencyKey(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	hdr := map[string]string{"Content-Type": "text/plain", "Idempotency-Key": "req-1"}
	f.produce(t, "i", "text/plain", []byte("before\n"), 200)
	var first, again produceResult
	for i, dst := range []*produceResult{&first, &again} {
		code, b, _ := f.do(t, "POST", "/topics/i/messages", hdr, strings.NewReader("a\nb\n"))
		if code != 200 {
			t.Fatalf("try %d: %d %s", i, code, b)
		}
		json.Unmarshal(b, dst)
	}
	if first != again || first.BaseOffset != 1 {
		t.Fatalf("first answer %+v, retry %+v", first, again)
	}
	code, b, _ := f.do(t, "POST", "/topics/i/messages", hdr, strings.NewReader("a\nb\nc\n"))
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d %s", code, b)
	}
	hdr["Idempotency-Key"] = "req-2"
	f.do(t, "POST", "/topics/i/messages", hdr, strings.NewReader("c\n"))
	if got := values(stored(t, f.e, "i")); !slices.Equal(got, []string{"before", "a", "b", "c"}) {
		t.Fatalf("stored %q", got)
	}
}

// Promise: past the in-flight limit a produce is answered 429 with
// Retry-After at once, and stores nothing; the held request completes.
func TestProduceInFlightLimit(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, MaxInFlight: 1}, engine.Options{})
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", f.srv.URL+"/topics/l/messages", pr)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	pw.Write([]byte("held\n"))
	// Wait until the held request is in flight.
	for i := 0; f.api.inflight.Load() == 0; i++ {
		if i > 1000 {
			t.Fatal("the held request never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, b, resp := f.do(t, "POST", "/topics/l/messages", map[string]string{"Content-Type": "text/plain"}, strings.NewReader("refused\n"))
	if code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d Retry-After %q: %s", code, resp.Header.Get("Retry-After"), b)
	}
	pw.Close()
	if c := <-done; c != 200 {
		t.Fatalf("held request: %d", c)
	}
	if got := values(stored(t, f.e, "l")); !slices.Equal(got, []string{"held"}) {
		t.Fatalf("stored %q", got)
	}
}

// Promise: a body sent too slowly (slow-loris) is cut at the request
// timeout with 408, and nothing of it is stored.
func TestProduceSlowBody(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, RequestTimeout: 300 * time.Millisecond}, engine.Options{})
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /topics/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\npartial line one\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %d", resp.StatusCode)
	}
	if _, _, err := f.e.Offsets("s"); err == nil {
		if got := stored(t, f.e, "s"); len(got) != 0 {
			t.Fatalf("slow body stored %q", values(got))
		}
	}
}

// Promise: below -min-volumes a produce is answered 503 with Retry-After
// and stores nothing; it works again once the volume is back.
func TestProduceBelowMinVolumes(t *testing.T) {
	v1, v2 := t.TempDir(), t.TempDir()
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{Volumes: []string{v1, v2}, MinVolumes: 2, HealthInterval: time.Hour})
	f.produce(t, "m", "text/plain", []byte("one\n"), 200)
	if err := removeAll(v2); err != nil {
		t.Fatal(err)
	}
	f.e.CheckVolumes()
	code, b, resp := f.do(t, "POST", "/topics/m/messages", map[string]string{"Content-Type": "text/plain"}, strings.NewReader("two\n"))
	if code != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("below min volumes: %d Retry-After %q: %s", code, resp.Header.Get("Retry-After"), b)
	}
	if e := decodeErr(t, b); !e.Retriable {
		t.Fatalf("503 not marked retriable: %s", b)
	}
	if got := values(stored(t, f.e, "m")); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("stored %q", got)
	}
}

// Promise: the request shapes of the shipper configurations README
// documents are accepted as one message per event: Vector's http sink with
// encoding.codec json, framing newline_delimited, the Content-Type header
// set and gzip (NDJSON of event objects, gzip-encoded); Fluent Bit's http
// output with Format json_lines and Compress gzip, which older versions
// label application/json (hence ?format=ndjson in the URI). (The shippers
// themselves are not installed here; syslog-ng is run for real in
// cmd/broker.)
func TestShipperRequestShapes(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	vector := `{"host":"a","message":"GET / 200","timestamp":"2026-12-06T14:00:00.123Z"}` + "\n" +
		`{"host":"a","message":"GET /x 404","timestamp":"2026-12-06T14:00:00.456Z"}` + "\n"
	code, b, _ := f.do(t, "POST", "/topics/app-logs/messages", map[string]string{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}, bytes.NewReader(gz(vector)))
	if code != 200 {
		t.Fatalf("Vector's request: %d %s", code, b)
	}
	fluent := `{"date":"2026-12-06T14:00:01.000000Z","log":"line one"}` + "\n" + `{"date":"2026-12-06T14:00:01.100000Z","log":"line two"}` + "\n"
	code, b, _ = f.do(t, "POST", "/topics/app-logs/messages?format=ndjson", map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, bytes.NewReader(gz(fluent)))
	if code != 200 {
		t.Fatalf("Fluent Bit's request: %d %s", code, b)
	}
	want := append(strings.Split(strings.TrimSpace(vector), "\n"), strings.Split(strings.TrimSpace(fluent), "\n")...)
	if got := values(stored(t, f.e, "app-logs")); !slices.Equal(got, want) {
		t.Fatalf("stored %q\nwant %q", got, want)
	}
}

// Promise: a small body cannot make the broker allocate without bound: a
// zstd body whose frame asks for a window past 8 MiB (the limit of the
// zstd content coding, RFC 9659) is refused 413 before the decoder
// allocates that window (10 bytes asking for 256 MiB each, times the
// produces in flight, would exhaust memory), and nothing is stored; a
// window of 8 MiB is decoded.
func TestProduceZstdWindowBounded(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	// A zstd frame: magic, frame header descriptor 0 (window descriptor
	// follows, no content size), window descriptor (exponent e: a window
	// of 2^(e+10)), one raw last block holding "x\n".
	frame := func(exp byte) []byte {
		return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, exp << 3, 0x11, 0x00, 0x00, 'x', '\n'}
	}
	if err := f.e.CreateTopic("z"); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"Content-Type": "text/plain", "Content-Encoding": "zstd"}
	code, b, _ := f.do(t, "POST", "/topics/z/messages", hdr, bytes.NewReader(frame(18))) // 256 MiB
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a frame asking for a 256 MiB window: %d %s, want 413", code, b)
	}
	if got := stored(t, f.e, "z"); len(got) != 0 {
		t.Fatalf("a refused body stored %q", values(got))
	}
	code, b, _ = f.do(t, "POST", "/topics/z/messages", hdr, bytes.NewReader(frame(13))) // 8 MiB
	if code != http.StatusOK {
		t.Fatalf("a frame with an 8 MiB window: %d %s, want 200", code, b)
	}
	if got := values(stored(t, f.e, "z")); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("stored %q", got)
	}
}
