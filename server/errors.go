package server

import (
	"context"
	"errors"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// engineCodes maps the engine's error classes to wire codes. The first
// match wins, and the order matters: an engine error can wrap two classes.
// ErrInvalidBatch wraps the record package's ErrCorrupt (which is
// engine.ErrCorrupt) when a produced batch fails its checksum, and
// ErrReadOnly wraps the corruption that made a topic read-only; the client
// must see BatchInvalid and ReadOnly there, not Corrupt, which claims that
// stored data is damaged. So ErrCorrupt comes after every class that may
// wrap it.
var engineCodes = []struct {
	err  error
	code netproto.Code
}{
	{engine.ErrInvalidBatch, netproto.CodeBatchInvalid},
	{engine.ErrReadOnly, netproto.CodeReadOnly},
	{engine.ErrTopicNotFound, netproto.CodeTopicNotFound},
	{engine.ErrTopicExists, netproto.CodeTopicExists},
	{engine.ErrBadTopicName, netproto.CodeBadTopicName},
	{engine.ErrOutOfRange, netproto.CodeOffsetOutOfRange},
	{engine.ErrStorage, netproto.CodeStorage},
	{engine.ErrClosed, netproto.CodeShuttingDown},
	{engine.ErrCorrupt, netproto.CodeCorrupt},
	{context.DeadlineExceeded, netproto.CodeTimeout},
	{context.Canceled, netproto.CodeShuttingDown},
}

// wireError turns an engine error into the error response to send.
func wireError(err error) *netproto.Error {
	var pe *netproto.Error
	if errors.As(err, &pe) {
		return pe
	}
	code := netproto.CodeInternal
	for _, m := range engineCodes {
		if errors.Is(err, m.err) {
			code = m.code
			break
		}
	}
	e := netproto.NewError(code, err.Error())
	var re *engine.RangeError
	if errors.As(err, &re) {
		e.Start, e.End = re.Start, re.End
	}
	return e
}
