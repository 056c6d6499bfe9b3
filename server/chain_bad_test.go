package server

import (
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Promise: bad input gets a clear error, never a panic. A Consume or
// ConsumeNext whose body does not decode, sent as the first consume of a
// connection (no link kept yet), is refused with Malformed and the broker
// goes on serving other connections.
func TestConsumeBodyMalformedFirst(t *testing.T) {
	for _, op := range []netproto.Opcode{netproto.OpConsume, netproto.OpConsumeNext} {
		t.Run(op.String(), func(t *testing.T) {
			e := openEngine(t, engine.Options{})
			ts := startServer(t, e, "tcp", Options{AutoCreateTopics: true})
			other := mustDial(t, ts, "")
			other.mustProduce(t, "t", batchOf(t, "m0"))
			p := mustDial(t, ts, "")
			p.mustWrite(t, netproto.AppendFrame(nil, netproto.Header{Opcode: op, RequestID: 5}, rawBody{1, 2, 3}))
			expectRefused(t, p, netproto.CodeMalformed)
			other.mustProduce(t, "t", batchOf(t, "m1"))
		})
	}
}

// rawBody encodes as the bytes it holds.
type rawBody []byte

func (b rawBody) AppendTo(dst []byte) []byte { return append(dst, b...) }
