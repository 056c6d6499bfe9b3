package client

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"
)

// TestTLSConfigNeedsTLSAddress: TLS settings never fall back to clear
// text: WithTLSConfig with an address that is not tls:// (or with nil) is
// refused by Dial before it connects.
func TestTLSConfigNeedsTLSAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, addr := range []string{"tcp://127.0.0.1:1", "127.0.0.1:1", "unix:///tmp/none.sock"} {
		if _, err := Dial(ctx, addr, WithTLSConfig(&tls.Config{})); !errors.Is(err, ErrBadOption) {
			t.Errorf("%s with WithTLSConfig: %v, want ErrBadOption", addr, err)
		}
	}
	if _, err := Dial(ctx, "tls://127.0.0.1:1", WithTLSConfig(nil)); !errors.Is(err, ErrBadOption) {
		t.Errorf("WithTLSConfig(nil): %v, want ErrBadOption", err)
	}
	if _, err := Dial(ctx, "tls://127.0.0.1:1"); err == nil || errors.Is(err, ErrBadOption) {
		t.Errorf("tls:// to a closed port: %v, want a dial error", err)
	}
}
