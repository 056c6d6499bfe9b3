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
