package kafka

import (
	"context"
	"time"
)

// HandleFrame answers one request frame (without its 4-byte size prefix)
// as a connection would and returns the response frame (with its size
// prefix), or nil when the request gets no answer (acks=0 Produce). It
// waits for the answer, at most a second (a Fetch's max wait, a group
// join waiting for other members). It exists for fuzzing and tests of the
// decode path.
func (s *Server) HandleFrame(frame []byte) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c := &conn{s: s, ctx: ctx, cancel: cancel}
	sl := &slot{done: make(chan struct{})}
	c.handle(frame, sl)
	<-sl.done
	return sl.out
}
