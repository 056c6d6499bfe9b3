package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/server"
)

// recorder is a hook of every kind that counts what it is told.
type recorder struct {
	mu           sync.Mutex
	connects     int
	disconnects  int
	written      map[client.Opcode]int
	read         map[client.Opcode]int
	slow         time.Duration // longest response
	messages     int           // OnProduceMessage
	produced     map[string]int
	failed       map[string]int
	consumed     map[string]int
	consumedLast map[string]uint64
}

func newRecorder() *recorder {
	return &recorder{written: map[client.Opcode]int{}, read: map[client.Opcode]int{}, produced: map[string]int{},
		failed: map[string]int{}, consumed: map[string]int{}, consumedLast: map[string]uint64{}}
}

func (r *recorder) OnConnect(addr string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.connects++
	}
}
func (r *recorder) OnDisconnect(addr string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disconnects++
}
func (r *recorder) OnRequestWritten(op client.Opcode, bytes int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written[op]++
}
func (r *recorder) OnResponseRead(op client.Opcode, bytes int, d time.Duration, status client.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read[op]++
	r.slow = max(r.slow, d)
}
func (r *recorder) OnProduceMessage(ctx context.Context, m *client.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages++
	m.Headers = append(m.Headers, client.Header{Key: "seen-by-hook", Value: []byte(m.Topic)})
}
func (r *recorder) OnBatchProduced(topic string, base uint64, count, bytes int, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed[topic] += count
	} else {
		r.produced[topic] += count
	}
}
func (r *recorder) OnMessagesConsumed(topic string, msgs *client.Messages, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consumed[topic] += msgs.Len()
	r.consumedLast[topic] = msgs.Next()
}

// Registered hooks hear of every connection, request and response, every
// message about to be produced (and may add headers to it), every batch
// produced or failed and every read's messages, with counts that add up
// to what was sent and read.
func TestHooksSeeEveryEvent(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	rec := newRecorder()
	c := b.dial(client.WithHooks(rec))
	ctx := testCtx(t)
	createTopic(t, c, "h1")
	createTopic(t, c, "h2")
	p := client.NewMultiProducer(c, client.ProducerMaxMessages(100))
	for i := range 1000 {
		if err := p.Send(ctx, "h1", payload(i)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := p.SendMessage(ctx, client.Message{Topic: "h2", Value: payload(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			p.Send(ctx, "missing", payload(i))
		}
	}
	p.Close(ctx)
	if _, err := c.Produce(ctx, "h2", []byte("one more")); err != nil {
		t.Fatal(err)
	}
	var buf client.ConsumeBuffer
	for _, topic := range []string{"h1", "h2"} {
		for off := uint64(0); ; {
			msgs, err := c.Consume(ctx, topic, off, 300, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if msgs.Len() == 0 {
				break
			}
			if m := msgs.At(0); len(m.Headers) != 1 || string(m.Headers[0].Value) != topic {
				t.Fatalf("%s: headers %v", topic, m.Headers)
			}
			off = msgs.Next()
		}
	}
	c.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.connects != 1 || rec.disconnects != 1 {
		t.Errorf("connects %d, disconnects %d", rec.connects, rec.disconnects)
	}
	if rec.messages != 1000+500+100+1 {
		t.Errorf("OnProduceMessage: %d", rec.messages)
	}
	if rec.produced["h1"] != 1000 || rec.produced["h2"] != 501 || rec.failed["missing"] != 100 {
		t.Errorf("produced %v, failed %v", rec.produced, rec.failed)
	}
	if rec.consumed["h1"] != 1000 || rec.consumed["h2"] != 501 || rec.consumedLast["h2"] != 501 {
		t.Errorf("consumed %v", rec.consumed)
	}
	if rec.written[netproto.OpProduce] != rec.read[netproto.OpProduce] || rec.read[netproto.OpConsume] < 8 ||
		rec.read[netproto.OpCreateTopic] != 2 || rec.slow <= 0 {
		t.Errorf("written %v, read %v, slowest %v", rec.written, rec.read, rec.slow)
	}
}
