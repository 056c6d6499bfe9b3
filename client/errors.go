package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/topicname"
)

// Error is a protocol error, as the broker sent it or as the client built
// it for a failure of the same kind (a batch that fails its checksum in the
// client is an *Error with CodeCorrupt). It carries the Code, the broker's
// Message, whether a retry may succeed (Retriable) and, with
// CodeOffsetOutOfRange, the topic's valid range [Start, End) — with
// CodeCorrupt from the broker, the damaged offsets [Start, End). Get it with
// errors.As; test its class with errors.Is and the sentinels below.
type Error = netproto.Error

// Code is a protocol status code (netproto.Code).
type Code = netproto.Code

// Sentinels of the protocol's error classes, the very values of package
// netproto, so errors.Is(err, client.ErrTopicNotFound) holds for what the
// wire returns, wrapped or not.
var (
	ErrTopicNotFound      = netproto.ErrTopicNotFound
	ErrTopicExists        = netproto.ErrTopicExists
	ErrBadTopicName       = netproto.ErrBadTopicName
	ErrOffsetOutOfRange   = netproto.ErrOffsetOutOfRange
	ErrCorrupt            = netproto.ErrCorrupt
	ErrStorage            = netproto.ErrStorage
	ErrUnauthorized       = netproto.ErrUnauthorized
	ErrShuttingDown       = netproto.ErrShuttingDown
	ErrBatchInvalid       = netproto.ErrBatchInvalid
	ErrReadOnly           = netproto.ErrReadOnly
	ErrInternal           = netproto.ErrInternal
	ErrTooBusy            = netproto.ErrTooBusy
	ErrTimeout            = netproto.ErrTimeout
	ErrMalformed          = netproto.ErrMalformed
	ErrUnknownOpcode      = netproto.ErrUnknownOpcode
	ErrFrameTooLarge      = netproto.ErrFrameTooLarge
	ErrUnsupportedVersion = netproto.ErrUnsupportedVersion
	ErrResource           = netproto.ErrResource
)

// Errors of the client itself.
var (
	// ErrClosed reports use of a closed Client, Producer or Writer, and
	// fails the calls in flight when the Client is closed.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected reports a connection that failed or dropped: the
	// calls in flight on it fail with it (their requests may or may not
	// have reached the broker), and so does a call whose redial failed.
	// It is retriable: the next call redials (see WithReconnect).
	ErrDisconnected = errors.New("client: disconnected from the broker")
	// ErrMessageTooLarge reports a message or batch that cannot be sent
	// because it exceeds the frame limit agreed with the broker, or the
	// Producer's batch size.
	ErrMessageTooLarge = errors.New("client: message too large")
	// ErrRetrying marks a report of an idempotent Producer about messages
	// it keeps resending: the broker refused their batch with a storage
	// error (a full disk, too few healthy volumes) on storageReportAfter
	// attempts in a row. ProducerOnError gets it wrapped with the
	// broker's error; the messages may still be stored later (then
	// ProducerOnAck reports them), or fail for good (then ProducerOnError
	// reports them again with that error).
	ErrRetrying = errors.New("client: not stored yet, still resending")
	// ErrBadOption reports an option of Dial given a value it cannot
	// take; the error names the option and the value.
	ErrBadOption = errors.New("client: bad option")
	// ErrBadAddress reports a broker address Dial cannot parse; retrying
	// does not help.
	ErrBadAddress = errors.New("client: bad broker address")
)

// DialError is a failure to connect to the broker at Addr (the dial, not
// the Hello that follows). It matches ErrDisconnected, so IsRetriable holds
// for it, and it wraps the system's error (Err).
type DialError struct {
	Addr string
	Err  error
}

// Error reads "client: cannot connect to ADDR: REASON", with the reason
// as the system gives it ("connection refused", "no such file or
// directory"), without the wrappers of package net.
func (e *DialError) Error() string {
	return "client: cannot connect to " + e.Addr + ": " + dialReason(e.Err)
}

// Unwrap returns ErrDisconnected and the system's error.
func (e *DialError) Unwrap() []error { return []error{ErrDisconnected, e.Err} }

// dialReason is the innermost useful text of a dial error.
func dialReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return strings.TrimPrefix(op.Err.Error(), "connect: ")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}

// IsRetriable reports whether sending the same request again may succeed:
// the broker said so (an *Error with Retriable set: storage unavailable,
// too busy, shutting down, ...), or the connection was lost. A retried
// Produce whose first attempt was lost with the connection may store its
// messages twice, unless the batch carries a producer id and sequence
// (record.SetProducer, as an idempotent Producer's do): the broker then
// answers the retry with the first attempt's offsets. Context errors are
// not retriable: the caller gave up.
func IsRetriable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrDisconnected) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && e.Retriable
}

// disconnected wraps why a connection ended for the calls it fails.
// Closing the Client reads as ErrClosed, everything else as
// ErrDisconnected wrapping the cause.
func disconnected(cause error) error {
	if errors.Is(cause, ErrClosed) || errors.Is(cause, ErrDisconnected) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrDisconnected, cause)
}

// corrupt reports a batch that failed the client's own verification.
func corrupt(topic string, offset uint64, err error) error {
	return &Error{Code: netproto.CodeCorrupt, Message: fmt.Sprintf("topic %q at offset %d: client verification: %v", topic, offset, err)}
}

// checkTopic applies the length part of the topic-name rule
// (topicname.CheckLen) before a name is sent; the broker checks the rest
// (topicname.Check) and answers ErrBadTopicName too.
func checkTopic(topic string) error {
	if err := topicname.CheckLen(topic); err != nil {
		return &Error{Code: netproto.CodeBadTopicName, Message: err.Error()}
	}
	return nil
}
