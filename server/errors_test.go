package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// Promise (PROTOCOL.md, Status codes): each engine error class reaches the
// wire as its code, with the engine's retriable default; where an engine
// error wraps two classes the specific one wins (a produced batch that
// fails its checksum is BatchInvalid, not Corrupt, which would claim that
// stored data is damaged); OffsetOutOfRange carries the range.
func TestWireError(t *testing.T) {
	for _, c := range []struct {
		err  error
		code netproto.Code
	}{
		{fmt.Errorf("%w: %w", engine.ErrInvalidBatch, record.ErrCorrupt), netproto.CodeBatchInvalid},
		{fmt.Errorf("%w: %w", engine.ErrInvalidBatch, record.ErrTooLarge), netproto.CodeBatchInvalid},
		{fmt.Errorf("%w: damage: %w", engine.ErrReadOnly, engine.ErrCorrupt), netproto.CodeReadOnly},
		{fmt.Errorf("engine: topic %q offset 3: %w", "t", engine.ErrCorrupt), netproto.CodeCorrupt},
		{fmt.Errorf("%w: %q", engine.ErrTopicNotFound, "t"), netproto.CodeTopicNotFound},
		{fmt.Errorf("%w: %q", engine.ErrTopicExists, "t"), netproto.CodeTopicExists},
		{fmt.Errorf("%w: %q", engine.ErrBadTopicName, ".."), netproto.CodeBadTopicName},
		{fmt.Errorf("%w: topic %q: write: %w", engine.ErrStorage, "t", errors.New("EIO")), netproto.CodeStorage},
		{engine.ErrClosed, netproto.CodeShuttingDown},
		{context.Canceled, netproto.CodeShuttingDown},
		{context.DeadlineExceeded, netproto.CodeTimeout},
		{errors.New("something else"), netproto.CodeInternal},
		{netproto.NewError(netproto.CodeMalformed, "bad"), netproto.CodeMalformed},
	} {
		e := wireError(c.err)
		if e.Code != c.code {
			t.Errorf("wireError(%v) = %v, want %v", c.err, e.Code, c.code)
		}
		if _, ok := c.err.(*netproto.Error); !ok && e.Retriable != c.code.Retriable() {
			t.Errorf("wireError(%v): retriable %v", c.err, e.Retriable)
		}
	}
	e := wireError(fmt.Errorf("read: %w", &engine.RangeError{Topic: "t", Offset: 9, Start: 2, End: 5}))
	if e.Code != netproto.CodeOffsetOutOfRange || e.Start != 2 || e.End != 5 {
		t.Errorf("range error: %+v", e)
	}
}
