// Package logsvc is the one interface under the broker's front ends: the
// operations a front end (the binary protocol server today; HTTP, Kafka
// and replication later) performs on the log, so that none of them grows
// its own path into the storage engine. *engine.Engine implements it; a
// replicated log will implement it too.
//
// The methods, their arguments and their errors are the engine's (see
// package engine): offsets, ranges and the *RangeError and *CorruptError
// types mean the same whoever implements the service. Every method is safe
// for concurrent use.
package logsvc

import (
	"context"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// Service is what a front end needs of the log.
type Service interface {
	Producer
	Reader
	Admin
	Groups
}

// Producer appends record batches.
type Producer interface {
	// Enqueue verifies a batch and queues it for the topic's writer;
	// batches enqueued one after another get increasing offsets, in that
	// order. Pending.Wait returns the batch's base offset once it is
	// stored per the fsync policy. The batch must not be touched until
	// then.
	Enqueue(ctx context.Context, topic string, batch []byte) (engine.Pending, error)
	// EnqueueDirect is Enqueue for a caller that would otherwise only
	// wait for the answer: when the topic's writer is idle the caller
	// writes the batch itself and the returned Pending is already
	// answered (Pending.Ready); otherwise it is queued as by Enqueue.
	EnqueueDirect(ctx context.Context, topic string, batch []byte) (engine.Pending, error)
	// NewProducerID returns an id for an idempotent producer.
	NewProducerID() uint64
}

// Reader reads and waits for data.
type Reader interface {
	// Read finds the whole batches covering [offset, offset+limit), up to
	// maxBytes, into res (see engine.Engine.Read).
	Read(topic string, offset, limit uint64, maxBytes int64, res *engine.ReadResult) error
	// Wait blocks until the topic holds offset, the topic goes or ctx ends.
	Wait(ctx context.Context, topic string, offset uint64) error
	// WaitChange blocks until the topic's range differs from [start, end).
	WaitChange(ctx context.Context, topic string, start, end uint64) error
	// Offsets returns the topic's valid range [start, end).
	Offsets(topic string) (start, end uint64, err error)
	// OffsetAt returns the offset of the first batch appended at or after
	// tm, or the end offset when every batch is older.
	OffsetAt(topic string, tm time.Time) (uint64, error)
}

// Admin manages topics.
type Admin interface {
	CreateTopic(name string) error
	DeleteTopic(name string) error
	// Topics lists the topic names that start with prefix, sorted.
	Topics(prefix string) []string
	// TruncateBefore removes the whole segments that hold only offsets
	// below offset and returns the topic's new start offset.
	TruncateBefore(ctx context.Context, topic string, offset uint64) (uint64, error)
}

// The engine is the service a broker runs today.
var _ Service = (*engine.Engine)(nil)
