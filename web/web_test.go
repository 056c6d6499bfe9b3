package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve starts s on a loopback port and returns its base URL.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

func fetch(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzReasons checks the readiness probe's contract: 200 when every
// check passes, 503 with each failed check's name and reason as JSON
// otherwise, while /healthz answers 200 either way.
func TestReadyzReasons(t *testing.T) {
	var volErr error
	s := New(Options{Ready: []Check{
		{Name: "engine", Check: func() error { return nil }},
		{Name: "volumes", Check: func() error { return volErr }},
	}})
	base := serve(t, s)
	if code, body := fetch(t, "GET", base+"/readyz"); code != 200 || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Fatalf("ready: %d %s", code, body)
	}
	volErr = errors.New("1 healthy volumes, -min-volumes 2")
	code, body := fetch(t, "GET", base+"/readyz")
	if want := `{"status":"unready","reasons":[{"check":"volumes","error":"1 healthy volumes, -min-volumes 2"}]}`; code != 503 || strings.TrimSpace(body) != want {
		t.Fatalf("unready: %d %s, want 503 %s", code, body, want)
	}
	if code, _ := fetch(t, "GET", base+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
}

// TestMuxRoutes checks that another front end can mount routes on the
// listener's mux, that pprof is served only when asked for, and that the
// server sets its header and idle limits.
func TestMuxRoutes(t *testing.T) {
	s := New(Options{})
	s.Mux().HandleFunc("GET /topics/{topic}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "topic "+r.PathValue("topic"))
	})
	base := serve(t, s)
	if code, body := fetch(t, "GET", base+"/topics/orders"); code != 200 || body != "topic orders" {
		t.Fatalf("mounted route: %d %q", code, body)
	}
	if code, _ := fetch(t, "GET", base+"/debug/pprof/"); code != 404 {
		t.Fatalf("pprof without Pprof: %d, want 404", code)
	}
	if code, _ := fetch(t, "POST", base+"/healthz"); code != 405 {
		t.Fatalf("POST /healthz: %d, want 405", code)
	}
	if s.srv.ReadHeaderTimeout == 0 || s.srv.IdleTimeout == 0 || s.srv.MaxHeaderBytes == 0 {
		t.Fatalf("server limits unset: %+v", s.srv)
	}

	p := New(Options{Pprof: true})
	pbase := serve(t, p)
	if code, body := fetch(t, "GET", pbase+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof: %d", code)
	}
}
