package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// TestDialSocketPath checks that Dial takes a bare socket path, as hrq and
// the broker's -unix flag do, not only unix:///path.
func TestDialSocketPath(t *testing.T) {
	b := startBroker(t, "unix", engine.Options{}, server.Options{})
	path := strings.TrimPrefix(b.Addr, "unix://")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial(%q): %v", path, err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
}

// TestDialErrorMessages checks what a failed first dial says: "cannot connect to
// ADDR: reason" (still a retriable disconnection), and that an address
// that cannot be parsed is ErrBadAddress, not retriable.
func TestDialErrorMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	missing := filepath.Join(t.TempDir(), "no.sock")
	_, err := client.Dial(ctx, missing)
	if want := "client: cannot connect to " + missing + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Dial(%q): %v, want %q", missing, err, want)
	}
	var de *client.DialError
	if !errors.As(err, &de) || !errors.Is(err, client.ErrDisconnected) || !client.IsRetriable(err) {
		t.Errorf("Dial(%q): %v is not a retriable *DialError", missing, err)
	}
	for _, addr := range []string{"bogus://x", "localhost", "tcp://localhost", "unix://"} {
		_, err := client.Dial(ctx, addr)
		if !errors.Is(err, client.ErrBadAddress) || client.IsRetriable(err) {
			t.Errorf("Dial(%q): %v, want ErrBadAddress", addr, err)
		}
	}
}
