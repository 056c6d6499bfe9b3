package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
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

// Messages with a key, headers and the producer's timestamp, compressed
// with zstd; Consume decompresses them.
func ExampleClient_ProduceMessages() {
	addr, stop := runExampleBroker()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, addr, client.WithCompression(record.CodecZstd))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "orders"); err != nil {
		log.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	_, err = c.ProduceMessages(ctx, "orders",
		client.Message{Key: []byte("user-1"), Value: []byte(`{"order":1}`), Timestamp: at,
			Headers: []client.Header{{Key: "trace-id", Value: []byte("4bf92f35")}}},
		client.Message{Key: []byte("user-2"), Value: []byte(`{"order":2}`), Timestamp: at.Add(time.Second)})
	if err != nil {
		log.Fatal(err)
	}
	msgs, err := c.Consume(ctx, "orders", 0, 0, nil)
	if err != nil {
		log.Fatal(err)
	}
	for m := range msgs.All() {
		fmt.Println(m.Offset, string(m.Key), string(m.Value), m.Timestamp.Format(time.TimeOnly), len(m.Headers))
	}
	// Output:
	// 0 user-1 {"order":1} 12:00:00 1
	// 1 user-2 {"order":2} 12:00:01 0
}

// A Consumer can start at a time instead of an offset.
func ExampleConsumeFrom() {
	addr, stop := runExampleBroker()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "audit"); err != nil {
		log.Fatal(err)
	}
	c.Produce(ctx, "audit", []byte("old"))
	time.Sleep(10 * time.Millisecond)
	since := time.Now()
	c.Produce(ctx, "audit", []byte("new"))

	cs := client.NewConsumer(c, "audit", 0, client.ConsumeFrom(since))
	for m, err := range cs.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Offset, string(m.Value))
		break
	}
	// Output:
	// 1 new
}
