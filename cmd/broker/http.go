package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/httpapi"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/metrics"
	"github.com/haraqa/haraqa/server"
	"github.com/haraqa/haraqa/web"
)

// readiness is what /readyz checks: the engine open (not still recovering,
// not closing), enough healthy volumes for a produce (-min-volumes), and
// every protocol listener serving.
type readiness struct {
	minVolumes int
	engine     atomic.Pointer[engine.Engine] // set once open; nil again when shutting down
	serving    atomic.Int32                  // protocol listeners serving
	listeners  int32
	stopping   atomic.Bool
}

func (r *readiness) checks() []web.Check {
	return []web.Check{
		{Name: "engine", Check: r.engineOpen},
		{Name: "volumes", Check: r.volumes},
		{Name: "listeners", Check: r.listening},
	}
}

func (r *readiness) engineOpen() error {
	switch {
	case r.stopping.Load():
		return errors.New("shutting down")
	case r.engine.Load() == nil:
		return errors.New("opening the data directories (recovery)")
	}
	return nil
}

func (r *readiness) volumes() error {
	e := r.engine.Load()
	if e == nil {
		return errors.New("engine not open")
	}
	var bad []string
	healthy := 0
	for _, v := range e.Volumes() {
		if v.State == engine.VolumeHealthy {
			healthy++
		} else {
			bad = append(bad, v.Dir+" "+v.State.String())
		}
	}
	if healthy < r.minVolumes {
		return fmt.Errorf("%d healthy volumes, -min-volumes %d (%s)", healthy, r.minVolumes, strings.Join(bad, ", "))
	}
	return nil
}

func (r *readiness) listening() error {
	if n := r.serving.Load(); n < r.listeners {
		return fmt.Errorf("%d of %d protocol listeners serving", n, r.listeners)
	}
	return nil
}

// mountRoutes mounts the other front ends' routes on the -http mux once
// the engine and server are up: the place for httpapi.Register(mux, ...).
// The mux's own routes (/, /metrics, /healthz, /readyz, /debug/pprof/) are
// taken.
func mountRoutes(mux *http.ServeMux, c *config, svc logsvc.Service, e *engine.Engine, srv *server.Server, obs *observers, log *slog.Logger) {
	mountAPI(mux, c, svc, obs, log)
}

// observers are the metrics fed by the engine and the server; nil without
// -http (then the hot paths observe nothing).
type observers struct{ m *metrics.Metrics }

func (o *observers) engine() engine.Observer {
	if o == nil {
		return nil
	}
	return o.m
}

func (o *observers) server() server.RequestObserver {
	if o == nil {
		return nil
	}
	return o.m
}

// attach points the scrape-time metrics at the open engine (its topics,
// volumes and consumer groups) and server.
func (o *observers) attach(e *engine.Engine, srv *server.Server) {
	if o == nil {
		return
	}
	o.m.Attach(metrics.Sources{Engine: e, Conns: srv.Conns, Groups: e})
}

// newWeb builds the HTTP server: probes, metrics, status page, pprof.
func newWeb(c *config, rd *readiness, log *slog.Logger) (*web.Server, *observers) {
	maxTopics := c.metricsMaxTopics
	if maxTopics == 0 {
		maxTopics = -1 // none of their own
	}
	m := metrics.New(metrics.Options{MaxTopics: maxTopics, Version: version})
	var authz *auth.Authorizer
	if c.sec != nil {
		authz = c.sec.auth
	}
	ws := web.New(web.Options{Version: version, Ready: rd.checks(), Pprof: c.pprof, Logger: log, TLSConfig: c.sec.httpTLS(),
		Guard:   httpapi.OpsGuard(c.token, authz),
		Metrics: m.Handler(), Status: web.NewStatusPage(web.StatusOptions{Version: version, Snapshot: m.Snapshot, Ready: rd.checks()})})
	return ws, &observers{m: m}
}

// listenHTTP binds -http, or returns nil when it is empty.
func listenHTTP(c *config) (net.Listener, error) {
	if c.http == "" {
		return nil, nil
	}
	l, err := web.Listen(c.http)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", c.http, err)
	}
	return l, nil
}
