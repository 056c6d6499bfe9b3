package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// runExampleBroker starts an in-process broker on a free TCP port and
// returns its address and a function that stops it.
func runExampleBroker() (string, func()) {
	dir, err := os.MkdirTemp("", "haraqa-example")
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.Open(engine.Options{Dir: dir, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	l, err := server.Listen("tcp://127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := server.New(e, server.Options{Logger: quiet})
	go s.Serve(l)
	return "tcp://" + l.Addr().String(), func() {
		s.Close()
		e.Close()
		os.RemoveAll(dir)
	}
}

// Hello world: dial, create a topic, produce two messages, consume them
// back.
func Example() {
	addr, stop := runExampleBroker()
	defer stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.CreateTopic(ctx, "greetings"); err != nil && !errors.Is(err, client.ErrTopicExists) {
		log.Fatal(err)
	}
	first, err := c.Produce(ctx, "greetings", []byte("hello"), []byte("world"))
	if err != nil {
		log.Fatal(err)
	}

	var buf client.ConsumeBuffer // reuse it: a warm buffer makes Consume allocate nothing
	msgs, err := c.Consume(ctx, "greetings", first, 2, &buf)
	if err != nil {
		log.Fatal(err)
	}
	for m := range msgs.All() {
		fmt.Println(m.Offset, string(m.Value)) // m.Value aliases buf
	}
	fmt.Println("next offset:", msgs.Next())

	// Reading past the end is an error that carries the valid range.
	_, err = c.Consume(ctx, "greetings", 7, 1, &buf)
	var e *client.Error
	if errors.Is(err, client.ErrOffsetOutOfRange) && errors.As(err, &e) {
		fmt.Printf("offset 7 is outside [%d, %d)\n", e.Start, e.End)
	}
	// Output:
	// 0 hello
	// 1 world
	// next offset: 2
	// offset 7 is outside [0, 2)
}

// A Producer batches messages; a Consumer follows the topic.
func ExampleProducer() {
	addr, stop := runExampleBroker()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "events"); err != nil {
		log.Fatal(err)
	}

	p := client.NewProducer(c, "events", client.ProducerOnError(func(msg []byte, err error) {
		log.Printf("lost %q: %v", msg, err)
	}))
	for i := range 3 {
		if err := p.Send(ctx, fmt.Appendf(nil, "event %d", i)); err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil { // flushes
		log.Fatal(err)
	}

	cs := client.NewConsumer(c, "events", 0)
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Offset, string(m.Value))
		if m.Offset == 2 {
			break
		}
	}
	// Output:
	// 0 event 0
	// 1 event 1
	// 2 event 2
}

// A Writer turns log lines into messages.
func ExampleWriter() {
	addr, stop := runExampleBroker()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "logs"); err != nil {
		log.Fatal(err)
	}
	p := client.NewProducer(c, "logs")
	defer p.Close(ctx)
	w := client.NewWriter(p)
	logger := log.New(w, "svc ", 0)
	logger.Println("started")
	logger.Println("stopping")
	if err := w.Close(); err != nil { // sends what is buffered
		log.Fatal(err)
	}
	msgs, err := c.Consume(ctx, "logs", 0, 10, nil)
	if err != nil {
		log.Fatal(err)
	}
	for m := range msgs.All() {
		fmt.Printf("%q\n", m.Value)
	}
	// Output:
	// "svc started"
	// "svc stopping"
}
