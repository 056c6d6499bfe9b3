package record

import "errors"

// Errors returned by this package. ErrCorrupt is the class of every
// checksum, magic or structural failure; test with errors.Is.
var (
	// ErrCorrupt reports bytes that do not form a valid batch: a bad magic,
	// version, header or payload hash, non-zero padding, or messages that do
	// not fit the declared count.
	ErrCorrupt = errors.New("record: corrupt batch")
	// ErrIncomplete reports a buffer that ends before the batch it starts
	// declares itself to end. At the tail of the newest segment that is a
	// torn write; anywhere else it is corruption.
	ErrIncomplete = errors.New("record: incomplete batch")
	// ErrTooLarge reports a batch or message larger than the limits.
	ErrTooLarge = errors.New("record: batch too large")
	// ErrEmpty reports a batch with no messages.
	ErrEmpty = errors.New("record: batch has no messages")
	// ErrCodec reports an unknown compression codec, or a compressed batch
	// handed to a reader of uncompressed ones (Messages). A compressed
	// payload that does not decode is ErrCorrupt.
	ErrCodec = errors.New("record: unsupported codec")
)
