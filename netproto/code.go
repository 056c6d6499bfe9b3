package netproto

import "strconv"

// Code is the status of a response frame: 0 is success, anything else names
// an error and the frame's body is an ErrorResponse. Numbers are stable; new
// codes are only ever added.
type Code uint16

// Status codes. See PROTOCOL.md for when the broker sends each one.
const (
	CodeOK                 Code = 0
	CodeMalformed          Code = 1  // a frame or body that does not decode
	CodeUnknownOpcode      Code = 2  // an opcode this peer does not know
	CodeFrameTooLarge      Code = 3  // BodyLen above the receiver's limit
	CodeTopicNotFound      Code = 4  // the topic does not exist
	CodeTopicExists        Code = 5  // CreateTopic on an existing topic
	CodeBadTopicName       Code = 6  // a topic name outside the allowed form
	CodeOffsetOutOfRange   Code = 7  // offset outside [Start, End]; the error carries the range
	CodeCorrupt            Code = 8  // stored data failed its checksum on every mirror
	CodeStorage            Code = 9  // too few healthy volumes to accept a write
	CodeUnauthorized       Code = 10 // Hello token refused, or no Hello yet
	CodeShuttingDown       Code = 11 // the broker is stopping
	CodeBatchInvalid       Code = 12 // a produced batch failed record.Verify
	CodeReadOnly           Code = 13 // the topic is read-only after unrepairable damage
	CodeInternal           Code = 14 // a broker bug or an unexpected condition
	CodeTooBusy            Code = 15 // a queue or connection limit is full
	CodeTimeout            Code = 16 // the broker gave up waiting on an internal step
	CodeUnsupportedVersion Code = 17 // Hello asked for no version this broker speaks
	CodeResource           Code = 18 // the broker is out of descriptors or memory mappings

	CodeGroupNotFound       Code = 19 // the consumer group does not exist
	CodeStaleMember         Code = 20 // the member id is unknown or its epoch superseded: join again
	CodeNotLeased           Code = 21 // acked, nacked or extended offsets not leased to the member
	CodeGroupLimit          Code = 22 // a group limit is reached (groups per topic, members, in flight)
	CodeGroupConfigMismatch Code = 23 // a join's configuration differs from the existing group's
)

// codeNames holds the name of every known code, indexed by code.
var codeNames = [...]string{
	CodeOK:                 "ok",
	CodeMalformed:          "malformed frame",
	CodeUnknownOpcode:      "unknown opcode",
	CodeFrameTooLarge:      "frame too large",
	CodeTopicNotFound:      "topic not found",
	CodeTopicExists:        "topic exists",
	CodeBadTopicName:       "bad topic name",
	CodeOffsetOutOfRange:   "offset out of range",
	CodeCorrupt:            "corrupt data",
	CodeStorage:            "storage unavailable",
	CodeUnauthorized:       "unauthorized",
	CodeShuttingDown:       "shutting down",
	CodeBatchInvalid:       "invalid batch",
	CodeReadOnly:           "topic is read-only",
	CodeInternal:           "internal error",
	CodeTooBusy:            "too busy",
	CodeTimeout:            "timeout",
	CodeUnsupportedVersion: "unsupported protocol version",
	CodeResource:           "resource limit",

	CodeGroupNotFound:       "group not found",
	CodeStaleMember:         "stale group member",
	CodeNotLeased:           "offsets not leased",
	CodeGroupLimit:          "group limit reached",
	CodeGroupConfigMismatch: "group config mismatch",
}

// String names the code; unknown codes read as "code(N)".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Known reports whether c is a code this version of the package defines.
func (c Code) Known() bool { return int(c) < len(codeNames) }

// Retriable reports whether a request that failed with c may succeed if sent
// again unchanged, after a backoff. It is the default for Error.Retriable;
// the broker states the final word in each ErrorResponse.
func (c Code) Retriable() bool {
	switch c {
	case CodeStorage, CodeShuttingDown, CodeInternal, CodeTooBusy, CodeTimeout, CodeResource:
		return true
	}
	return false
}

// Err returns the sentinel error of c (ErrTopicNotFound for
// CodeTopicNotFound, ...), or nil for CodeOK and unknown codes.
func (c Code) Err() error {
	if c == CodeOK || int(c) >= len(sentinels) {
		return nil
	}
	return sentinels[c]
}
