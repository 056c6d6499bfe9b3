package segment

import (
	"errors"
	"fmt"

	"github.com/haraqa/haraqa/record"
)

var (
	// ErrCorrupt is the corruption class, the same value as record.ErrCorrupt
	// so errors.Is works with either name.
	ErrCorrupt = record.ErrCorrupt
	// ErrClosed reports use of a segment after it was closed or removed.
	ErrClosed = errors.New("segment: closed")
	// ErrSealed reports a write to a sealed segment.
	ErrSealed = errors.New("segment: sealed")
	// ErrOffset reports an offset outside the segment.
	ErrOffset = errors.New("segment: offset out of range")
	// ErrFull reports a write that does not fit the segment's capacity
	// (Options.MaxBytes, Options.MaxEntries): check Fits first and roll.
	ErrFull = errors.New("segment: full")
	// ErrSyncLost reports a failed sync of committed bytes that were not
	// yet known durable: they may be lost, and the error is sticky (a
	// retried sync could succeed without them).
	ErrSyncLost = errors.New("segment: sync failed with committed bytes unsynced")
	// ErrStopped reports a CopyTo given up because Options.Stop was closed.
	ErrStopped = errors.New("segment: copy stopped")
)

// CorruptError describes damage found in a segment: which file, at which
// byte position, and the first offset that can no longer be read. It
// matches ErrCorrupt with errors.Is.
type CorruptError struct {
	File   string // path of the damaged file
	Pos    int64  // byte position of the damage
	Offset uint64 // first message offset at or after the damage
	Err    error  // what the scanner said
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("segment: %s corrupt at byte %d (offset %d): %v", e.File, e.Pos, e.Offset, e.Err)
}

// Unwrap lets errors.Is see ErrCorrupt and the underlying cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
