package engine

import (
	"errors"
	"fmt"

	"github.com/haraqa/haraqa/record"
)

// Errors of the engine. Test with errors.Is; they arrive wrapped with the
// topic, offsets or file they concern.
var (
	ErrTopicNotFound = errors.New("engine: topic not found")
	ErrTopicExists   = errors.New("engine: topic exists")
	ErrBadTopicName  = errors.New("engine: bad topic name")
	// ErrOutOfRange reports an offset below the topic's start or above its
	// end; the error is a *RangeError carrying the valid range.
	ErrOutOfRange = errors.New("engine: offset out of range")
	// ErrCorrupt is the corruption class (the same value as
	// record.ErrCorrupt): a batch failed its checksum and no healthy copy
	// could serve it.
	ErrCorrupt = record.ErrCorrupt
	// ErrReadOnly reports a write to a topic that accepts no writes because
	// damage was found that could not be repaired, or an earlier write
	// failed in a way that could not be rolled back.
	ErrReadOnly = errors.New("engine: topic is read-only")
	// ErrStorage reports a failed write or sync: nothing of the request was
	// acknowledged and the request may be retried.
	ErrStorage = errors.New("engine: storage error")
	// ErrResource reports that the broker ran out of file descriptors or
	// memory mappings (EMFILE, ENFILE, ENOMEM from open or mmap) even after
	// letting go of idle files: nothing of the request was done, and it may
	// be retried. It is never a volume's fault.
	ErrResource = errors.New("engine: out of file descriptors or memory mappings")
	// ErrInvalidBatch reports a produce batch that fails record.Verify or
	// the engine's limits.
	ErrInvalidBatch = errors.New("engine: invalid batch")
	// ErrClosed reports use of a closed engine.
	ErrClosed = errors.New("engine: closed")
)

// RangeError is returned for an offset outside [Start, End).
type RangeError struct {
	Topic      string
	Offset     uint64
	Start, End uint64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("engine: topic %q: offset %d out of range [%d, %d)", e.Topic, e.Offset, e.Start, e.End)
}

// Is matches ErrOutOfRange.
func (e *RangeError) Is(target error) bool { return target == ErrOutOfRange }

// CorruptError reports offsets of a topic that no copy can serve: the
// damaged batches [First, Next) (they may begin before the offset read).
// It matches ErrCorrupt; a reader may skip to Next.
type CorruptError struct {
	Topic       string
	First, Next uint64
	Err         error // what the check of the read copy found
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("engine: topic %q offsets %d..%d: %v", e.Topic, e.First, e.Next-1, e.Err)
}

// Unwrap lets errors.Is see ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
