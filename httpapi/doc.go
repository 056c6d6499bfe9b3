// Package httpapi is haraqa's HTTP API: produce, consume, follow and topic
// administration for log shippers (Vector, Fluent Bit, syslog-ng http(),
// rsyslog omhttp) and any language with an HTTP client. Register mounts
// its routes on the broker's one HTTP mux (package web owns the listener);
// openapi.json, served at /openapi.json, documents every route.
//
// It reaches storage only through the logsvc interfaces. A produce body
// (NDJSON, text lines, a JSON array, or one binary message; gzip or zstd
// Content-Encoding) is decompressed and split as it is read, straight into
// one record.Builder, so its messages are held once; the finished batch is
// appended as one batch (all messages stored, or none) and answered once
// stored per the fsync policy. An Idempotency-Key header makes a retry
// safe: the key becomes an idempotent producer id, and the engine answers
// a repeated batch with the offset it stored it at.
//
// Concurrency: an API is safe for concurrent use; each request runs on
// net/http's goroutine, bounded by Options.MaxInFlight (produces),
// Options.MaxInFlightBytes and Options.MaxStreams.
//
// Example:
//
//	mux := http.NewServeMux()
//	httpapi.Register(mux, eng, httpapi.Options{AutoCreateTopics: true})
//	http.ListenAndServe("127.0.0.1:4354", mux)
package httpapi
