package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Server timeouts: a client gets ReadHeaderTimeout to send its request
// line and headers, an idle keep-alive connection is closed after
// IdleTimeout, and headers are capped at MaxHeaderBytes. No whole-request
// or write timeout is set: pprof profiles and long polls of the HTTP API
// take as long as asked (their handlers bound themselves).
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
)

// A Check is one readiness condition: Check returns nil when it holds, or
// why not.
type Check struct {
	Name  string
	Check func() error
}

// Options configures a Server. The zero value serves /healthz and an
// always-ready /readyz.
type Options struct {
	// Version is shown on the status page.
	Version string
	// Ready are the conditions /readyz checks, in order.
	Ready []Check
	// Metrics, if set, is served at /metrics.
	Metrics http.Handler
	// Status, if set, is served at / (the status page).
	Status http.Handler
	// Pprof mounts net/http/pprof under /debug/pprof/.
	Pprof bool
	// Guard, if set, wraps the status page, /metrics and /debug/pprof/
	// (they show every topic's name); /healthz and /readyz stay open for
	// probes.
	Guard func(http.Handler) http.Handler
	// TLSConfig, if set, makes Serve speak HTTPS.
	TLSConfig *tls.Config
	// Logger receives the HTTP server's own errors (default slog.Default()).
	Logger *slog.Logger
}

// Server is the HTTP listener's server.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server
}

// New returns a Server with the operational routes mounted.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{opts: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	guard := o.Guard
	if guard == nil {
		guard = func(h http.Handler) http.Handler { return h }
	}
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", guard(o.Metrics))
	}
	if o.Status != nil {
		s.mux.Handle("GET /{$}", guard(o.Status))
	}
	if o.Pprof {
		s.mux.Handle("GET /debug/pprof/", guard(http.HandlerFunc(pprof.Index)))
		s.mux.Handle("GET /debug/pprof/cmdline", guard(http.HandlerFunc(pprof.Cmdline)))
		s.mux.Handle("GET /debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
		s.mux.Handle("GET /debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
		s.mux.Handle("POST /debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
		s.mux.Handle("GET /debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
	}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		TLSConfig:         o.TLSConfig,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Mux returns the server's mux, for other front ends to register their
// routes on (Go 1.22 patterns: "GET /topics/{topic}"). The routes above
// are taken.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Listen binds addr ("host:port") for Serve.
func Listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// Serve serves HTTP (HTTPS with Options.TLSConfig) on l until Shutdown;
// it then returns http.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	if s.opts.TLSConfig != nil {
		return s.srv.ServeTLS(l, "", "")
	}
	return s.srv.Serve(l)
}

// Shutdown stops accepting, waits for the requests in flight until ctx
// ends, and closes the connections.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.srv.Close()
	}
	return err
}

// healthz answers 200 while the process serves HTTP at all: the liveness
// probe. It checks nothing else on purpose: a broker recovering its data at
// start is alive, and restarting it would only start the recovery again.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// Unready is /readyz's 503 body: the checks that failed, with their reasons.
type Unready struct {
	Status  string   `json:"status"` // "unready"
	Reasons []Reason `json:"reasons"`
}

// Reason is one failed readiness check.
type Reason struct {
	Check string `json:"check"`
	Error string `json:"error"`
}

// readyz answers 200 {"status":"ready"} when every check holds, else 503
// with the failed checks: the readiness probe.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var reasons []Reason
	for _, c := range s.opts.Ready {
		if err := c.Check(); err != nil {
			reasons = append(reasons, Reason{Check: c.Name, Error: err.Error()})
		}
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, Unready{Status: "unready", Reasons: reasons})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("web: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
