package otel_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/haraqa/haraqa/client"
	hotel "github.com/haraqa/haraqa/client/hooks/otel"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/internal/testbroker"
	"github.com/haraqa/haraqa/server"
)

// A message produced inside a span and consumed by another Client shows
// as one trace: the publish span is a child of the sender's span, its
// context travels in the message's headers, and the consume span links
// to it; the produce and consume spans carry the topic and offsets.
func TestTraceLinksProduceToConsume(t *testing.T) {
	b := testbroker.Start(t, "tcp", engine.Options{Fsync: engine.FsyncNever, Logger: testbroker.Quiet}, server.Options{Logger: testbroker.Quiet})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(ctx)
	h := hotel.New(hotel.WithTracerProvider(tp))
	prod, err := client.Dial(ctx, b.Addr, client.WithHooks(h))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := client.Dial(ctx, b.Addr, client.WithHooks(h))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := prod.CreateTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Produce(ctx, "orders", []byte("before")); err != nil {
		t.Fatal(err)
	}
	rctx, root := tp.Tracer("test").Start(ctx, "handle request")
	p := client.NewProducer(prod, "orders")
	if err := p.SendMessage(rctx, client.Message{Value: []byte("order 1")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	root.End()

	cs := client.NewConsumer(cons, "orders", 1)
	var got client.Message
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = m
		break
	}
	if string(got.Value) != "order 1" {
		t.Fatalf("consumed %q", got.Value)
	}
	if sc := trace.SpanContextFromContext(h.Extract(ctx, got)); sc.TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("the message's headers carry trace %v, want %v", sc.TraceID(), root.SpanContext().TraceID())
	}

	spans := exp.GetSpans()
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	var publish *tracetest.SpanStub
	for i, s := range byName["orders publish"] {
		if s.Parent.SpanID() == root.SpanContext().SpanID() {
			publish = &byName["orders publish"][i]
		}
	}
	if publish == nil || publish.SpanContext.TraceID() != root.SpanContext().TraceID() || publish.SpanKind != trace.SpanKindProducer {
		t.Fatalf("no publish span under the request's span: %v", names(spans))
	}
	linked := false
	for _, s := range byName["orders consume"] {
		for _, l := range s.Links {
			if l.SpanContext.SpanID() == publish.SpanContext.SpanID() && l.SpanContext.TraceID() == publish.SpanContext.TraceID() {
				linked = true
				if !hasAttr(s, "haraqa.offset.first", 1) {
					t.Errorf("consume span attributes: %v", s.Attributes)
				}
			}
		}
	}
	if !linked {
		t.Fatalf("no consume span links to the publish span: %v", names(spans))
	}
	produced := false
	for _, s := range byName["orders produce"] {
		if hasAttr(s, "haraqa.offset.first", 1) && hasAttr(s, "haraqa.offset.last", 1) {
			produced = true
		}
	}
	if !produced {
		t.Fatalf("no produce span for offset 1: %v", names(spans))
	}
}

func hasAttr(s tracetest.SpanStub, key string, v int64) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.AsInt64() == v {
			return true
		}
	}
	return false
}

func names(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}
