package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/haraqa/haraqa/client"
)

// A member of a consumer group: messages are leased to it, and each one
// is acked (done, durably), nacked (again later, to any member) or
// extended. The group's committed offset, kept by the broker, is where
// the next member goes on.
func ExampleNewGroupConsumer() {
	addr, stop := runExampleBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "jobs"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Produce(ctx, "jobs", []byte("resize a.png"), []byte("resize b.png"), []byte("resize c.png")); err != nil {
		log.Fatal(err)
	}

	gc := client.NewGroupConsumer(c, "workers", "jobs", client.GroupAckWait(time.Minute),
		client.GroupUntilIdle(), client.GroupWait(100*time.Millisecond)) // stop when nothing is left
	defer gc.Close(ctx) // leave the group: what it holds unacked goes to the others
	for m, err := range gc.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		if m.Offset == 1 && m.Deliveries == 1 {
			m.Nack(0) // not now: delivered again, counted
			continue
		}
		fmt.Printf("%s (delivery %d)\n", m.Value, m.Deliveries)
		if err := m.Ack(); err != nil {
			log.Fatal(err)
		}
	}
	d, err := c.DescribeGroup(ctx, "workers", "jobs")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed", d.Committed, "lag", d.Lag)
	// Output:
	// resize a.png (delivery 1)
	// resize c.png (delivery 1)
	// resize b.png (delivery 2)
	// committed 3 lag 0
}
