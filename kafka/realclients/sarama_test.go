package realclients

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.AllowAutoTopicCreation = true
	return cfg
}

// Promise: sarama's idempotent sync producer (each compression codec)
// stores every message once, in order, with keys, headers and
// timestamps, and sarama's partition consumer reads them back; GetOffset
// answers earliest, latest and by time.
func TestSaramaProduceConsume(t *testing.T) {
	b := startBroker(t)
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	var want []*sarama.ProducerMessage
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD} {
		cfg.Producer.Compression = codec
		p, err := sarama.NewSyncProducer([]string{b.kafkaAddr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var batch []*sarama.ProducerMessage
		for i := range 200 {
			n := len(want) + len(batch)
			batch = append(batch, &sarama.ProducerMessage{Topic: "sa", Key: sarama.StringEncoder(fmt.Sprint("k", n)),
				Value:     sarama.ByteEncoder(fmt.Appendf(nil, "v%d-%s", n, bytes.Repeat([]byte("y"), i%30))),
				Headers:   []sarama.RecordHeader{{Key: []byte("h"), Value: fmt.Appendf(nil, "%d", n)}},
				Timestamp: time.UnixMilli(1_650_000_000_000 + int64(n))})
		}
		if err := p.SendMessages(batch); err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		want = append(want, batch...)
		p.Close()
	}
	cfg = saramaConfig()
	c, err := sarama.NewConsumer([]string{b.kafkaAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition("sa", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	deadline := time.After(time.Minute)
	for i, w := range want {
		select {
		case m := <-pc.Messages():
			wk, _ := w.Key.Encode()
			wv, _ := w.Value.Encode()
			if m.Offset != int64(i) || !bytes.Equal(m.Key, wk) || !bytes.Equal(m.Value, wv) || !m.Timestamp.Equal(w.Timestamp) ||
				len(m.Headers) != 1 || string(m.Headers[0].Key) != "h" || !bytes.Equal(m.Headers[0].Value, w.Headers[0].Value) {
				t.Fatalf("message %d: %+v", i, m)
			}
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("got %d of %d messages", i, len(want))
		}
	}
	cl, err := sarama.NewClient([]string{b.kafkaAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if off, err := cl.GetOffset("sa", 0, sarama.OffsetOldest); err != nil || off != 0 {
		t.Errorf("oldest: %d %v", off, err)
	}
	if off, err := cl.GetOffset("sa", 0, sarama.OffsetNewest); err != nil || off != int64(len(want)) {
		t.Errorf("newest: %d %v, want %d", off, err, len(want))
	}
	before := time.Now()
	time.Sleep(10 * time.Millisecond)
	p, err := sarama.NewSyncProducer([]string{b.kafkaAddr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "sa", Value: sarama.StringEncoder("late")}); err != nil {
		t.Fatal(err)
	}
	if off, err := cl.GetOffset("sa", 0, before.UnixMilli()); err != nil || off != int64(len(want)) {
		t.Errorf("by time: %d %v, want %d", off, err, len(want))
	}
	_ = context.Background
}
