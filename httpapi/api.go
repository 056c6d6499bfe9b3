package httpapi

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/record"
)

// Options configure the API. The zero value works: every limit has a
// default.
type Options struct {
	// AutoCreateTopics creates a topic on its first produce (the broker's
	// -auto-create); without it a produce to a missing topic is a 404.
	AutoCreateTopics bool
	// MaxBodyBytes bounds a produce body, both as sent and once
	// decompressed; past it the answer is 413 (default 32 MiB).
	MaxBodyBytes int64
	// MaxLineBytes bounds one line of an NDJSON or text body, and one
	// element of a JSON array (default 1 MiB).
	MaxLineBytes int
	// MaxMessages bounds the messages of one produce (default 100,000).
	MaxMessages int
	// RequestTimeout bounds reading a produce body: a client that sends
	// it slower gets 408 and nothing is stored (default 30 s).
	RequestTimeout time.Duration
	// WriteTimeout bounds each write of a consume or group fetch answer or a stream
	// (/stream): a client that takes nothing for this long is cut off
	// (a follower's place under MaxStreams freed) (default 30 seconds).
	WriteTimeout time.Duration
	// MaxInFlight bounds the produce requests handled at once; past it
	// the answer is 429 with Retry-After (default 64).
	MaxInFlight int
	// MaxInFlightBytes bounds the message bytes held by the produces in
	// flight together; past it the answer is 429 (default 256 MiB).
	MaxInFlightBytes int64
	// MaxWait bounds the wait= of a consume (default 30 s).
	MaxWait time.Duration
	// MaxConsumeBytes bounds the stored bytes one consume reads (default
	// 4 MiB; at least one batch is always read).
	MaxConsumeBytes int64
	// MaxStreams bounds the /stream followers at once (default 1024).
	MaxStreams int
	// Token, when set, must be presented as "Authorization: Bearer
	// <token>" on every route but /openapi.json (the broker's -token);
	// without it the answer is 401. With Auth set, Token is not consulted
	// (auth.Load takes it).
	Token string
	// Auth, when set, identifies each request's client by its bearer
	// token or, without one, its TLS client certificate (401 when
	// unknown), and checks the route's operation on the topic (403 when
	// refused): produce for a produce, consume for reads, offsets,
	// streams and consumer groups (a consumer creates its group), admin
	// for topic create, delete and truncate and for group delete.
	// Listings show only the topics the client has some permission on.
	Auth *auth.Authorizer
	// Logger receives what the API logs (default: discard).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 1 << 20
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = 100_000
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = 256 << 20
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.MaxConsumeBytes <= 0 {
		o.MaxConsumeBytes = 4 << 20
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// API is the HTTP front end of a log service.
type API struct {
	svc  logsvc.Service
	opts Options

	inflight  atomic.Int32 // produces being handled
	heldBytes atomic.Int64 // message bytes the produces in flight hold
	streams   atomic.Int32 // /stream followers

	builders sync.Pool // *record.Builder

	// Plain counters for /metrics (Counts): answers per route and status
	// class, messages stored and sent.
	answers            [][numClasses]atomic.Uint64 // by route index
	produced, consumed atomic.Uint64
}

// Status classes counted per route: 2xx (and 1xx), 3xx, 4xx, 5xx.
const numClasses = 4

var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx"}

// RouteCount is one counter of Counts.
type RouteCount struct {
	Route string // "POST /topics/{topic}/messages"
	Class string // "2xx", "3xx", "4xx" or "5xx"
	N     uint64
}

// Counts returns the answers given so far, per route and status class,
// every pair listed (zero included, so a collector's series are fixed).
func (a *API) Counts() []RouteCount {
	out := make([]RouteCount, 0, len(routes)*numClasses)
	for i, r := range routes {
		for c := range numClasses {
			out = append(out, RouteCount{Route: r.method + " " + r.path, Class: classNames[c], N: a.answers[i][c].Load()})
		}
	}
	return out
}

// Messages returns the messages stored by produces and sent by consumes,
// streams and group fetches so far.
func (a *API) Messages() (produced, consumed uint64) { return a.produced.Load(), a.consumed.Load() }

// statusWriter records the status of an answer. Unwrap lets
// http.ResponseController reach the connection's writer (flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) class() int {
	switch c := w.code; {
	case c == 0 || c < 300:
		return 0
	case c < 400:
		return 1
	case c < 500:
		return 2
	}
	return 3
}

// route is one route of the API: Register mounts exactly these, and the
// OpenAPI document must describe exactly these (openapi_test.go).
type route struct {
	method, path string
	handle       func(*API, http.ResponseWriter, *http.Request)
	op           access
}

// access is what a route needs of the client (Options.Auth).
type access int

const (
	open    access = iota // nothing: the OpenAPI document
	listing               // an identified client; the answer is filtered
	produce
	consume
	admin
)

// authOp maps an access onto the auth package's operation.
var authOp = map[access]auth.Op{produce: auth.Produce, consume: auth.Consume, admin: auth.Admin}

// routes lists every route of the API.
var routes = []route{
	{"GET", "/openapi.json", (*API).openapi, open},
	{"GET", "/topics", (*API).listTopics, listing},
	{"GET", "/topics/{topic}", (*API).describeTopic, consume},
	{"PUT", "/topics/{topic}", (*API).createTopic, admin},
	{"DELETE", "/topics/{topic}", (*API).deleteTopic, admin},
	{"GET", "/topics/{topic}/offsets", (*API).offsets, consume},
	{"POST", "/topics/{topic}/truncate", (*API).truncate, admin},
	{"POST", "/topics/{topic}/messages", (*API).produce, produce},
	{"GET", "/topics/{topic}/messages", (*API).consume, consume},
	{"GET", "/topics/{topic}/stream", (*API).stream, consume},
	{"GET", "/topics/{topic}/groups", (*API).listGroups, consume},
	{"PUT", "/topics/{topic}/groups/{group}", (*API).createGroup, consume},
	{"GET", "/topics/{topic}/groups/{group}", (*API).describeGroup, consume},
	{"DELETE", "/topics/{topic}/groups/{group}", (*API).deleteGroup, admin},
	{"POST", "/topics/{topic}/groups/{group}/members", (*API).joinGroup, consume},
	{"DELETE", "/topics/{topic}/groups/{group}/members/{member}", (*API).leaveGroup, consume},
	{"POST", "/topics/{topic}/groups/{group}/fetch", (*API).groupFetch, consume},
	{"POST", "/topics/{topic}/groups/{group}/ack", (*API).groupAck, consume},
	{"POST", "/topics/{topic}/groups/{group}/nack", (*API).groupNack, consume},
	{"POST", "/topics/{topic}/groups/{group}/extend", (*API).groupExtend, consume},
}

// New returns the API over svc.
func New(svc logsvc.Service, opts Options) *API {
	return &API{svc: svc, opts: opts.withDefaults(), answers: make([][numClasses]atomic.Uint64, len(routes))}
}

// Register mounts the API's routes on mux (Go 1.22 patterns: "METHOD
// /path/{name}") and returns the API.
func Register(mux *http.ServeMux, svc logsvc.Service, opts Options) *API {
	a := New(svc, opts)
	for i, r := range routes {
		mux.HandleFunc(r.method+" "+r.path, func(rw http.ResponseWriter, req *http.Request) {
			w := &statusWriter{ResponseWriter: rw}
			defer func() { a.answers[i][w.class()].Add(1) }()
			if r.op != open && !a.authorized(w, req, r.op) {
				return
			}
			r.handle(a, w, req)
		})
	}
	return a
}

// principalKey keys the request's identified client in its context.
type principalKey struct{}

// authorized identifies the client and checks op on the route's topic,
// answering 401 (unknown client, wrong token) or 403 (refused) otherwise.
func (a *API) authorized(w http.ResponseWriter, r *http.Request, op access) bool {
	p, ok := identify(w, r, a.opts.Token, a.opts.Auth)
	if !ok {
		return false
	}
	if aop, ok := authOp[op]; ok && a.opts.Auth != nil {
		if err := a.opts.Auth.Authorize(p, aop, r.PathValue("topic")); err != nil {
			fail(w, http.StatusForbidden, apiError{Error: "unauthorized: " + err.Error()})
			return false
		}
	}
	*r = *r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	return true
}

// identify finds the request's client by its bearer token or TLS client
// certificate: with authz, a client it lists; without, any request when
// token is empty, else one bearing token. Otherwise it answers 401 and
// reports false.
func identify(w http.ResponseWriter, r *http.Request, token string, authz *auth.Authorizer) (*auth.Principal, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	if !ok {
		tok = "" // another scheme, or none
	}
	if authz == nil {
		if token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(token)) == 1 {
			return nil, true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="haraqa"`)
		fail(w, http.StatusUnauthorized, apiError{Error: "missing or wrong token: send Authorization: Bearer <token>"})
		return nil, false
	}
	var certs []*x509.Certificate
	if r.TLS != nil {
		certs = r.TLS.PeerCertificates
	}
	p, err := authz.Identify([]byte(tok), certs)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="haraqa"`)
		fail(w, http.StatusUnauthorized, apiError{Error: "unauthorized: " + err.Error()})
		return nil, false
	}
	return p, true
}

// OpsGuard guards the operator's routes of the -http listener (status
// page, metrics, profiler), which show every topic's and group's name:
// without a token or authz it lets every request through; with a token, a
// request must bear it; with authz, its client must hold admin on every
// topic (the pattern "*"). Otherwise 401 (unknown client) or 403.
func OpsGuard(token string, authz *auth.Authorizer) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		if token == "" && authz == nil {
			return h
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := identify(w, r, token, authz)
			if !ok {
				return
			}
			if authz != nil {
				if err := authz.Authorize(p, auth.Admin, "*"); err != nil {
					fail(w, http.StatusForbidden, apiError{Error: "unauthorized: the status page, metrics and profiler need admin on every topic (pattern \"*\"): " + err.Error()})
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
}

// mayList reports whether the request's client may see topic in a
// listing: it has some permission on it.
func (a *API) mayList(r *http.Request, topic string) bool {
	if a.opts.Auth == nil {
		return true
	}
	p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
	for _, op := range auth.Ops() {
		if a.opts.Auth.Allowed(p, op, topic) {
			return true
		}
	}
	return false
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error string `json:"error"`
	// Line is the 1-based line (NDJSON, text) or element (JSON array) of
	// a produce body the error is about; 0 when none.
	Line int `json:"line,omitempty"`
	// Start and End are the topic's valid range, for an offset outside it.
	Start *uint64 `json:"start,omitempty"`
	End   *uint64 `json:"end,omitempty"`
	// Retriable says whether the same request may succeed later.
	Retriable bool `json:"retriable,omitempty"`
	// Leader is the topic's leader in a cluster, when this node is not
	// the one to ask and knows it: its node id and the address of its
	// native listener.
	Leader     *uint64 `json:"leader,omitempty"`
	LeaderAddr string  `json:"leader_addr,omitempty"`
}

// writeJSON answers code with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"httpapi: cannot encode the answer"}`)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// fail answers an error with its status: retriable ones carry Retry-After.
func fail(w http.ResponseWriter, code int, e apiError) {
	if e.Retriable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, e)
}

// badRequest answers 400 with reason.
func badRequest(w http.ResponseWriter, reason string) {
	fail(w, http.StatusBadRequest, apiError{Error: reason})
}

// failErr answers an error of the log service with the status that says
// what it is.
func (a *API) failErr(w http.ResponseWriter, err error) {
	code, e := statusOf(err)
	if code == http.StatusInternalServerError {
		a.opts.Logger.Error("httpapi: request failed", "err", err)
	}
	fail(w, code, e)
}

// statusOf maps an error of the log service onto an HTTP status.
func statusOf(err error) (int, apiError) {
	e := apiError{Error: err.Error()}
	var re *engine.RangeError
	switch {
	case errors.As(err, &re):
		e.Start, e.End = &re.Start, &re.End
		return http.StatusRequestedRangeNotSatisfiable, e
	case errors.Is(err, engine.ErrTopicNotFound), errors.Is(err, engine.ErrGroupNotFound):
		return http.StatusNotFound, e
	case errors.Is(err, engine.ErrGroupExists), errors.Is(err, engine.ErrStaleMember), errors.Is(err, engine.ErrNotLeased):
		return http.StatusConflict, e
	case errors.Is(err, engine.ErrGroupLimit):
		e.Retriable = true
		return http.StatusTooManyRequests, e
	case errors.Is(err, engine.ErrBadGroupRequest):
		return http.StatusBadRequest, e
	case errors.Is(err, engine.ErrTopicExists):
		return http.StatusConflict, e
	case errors.Is(err, engine.ErrBadTopicName):
		return http.StatusBadRequest, e
	case errors.Is(err, engine.ErrSequence):
		e.Error = "Idempotency-Key reused for a different body: " + err.Error()
		return http.StatusUnprocessableEntity, e
	case errors.Is(err, record.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, e
	case errors.Is(err, engine.ErrInvalidBatch):
		return http.StatusBadRequest, e
	case errors.Is(err, logsvc.ErrNotLeader), errors.Is(err, logsvc.ErrInDoubt):
		// A cluster node that cannot serve the topic now, or a produce
		// not known committed in time (it may still be stored).
		e.Retriable = true
		var lh logsvc.LeaderHint
		if errors.As(err, &lh) {
			if id, addr := lh.LeaderNode(); id != 0 {
				e.Leader, e.LeaderAddr = &id, addr
			}
		}
		return http.StatusServiceUnavailable, e
	case errors.Is(err, engine.ErrStorage), errors.Is(err, engine.ErrResource), errors.Is(err, engine.ErrClosed):
		e.Retriable = true
		return http.StatusServiceUnavailable, e
	case errors.Is(err, context.DeadlineExceeded):
		e.Retriable = true
		return http.StatusServiceUnavailable, e
	}
	return http.StatusInternalServerError, e
}
