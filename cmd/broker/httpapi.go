package main

import (
	"flag"
	"log/slog"
	"net/http"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/httpapi"
	"github.com/haraqa/haraqa/logsvc"

	"github.com/prometheus/client_golang/prometheus"
)

// apiConfig holds the HTTP API's limits (-http-max-body ...).
type apiConfig struct {
	maxBody, maxInFlightBytes int64
	maxLine, maxMessages      int
	maxInFlight, maxStreams   int
	requestTimeout            time.Duration
}

// apiFlags adds the HTTP API's flags.
func apiFlags(fs *flag.FlagSet, a *apiConfig) {
	fs.Int64Var(&a.maxBody, "http-max-body", 32<<20, "largest HTTP produce body in bytes, as sent and decompressed (413 past it)")
	fs.IntVar(&a.maxLine, "http-max-line", 1<<20, "longest line of an NDJSON or text produce body in bytes (400 past it)")
	fs.IntVar(&a.maxMessages, "http-max-messages", 100_000, "most messages in one HTTP produce (413 past it)")
	fs.DurationVar(&a.requestTimeout, "http-request-timeout", 30*time.Second, "time an HTTP produce body may take to arrive (408 past it, nothing stored)")
	fs.IntVar(&a.maxInFlight, "http-max-in-flight", 64, "HTTP produces handled at once (429 with Retry-After past it)")
	fs.Int64Var(&a.maxInFlightBytes, "http-max-in-flight-bytes", 256<<20, "message bytes the HTTP produces in flight may hold together (429 past it)")
	fs.IntVar(&a.maxStreams, "http-max-streams", 1024, "HTTP /stream followers at once (429 past it)")
}

// mountAPI registers the HTTP API (package httpapi) on the -http mux, over
// the log service the native listener serves (the engine, or the cluster's
// replicated log), and exports its counters on /metrics.
func mountAPI(mux *http.ServeMux, c *config, svc logsvc.Service, obs *observers, log *slog.Logger) {
	a := c.api
	var authz *auth.Authorizer
	if c.sec != nil {
		authz = c.sec.auth
	}
	api := httpapi.Register(mux, svc, httpapi.Options{AutoCreateTopics: c.autoCreate,
		MaxBodyBytes: min(a.maxBody, int64(c.maxBody), c.segmentBytes), MaxLineBytes: a.maxLine, MaxMessages: a.maxMessages,
		RequestTimeout: a.requestTimeout, MaxInFlight: a.maxInFlight, MaxInFlightBytes: a.maxInFlightBytes,
		MaxWait: c.maxWait, MaxStreams: a.maxStreams, Token: c.token, Auth: authz, Logger: log})
	if obs != nil {
		registerAPIMetrics(obs.m.Registry(), api)
	}
}

// registerAPIMetrics exports the API's counters:
// haraqa_http_api_requests_total{route,code} (code: the status class) and
// haraqa_http_api_messages_total{direction="produced"|"consumed"}.
func registerAPIMetrics(reg *prometheus.Registry, api *httpapi.API) {
	const reqName, reqHelp = "haraqa_http_api_requests_total", "HTTP API answers by route and status class (2xx, 3xx, 4xx, 5xx)."
	for i, rc := range api.Counts() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: reqName, Help: reqHelp,
			ConstLabels: prometheus.Labels{"route": rc.Route, "code": rc.Class}},
			func() float64 { return float64(api.Counts()[i].N) }))
	}
	const msgName, msgHelp = "haraqa_http_api_messages_total", "Messages the HTTP API stored (produced) and sent (consumed: consumes, streams, group fetches)."
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: msgName, Help: msgHelp, ConstLabels: prometheus.Labels{"direction": "produced"}},
		func() float64 { p, _ := api.Messages(); return float64(p) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: msgName, Help: msgHelp, ConstLabels: prometheus.Labels{"direction": "consumed"}},
		func() float64 { _, c := api.Messages(); return float64(c) }))
}
