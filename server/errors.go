package server

import (
	"context"
	"errors"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// engineCodes maps the engine's error classes to wire codes.
var engineCodes = []struct {
	err  error
	code netproto.Code
}{
	{engine.ErrTopicNotFound, netproto.CodeTopicNotFound},
	{engine.ErrTopicExists, netproto.CodeTopicExists},
	{engine.ErrBadTopicName, netproto.CodeBadTopicName},
	{engine.ErrOutOfRange, netproto.CodeOffsetOutOfRange},
	{engine.ErrReadOnly, netproto.CodeReadOnly},
	{engine.ErrCorrupt, netproto.CodeCorrupt},
	{engine.ErrStorage, netproto.CodeStorage},
	{engine.ErrInvalidBatch, netproto.CodeBatchInvalid},
	{engine.ErrClosed, netproto.CodeShuttingDown},
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
