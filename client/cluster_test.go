package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// A client given a cluster's seed list connects to a node that answers,
// whichever seed it tries first; a seed it cannot parse is a bad address.
func TestDialSeedList(t *testing.T) {
	live := startBroker(t, "tcp", engine.Options{}, server.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now
	seedList := "tcp://" + dead + "," + strings.TrimPrefix(live.Addr, "tcp://")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, live.Addr); err != nil {
		t.Fatal(err)
	} else {
		if err := c.CreateTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for range 10 { // the first seed tried is random
		c, err := client.Dial(ctx, seedList)
		if err != nil {
			t.Fatalf("Dial(%q): %v", seedList, err)
		}
		if _, err := c.Produce(ctx, "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Only dead seeds: a dial error.
	if _, err := client.Dial(ctx, "tcp://"+dead+","+dead); err == nil || errors.Is(err, client.ErrBadAddress) {
		t.Fatalf("dead seeds: %v, want a dial error", err)
	}
	if _, err := client.Dial(ctx, "tcp://"+dead+",bad addr:x:y"); !errors.Is(err, client.ErrBadAddress) {
		t.Fatalf("bad seed: %v", err)
	}
}
