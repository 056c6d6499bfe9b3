package netproto

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors, one per Code. An *Error matches the sentinel of its code
// with errors.Is, so callers test errors.Is(err, netproto.ErrTopicNotFound)
// whether err came off the wire or was wrapped by a broker package.
var (
	ErrMalformed          = errors.New("netproto: malformed frame")
	ErrUnknownOpcode      = errors.New("netproto: unknown opcode")
	ErrFrameTooLarge      = errors.New("netproto: frame too large")
	ErrTopicNotFound      = errors.New("netproto: topic not found")
	ErrTopicExists        = errors.New("netproto: topic exists")
	ErrBadTopicName       = errors.New("netproto: bad topic name")
	ErrOffsetOutOfRange   = errors.New("netproto: offset out of range")
	ErrCorrupt            = errors.New("netproto: corrupt data")
	ErrStorage            = errors.New("netproto: storage unavailable")
	ErrUnauthorized       = errors.New("netproto: unauthorized")
	ErrShuttingDown       = errors.New("netproto: shutting down")
	ErrBatchInvalid       = errors.New("netproto: invalid batch")
	ErrReadOnly           = errors.New("netproto: topic is read-only")
	ErrInternal           = errors.New("netproto: internal error")
	ErrTooBusy            = errors.New("netproto: too busy")
	ErrTimeout            = errors.New("netproto: timeout")
	ErrUnsupportedVersion = errors.New("netproto: unsupported protocol version")
	ErrResource           = errors.New("netproto: resource limit")

	ErrGroupNotFound       = errors.New("netproto: group not found")
	ErrStaleMember         = errors.New("netproto: stale group member")
	ErrNotLeased           = errors.New("netproto: offsets not leased")
	ErrGroupLimit          = errors.New("netproto: group limit reached")
	ErrGroupConfigMismatch = errors.New("netproto: group config mismatch")
)

// sentinels maps a code to its sentinel; index 0 (CodeOK) has none.
var sentinels = [...]error{
	CodeMalformed:          ErrMalformed,
	CodeUnknownOpcode:      ErrUnknownOpcode,
	CodeFrameTooLarge:      ErrFrameTooLarge,
	CodeTopicNotFound:      ErrTopicNotFound,
	CodeTopicExists:        ErrTopicExists,
	CodeBadTopicName:       ErrBadTopicName,
	CodeOffsetOutOfRange:   ErrOffsetOutOfRange,
	CodeCorrupt:            ErrCorrupt,
	CodeStorage:            ErrStorage,
	CodeUnauthorized:       ErrUnauthorized,
	CodeShuttingDown:       ErrShuttingDown,
	CodeBatchInvalid:       ErrBatchInvalid,
	CodeReadOnly:           ErrReadOnly,
	CodeInternal:           ErrInternal,
	CodeTooBusy:            ErrTooBusy,
	CodeTimeout:            ErrTimeout,
	CodeUnsupportedVersion: ErrUnsupportedVersion,
	CodeResource:           ErrResource,

	CodeGroupNotFound:       ErrGroupNotFound,
	CodeStaleMember:         ErrStaleMember,
	CodeNotLeased:           ErrNotLeased,
	CodeGroupLimit:          ErrGroupLimit,
	CodeGroupConfigMismatch: ErrGroupConfigMismatch,
}

// Error is a protocol error: the decoded form of an error response, and what
// the broker builds to send one. Start and End carry the topic's valid
// offset range [Start, End) with CodeOffsetOutOfRange, the damaged offsets
// [Start, End) with CodeCorrupt when the broker could name them (End >
// Start), and are zero otherwise.
type Error struct {
	Code      Code
	Message   string
	Retriable bool
	Start     uint64
	End       uint64
}

// NewError returns an Error with the code's default retriable flag.
func NewError(code Code, msg string) *Error {
	return &Error{Code: code, Message: msg, Retriable: code.Retriable()}
}

// Error formats the code, the message and, for CodeOffsetOutOfRange, the
// valid range unless the message already gives it.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("netproto: ")
	b.WriteString(e.Code.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Code == CodeOffsetOutOfRange {
		valid := "[" + strconv.FormatUint(e.Start, 10) + ", " + strconv.FormatUint(e.End, 10) + ")"
		if !strings.Contains(e.Message, valid) { // the broker's message may name it already
			b.WriteString(" (valid range ")
			b.WriteString(valid)
			b.WriteString(")")
		}
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s := e.Code.Err()
	return s != nil && s == target
}

// CodeOf returns the code that describes err: CodeOK for nil, the code of an
// *Error in err's chain, the code whose sentinel err wraps, and CodeInternal
// for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	for c, s := range sentinels {
		if s != nil && errors.Is(err, s) {
			return Code(c)
		}
	}
	return CodeInternal
}

// AsError turns any non-nil error into an *Error ready to send: an *Error in
// err's chain is returned as is; otherwise the code comes from CodeOf and the
// message from err, without the sentinel's own text when err merely wraps it
// (fmt.Errorf("%w: topic %q", ErrTopicNotFound, name) sends `topic "name"`).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := CodeOf(err)
	msg := err.Error()
	if s := code.Err(); s != nil {
		msg = strings.TrimPrefix(msg, s.Error())
		msg = strings.TrimPrefix(msg, ": ")
	}
	return NewError(code, msg)
}

// malformed returns the error every decoder reports: what names the message,
// why the defect.
func malformed(what, why string) error {
	return &Error{Code: CodeMalformed, Message: what + ": " + why}
}
