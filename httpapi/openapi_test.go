package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/engine"
)

// Promise: the OpenAPI document served at /openapi.json describes every
// route the API mounts, and no route it does not mount: each documented
// operation is reached on a live server (not the mux's 404 or 405), and
// each mounted route is documented.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t, Options{}, engine.Options{})
	code, b, _ := f.do(t, "GET", "/openapi.json", nil, nil)
	if code != 200 {
		t.Fatalf("GET /openapi.json: %d", code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %v %q", err, doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(m)+" "+path)
		}
	}
	var mounted []string
	for _, r := range routes {
		mounted = append(mounted, r.method+" "+r.path)
	}
	for _, d := range documented {
		if !slices.Contains(mounted, d) {
			t.Errorf("documented %s is not a route", d)
		}
	}
	for _, m := range mounted {
		if !slices.Contains(documented, m) {
			t.Errorf("route %s is not documented in openapi.json", m)
		}
	}
	// Each documented operation reaches a handler: the mux's own answers
	// to an unknown path or method (404, 405) are plain text; the API
	// answers JSON, NDJSON, an event stream or 204.
	for _, d := range documented {
		method, path, _ := strings.Cut(d, " ")
		path = strings.ReplaceAll(path, "{topic}", "missing-topic")
		req, _ := http.NewRequest(method, f.srv.URL+path, nil)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") || ct == "" && resp.StatusCode != http.StatusNoContent {
			t.Errorf("%s: answered %d %q, not by the API", d, resp.StatusCode, ct)
		}
	}
}
