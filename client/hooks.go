package client

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// Hook is a value that observes a Client (WithHooks): it implements one or
// more of the Hook… interfaces below, and the Client calls what it
// implements. Hooks run on the goroutine of the event (a caller's, a
// connection's reader, a Producer's acker): they must be quick and must
// not call back into the Client. Packages client/hooks/prom (Prometheus
// metrics) and client/hooks/otel (OpenTelemetry traces) are hooks, each a
// module of its own so that the client imports neither.
type Hook any

// Opcode is a protocol request type (netproto.Opcode).
type Opcode = netproto.Opcode

// HookConnect is called after each connection attempt (Dial, a redial, a
// watch's connection): d is how long the dial and Hello took, err why it
// failed (nil: connected).
type HookConnect interface {
	OnConnect(addr string, d time.Duration, err error)
}

// HookDisconnect is called once when a connection ends: err is why
// (ErrClosed when the Client or watch closed it).
type HookDisconnect interface {
	OnDisconnect(addr string, err error)
}

// HookRequestWritten is called after a request was written: bytes is the
// whole frame, err a failed write (the connection then ends).
type HookRequestWritten interface {
	OnRequestWritten(op Opcode, bytes int, err error)
}

// HookResponseRead is called when a response was read: bytes is the whole
// frame, d the time since its request was written, status the broker's
// code (netproto.CodeOK on success). Watch events are not reported.
type HookResponseRead interface {
	OnResponseRead(op Opcode, bytes int, d time.Duration, status Code)
}

// HookProduceMessage is called with every message a Producer,
// MultiProducer or ProduceMessages is about to buffer or send, with the
// context it was sent with, before it is copied (and before a
// WithTransformer seals its value). It may add headers (a trace context)
// by appending to m.Headers; the caller's slice is never written. Messages
// of Produce and Producer.Send are then sent in the extended encoding.
type HookProduceMessage interface {
	OnProduceMessage(ctx context.Context, m *Message)
}

// HookBatchProduced is called for every batch a Producer, MultiProducer or
// Produce, ProduceMessages, ProduceBatch finished with: count messages of topic stored at base, base+1, ... (err
// nil), or failed with err; bytes is the batch as sent, d the time from its
// first write to the end.
type HookBatchProduced interface {
	OnBatchProduced(topic string, base uint64, count, bytes int, d time.Duration, err error)
}

// HookMessagesConsumed is called after every Consume (also a Consumer's)
// that returned messages: msgs are the messages of topic, valid only
// during the call; d is the time the read took.
type HookMessagesConsumed interface {
	OnMessagesConsumed(topic string, msgs *Messages, d time.Duration)
}

// WithHooks registers hooks (see Hook). A value that implements none of
// the Hook… interfaces is an error of Dial.
func WithHooks(hooks ...Hook) Option {
	return func(c *config) {
		for _, h := range hooks {
			if !c.hooks.add(h) {
				c.badf("WithHooks: %T implements none of the Hook interfaces", h)
			}
		}
	}
}

// hooks are the registered hooks, by kind.
type hooks struct {
	connect    []HookConnect
	disconnect []HookDisconnect
	written    []HookRequestWritten
	read       []HookResponseRead
	message    []HookProduceMessage
	produced   []HookBatchProduced
	consumed   []HookMessagesConsumed
	any        bool
}

func (hs *hooks) add(h Hook) bool {
	n := 0
	if x, ok := h.(HookConnect); ok {
		hs.connect, n = append(hs.connect, x), n+1
	}
	if x, ok := h.(HookDisconnect); ok {
		hs.disconnect, n = append(hs.disconnect, x), n+1
	}
	if x, ok := h.(HookRequestWritten); ok {
		hs.written, n = append(hs.written, x), n+1
	}
	if x, ok := h.(HookResponseRead); ok {
		hs.read, n = append(hs.read, x), n+1
	}
	if x, ok := h.(HookProduceMessage); ok {
		hs.message, n = append(hs.message, x), n+1
	}
	if x, ok := h.(HookBatchProduced); ok {
		hs.produced, n = append(hs.produced, x), n+1
	}
	if x, ok := h.(HookMessagesConsumed); ok {
		hs.consumed, n = append(hs.consumed, x), n+1
	}
	hs.any = hs.any || n > 0
	return n > 0
}

func (hs *hooks) batchProduced(topic string, base uint64, count, bytes int, d time.Duration, err error) {
	for _, h := range hs.produced {
		h.OnBatchProduced(topic, base, count, bytes, d, err)
	}
}

// beforeProduce runs the HookProduceMessage hooks and the transformer on
// m, a copy the caller owns (its Headers slice still the sender's).
func (c *Client) beforeProduce(ctx context.Context, topic string, m *Message) error {
	if len(c.cfg.hooks.message) > 0 {
		m.Topic = topic
		m.Headers = m.Headers[:len(m.Headers):len(m.Headers)] // appends copy
		for _, h := range c.cfg.hooks.message {
			h.OnProduceMessage(ctx, m)
		}
	}
	if t := c.cfg.transformer; t != nil {
		m.Headers = m.Headers[:len(m.Headers):len(m.Headers)]
		if err := t.Seal(topic, m); err != nil {
			return &TransformError{Topic: topic, Err: err}
		}
	}
	return nil
}

// rewritesMessages reports whether messages sent as plain values must go
// through beforeProduce (and so the extended encoding).
func (c *Client) rewritesMessages() bool {
	return len(c.cfg.hooks.message) > 0 || c.cfg.transformer != nil
}
