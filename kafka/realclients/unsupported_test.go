package realclients

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Promise: an API the listener does not serve, sent by a real client,
// gets the documented answer: sarama's DescribeConfigs (sent without
// asking ApiVersions) reads UNSUPPORTED_VERSION for the resource; a
// franz-go transactional producer is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED; both connections go on working.
func TestUnsupportedFromRealClients(t *testing.T) {
	b := startBroker(t)
	cfg := saramaConfig()
	adm, err := sarama.NewClusterAdmin([]string{b.kafkaAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopic("cfg", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	_, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "cfg"})
	if !errors.Is(err, sarama.ErrUnsupportedVersion) {
		t.Fatalf("sarama DescribeConfig: %v, want UNSUPPORTED_VERSION", err)
	}
	if md, err := adm.DescribeTopics([]string{"cfg"}); err != nil || len(md) != 1 || len(md[0].Partitions) != 1 {
		t.Fatalf("after the refusal: %v %v", md, err)
	}
	if err := adm.CreateTopic("three", &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
		t.Fatalf("3 partitions: %v, want INVALID_PARTITIONS", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := kgoClient(t, b, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("cfg"))
	err = cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transactional produce: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
}
