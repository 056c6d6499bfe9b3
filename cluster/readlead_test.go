//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// Promise: an acknowledged message is never hidden from the client that
// produced it. A client given a seed list sends a topic's produces to the
// topic's leader, which acknowledges once it has applied the batch; its
// offsets requests and consumes of that topic go to the leader too, not
// to the seed node it happens to be connected to, which as a follower
// learns of the commit (and applies it) only later. The seed node here is
// a follower paused with SIGSTOP: every read must still see each
// acknowledged message at once.
func TestClusterClientReadsOwnWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3)
	c.createTopic("r")
	lead := c.waitLeaders("r")["r"]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c.waitAddresses(ctx)
	seed := c.nodes[0]
	if seed.id == lead {
		seed = c.nodes[1]
	}
	// Nothing listens at the second seed: the seed connection is the
	// follower's.
	cl, err := client.Dial(ctx, "tcp://"+seed.addr+","+freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Produce(ctx, "r", []byte("first")); err != nil { // learns the placement
		t.Fatal(err)
	}
	if err := seed.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer seed.cmd.Process.Signal(syscall.SIGCONT)
	var buf client.ConsumeBuffer
	for i := range 20 {
		want := fmt.Sprintf("m%d", i)
		step, stop := context.WithTimeout(ctx, 10*time.Second)
		off, err := cl.Produce(step, "r", []byte(want))
		if err != nil {
			stop()
			t.Fatalf("produce %d: %v", i, err)
		}
		_, end, err := cl.Offsets(step, "r")
		if err != nil || end <= off {
			stop()
			t.Fatalf("offsets right after the ack of offset %d: end %d, %v (want past it)", off, end, err)
		}
		ms, err := cl.Consume(step, "r", off, 1, &buf)
		stop()
		if err != nil || ms.Len() != 1 || string(ms.At(0).Value) != want {
			t.Fatalf("consume at acknowledged offset %d: %v (want %q)", off, err, want)
		}
	}
}
