package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// fixture is an engine behind the API on an httptest server.
type fixture struct {
	e   *engine.Engine
	api *API
	srv *httptest.Server
}

func newFixture(t *testing.T, opts Options, eopts engine.Options) *fixture {
	t.Helper()
	if eopts.Dir == "" && len(eopts.Volumes) == 0 {
		eopts.Dir = t.TempDir()
	}
	eopts.Logger = slog.New(slog.DiscardHandler)
	e, err := engine.Open(eopts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api := Register(mux, e, opts)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		e.Close()
	})
	return &fixture{e: e, api: api, srv: srv}
}

// do sends a request and returns the status, the body and the response.
func (f *fixture) do(t *testing.T, method, path string, hdr map[string]string, body io.Reader) (int, []byte, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, b, resp
}

// produce posts body with the content type and wants code.
func (f *fixture) produce(t *testing.T, topic, ctype string, body []byte, code int) []byte {
	t.Helper()
	topic, query, _ := strings.Cut(topic, "?")
	if query != "" {
		query = "?" + query
	}
	got, b, _ := f.do(t, "POST", "/topics/"+topic+"/messages"+query, map[string]string{"Content-Type": ctype}, bytes.NewReader(body))
	if got != code {
		t.Fatalf("produce %s: status %d, want %d: %s", ctype, got, code, b)
	}
	return b
}

// stored reads every message of topic straight from the engine.
func stored(t *testing.T, e *engine.Engine, topic string) []record.Message {
	t.Helper()
	start, end, err := e.Offsets(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Message
	var res engine.ReadResult
	defer res.Release()
	for off := start; off < end; {
		if err := e.Read(topic, off, end-off, 1<<20, &res); err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Chunks {
			s := record.NewScanner(c.Data())
			for s.Next() {
				h := s.Header()
				raw, err := record.Decompress(nil, s.Batch(), h, 0)
				if err != nil {
					t.Fatal(err)
				}
				var it record.Iter
				it.ResetPayload(raw, h)
				o := h.BaseOffset
				for m, ok := it.NextMessage(); ok; m, ok = it.NextMessage() {
					if o >= off {
						m.Value = bytes.Clone(m.Value)
						m.Key = bytes.Clone(m.Key)
						out = append(out, m)
					}
					o++
				}
			}
		}
		off = res.Next()
		res.Release()
	}
	return out
}

// values returns the messages' values as strings.
func values(ms []record.Message) []string {
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = string(ms[i].Value)
	}
	return out
}

// decodeErr reads an error answer.
func decodeErr(t *testing.T, b []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		t.Fatalf("error answer %q is not a JSON error: %v", b, err)
	}
	return e
}

// ndjsonLines splits an NDJSON answer into decoded objects.
func ndjsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("answer line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func removeAll(dir string) error { return os.RemoveAll(dir) }

// mustBatch encodes msgs as one batch.
func mustBatch(msgs ...string) []byte {
	var b record.Builder
	for _, m := range msgs {
		b.Add([]byte(m))
	}
	out, err := b.Finish()
	if err != nil {
		panic(err)
	}
	return out
}
