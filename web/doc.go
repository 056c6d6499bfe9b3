// Package web owns the broker's one HTTP listener (the -http flag): an
// *http.ServeMux with Go 1.22 patterns on which the operational routes are
// mounted (/healthz, /readyz, /metrics, the status page at /, and
// /debug/pprof/ when asked for), and on which other front ends (the HTTP
// API) register theirs through Mux.
//
// Concurrency: a Server is safe for concurrent use; routes may be
// registered on Mux while it serves. The readiness checks and the status
// source are called on request goroutines and must be safe for that.
//
//	ws := web.New(web.Options{Version: "v1.2.3", Ready: checks})
//	l, _ := web.Listen("127.0.0.1:4354")
//	httpapi.Register(ws.Mux(), ...)
//	go ws.Serve(l)
//	defer ws.Shutdown(ctx)
package web
