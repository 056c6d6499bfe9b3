// Package otel is a client.Hook that traces a haraqa Client with
// OpenTelemetry (go.opentelemetry.io/otel). It is a module of its own, so
// the client does not import OpenTelemetry.
//
//	h := otel.New(otel.WithTracerProvider(tp)) // default: the global provider
//	c, err := client.Dial(ctx, addr, client.WithHooks(h))
//
// Spans:
//
//   - "TOPIC publish" (producer) for every message sent, a child of the
//     span in the context it was sent with (Send, SendMessage, SendFunc,
//     Produce…); its context is written into the message's headers
//     (W3C traceparent/tracestate by default), so consumers continue the
//     trace.
//   - "TOPIC produce" (client) for every batch produced: the topic, the
//     offsets stored, the message count, the error.
//   - "TOPIC consume" (consumer) for every read that returned messages:
//     the topic and offsets, linked to the publish span of each message
//     read (up to MaxLinks). Extract gives a message's publish context,
//     for spans of its processing.
package otel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/haraqa/haraqa/client"
)

// MaxLinks bounds the links of one consume span.
const MaxLinks = 128

// Hook creates the spans; register it with client.WithHooks.
type Hook struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// Option configures New.
type Option func(*Hook)

// WithTracerProvider sets where spans go (default: otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(h *Hook) { h.tracer = tp.Tracer("github.com/haraqa/haraqa/client/hooks/otel") }
}

// WithPropagator sets how span contexts are written into and read from
// headers (default: W3C trace context).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(h *Hook) { h.prop = p }
}

// New returns a Hook.
func New(opts ...Option) *Hook {
	h := &Hook{prop: propagation.TraceContext{}}
	for _, o := range opts {
		o(h)
	}
	if h.tracer == nil {
		WithTracerProvider(otel.GetTracerProvider())(h)
	}
	return h
}

// headers is a propagation.TextMapCarrier over a message's headers.
type headers struct{ h *[]client.Header }

func (c headers) Get(key string) string {
	for _, h := range *c.h {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headers) Set(key, value string) {
	*c.h = append(*c.h, client.Header{Key: key, Value: []byte(value)})
}

func (c headers) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, h := range *c.h {
		keys[i] = h.Key
	}
	return keys
}

func system() attribute.KeyValue { return attribute.String("messaging.system", "haraqa") }

// OnProduceMessage starts and ends the message's publish span and writes
// its context into the message's headers.
func (h *Hook) OnProduceMessage(ctx context.Context, m *client.Message) {
	ctx, span := h.tracer.Start(ctx, m.Topic+" publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(system(), attribute.String("messaging.destination.name", m.Topic),
			attribute.String("messaging.operation.type", "create")))
	h.prop.Inject(ctx, headers{&m.Headers})
	span.End()
}

// OnBatchProduced records a span for one produce request.
func (h *Hook) OnBatchProduced(topic string, base uint64, count, bytes int, d time.Duration, err error) {
	end := time.Now()
	_, span := h.tracer.Start(context.Background(), topic+" produce", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(end.Add(-d)),
		trace.WithAttributes(system(), attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.operation.type", "send"),
			attribute.Int("messaging.batch.message_count", count), attribute.Int("messaging.message.body.size", bytes)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.Int64("haraqa.offset.first", int64(base)), attribute.Int64("haraqa.offset.last", int64(base)+int64(count)-1))
	}
	span.End(trace.WithTimestamp(end))
}

// OnMessagesConsumed records a span for one read, linked to the publish
// spans of the messages read.
func (h *Hook) OnMessagesConsumed(topic string, msgs *client.Messages, d time.Duration) {
	end := time.Now()
	var links []trace.Link
	seen := map[trace.SpanID]bool{}
	for i := 0; i < msgs.Len() && len(links) < MaxLinks; i++ {
		m := msgs.At(i)
		sc := trace.SpanContextFromContext(h.prop.Extract(context.Background(), headers{&m.Headers}))
		if sc.IsValid() && !seen[sc.SpanID()] {
			seen[sc.SpanID()] = true
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.Int64("haraqa.offset", int64(m.Offset))}})
		}
	}
	first := msgs.Next() - uint64(msgs.Len())
	_, span := h.tracer.Start(context.Background(), topic+" consume", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(end.Add(-d)), trace.WithLinks(links...),
		trace.WithAttributes(system(), attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.operation.type", "receive"),
			attribute.Int("messaging.batch.message_count", msgs.Len()),
			attribute.Int64("haraqa.offset.first", int64(first)), attribute.Int64("haraqa.offset.last", int64(msgs.Next())-1)))
	span.End(trace.WithTimestamp(end))
}

// Extract returns ctx with the span context m's headers carry (its publish
// span) as the remote parent: start the spans of m's processing from it.
func (h *Hook) Extract(ctx context.Context, m client.Message) context.Context {
	return h.prop.Extract(ctx, headers{&m.Headers})
}
