// Package server serves haraqa's wire protocol (netproto, PROTOCOL.md) over
// TCP and Unix stream listeners, on top of an engine.Engine.
//
// Per connection, one reader goroutine reads frames; each request is handled
// on its own goroutine, at most Options.MaxInFlight at once (the reader
// takes a slot before it reads a frame, so a full connection is not read:
// backpressure), and answers are written whole under the connection's write
// lock, in whatever order they finish. Produces are the exception to the
// handling order: the reader queues each batch with the engine as it
// arrives (engine.Enqueue), so that a connection's pipelined produces are
// stored in the order they were sent, and the handler awaits the
// acknowledgement. A Watch gives its slot back once registered. Consume answers send the header, then the mapped batch bytes
// with one writev (ConsumeWritev) or sendfile from the segment file
// (ConsumeSendfile).
//
// Limits before allocation: a frame header is checked (netproto's checks
// against MaxBody, then Hello-first) before anything is read or allocated
// for its body, and a large body's buffer grows with the bytes that arrive,
// not with the declared length. A refused header gets one error frame and
// the connection closes; a request-level error answers only its request.
// The first byte of a frame may take IdleTimeout, the rest ReadTimeout; a
// write may take WriteTimeout; connections past MaxConns get TooBusy, and
// a connection must finish its Hello within HelloTimeout. Request bodies
// held by all connections together are bounded by MaxInFlightBytes (past
// it a request gets TooBusy after a short wait); large body buffers are
// mappings given back to a bounded shared pool or unmapped (bodies.go),
// so an idle connection holds little memory.
//
// Lifecycle as in net/http: Serve blocks until Shutdown or Close and then
// returns ErrServerClosed. Shutdown stops accepting and reading, ends long
// polls (answered with what is there) and watches, lets the requests in
// flight finish, and closes the connections: a queued produce is appended
// and acknowledged, one still waiting for room in its topic's queue is
// answered ShuttingDown. The engine is the caller's to close after.
//
//	e, _ := engine.Open(engine.Options{Dir: "/var/lib/haraqa"})
//	s := server.New(e, server.Options{})
//	l, _ := server.Listen("tcp://127.0.0.1:4353")
//	go s.Serve(l)
//	...
//	s.Shutdown(ctx)
//	e.Close()
package server
