package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/server"
)

// A Dial option given a value it cannot take makes Dial fail with an
// error that names the option, instead of the value being silently
// ignored; good values still dial.
func TestDialOptionsValidated(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	ctx := testCtx(t)
	bad := []struct {
		opt  client.Option
		name string
	}{
		{client.WithDialTimeout(0), "WithDialTimeout(0s)"},
		{client.WithDialTimeout(-time.Second), "WithDialTimeout(-1s)"},
		{client.WithWriteTimeout(-1), "WithWriteTimeout"},
		{client.WithMaxBody(100), "WithMaxBody(100)"},
		{client.WithReconnect(0, time.Second), "WithReconnect"},
		{client.WithReconnect(time.Second, time.Millisecond), "WithReconnect(1s, 1ms)"},
		{client.WithLogger(nil), "WithLogger(nil)"},
		{client.WithCompression(record.Codec(9)), "WithCompression"},
		{client.WithToken(strings.Repeat("x", 1<<16)), "WithToken"},
		{client.WithHooks(42), "WithHooks: int"},
		{client.WithTransformer(nil), "WithTransformer"},
	}
	for _, tc := range bad {
		c, err := client.Dial(ctx, b.Addr, tc.opt)
		if err == nil {
			c.Close()
			t.Errorf("%s: dialled", tc.name)
			continue
		}
		if !errors.Is(err, client.ErrBadOption) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Two bad options: both named.
	_, err := client.Dial(ctx, b.Addr, client.WithDialTimeout(-1), client.WithMaxBody(1))
	if err == nil || !strings.Contains(err.Error(), "WithDialTimeout") || !strings.Contains(err.Error(), "WithMaxBody") {
		t.Errorf("two bad options: %v", err)
	}
	c, err := client.Dial(ctx, b.Addr, client.WithDialTimeout(time.Second), client.WithWriteTimeout(time.Second),
		client.WithMaxBody(1<<20), client.WithReconnect(time.Millisecond, time.Second), client.WithReconnect(-1, 0),
		client.WithCompression(record.CodecS2))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// A Producer given an option value it cannot take fails every Send,
// Flush and Close with an error naming the option, instead of quietly
// running with a default the caller did not ask for (NewProducer returns
// no error, so the first call must); good values still produce.
func TestProducerOptionsValidated(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{}, server.Options{})
	ctx := testCtx(t)
	c, err := client.Dial(ctx, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "opts"); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		opt  client.ProducerOption
		name string
	}{
		{client.ProducerMaxBytes(0), "ProducerMaxBytes(0)"},
		{client.ProducerMaxBytes(-1), "ProducerMaxBytes(-1)"},
		{client.ProducerMaxMessages(0), "ProducerMaxMessages(0)"},
		{client.ProducerLinger(-time.Millisecond), "ProducerLinger(-1ms)"},
		{client.ProducerBufferBytes(-5), "ProducerBufferBytes(-5)"},
		{client.ProducerMaxInFlight(0), "ProducerMaxInFlight(0)"},
	}
	for _, tc := range bad {
		p := client.NewProducer(c, "opts", tc.opt)
		for name, err := range map[string]error{
			"Send":        p.Send(ctx, []byte("x")),
			"SendMessage": p.SendMessage(ctx, client.Message{Value: []byte("x")}),
			"Flush":       p.Flush(ctx),
			"Close":       p.Close(ctx),
		} {
			if !errors.Is(err, client.ErrBadOption) || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("%s: %s: %v", tc.name, name, err)
			}
		}
	}
	// Two bad options: both named.
	p := client.NewMultiProducer(c, client.ProducerMaxBytes(0), client.ProducerMaxInFlight(-2))
	if err := p.Send(ctx, "opts", []byte("x")); err == nil || !strings.Contains(err.Error(), "ProducerMaxBytes") ||
		!strings.Contains(err.Error(), "ProducerMaxInFlight") {
		t.Errorf("two bad options: %v", err)
	}
	p.Close(ctx)
	// Nothing was stored by the refused producers; good values produce.
	good := client.NewProducer(c, "opts", client.ProducerMaxBytes(1<<10), client.ProducerMaxMessages(2),
		client.ProducerLinger(0), client.ProducerBufferBytes(1<<12), client.ProducerMaxInFlight(2))
	for range 3 {
		if err := good.Send(ctx, []byte("ok")); err != nil {
			t.Fatal(err)
		}
	}
	if err := good.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, end, err := c.Offsets(ctx, "opts")
	if err != nil {
		t.Fatal(err)
	}
	if end != 3 {
		t.Fatalf("topic end %d, want 3", end)
	}
}
