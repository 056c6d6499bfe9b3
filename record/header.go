package record

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Layout constants. See FORMAT.md for the table.
const (
	// HeaderSize is the fixed size of a batch header.
	HeaderSize = 64
	// Magic is the first four bytes of every batch: "HRQB".
	Magic uint32 = 'H' | 'R'<<8 | 'Q'<<16 | 'B'<<24
	// Version is the only batch format version this package writes and reads.
	Version uint16 = 1
	// Align is the alignment of every batch: its size on disk and on the wire
	// is a multiple of Align, so every header starts 8-byte aligned.
	Align = 8
	// MaxBatchSize caps the encoded size of any batch (header, payload and
	// padding). Brokers and clients configure lower limits on top of it.
	MaxBatchSize = 1 << 30
)

// Header field offsets.
const (
	offMagic       = 0
	offVersion     = 4
	offFlags       = 6
	offPayloadLen  = 8
	offCount       = 12
	offBaseOffset  = 16
	offAppendTime  = 24
	offProducerID  = 32
	offSequence    = 40
	offRawLen      = 44
	offPayloadHash = 48
	offHeaderHash  = 56
)

// Flags bits.
const (
	// FlagCodecMask selects the compression codec (see Codec).
	FlagCodecMask uint16 = 0x000f
	// FlagExtended marks messages that carry a key, headers and a timestamp.
	FlagExtended uint16 = 0x0010
	// flagKnown is every flag bit this version understands.
	flagKnown = FlagCodecMask | FlagExtended
)

// Codec is the compression codec of a batch payload.
type Codec uint8

// Codecs.
const (
	CodecNone Codec = 0
	CodecS2   Codec = 1
	CodecZstd Codec = 2
)

// String names the codec.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Header is the decoded fixed header of a batch.
type Header struct {
	Flags       uint16
	PayloadLen  uint32 // stored payload bytes, without padding
	Count       uint32 // messages in the batch, at least 1
	BaseOffset  uint64 // offset of the first message; set by the broker
	AppendTime  int64  // unix nanoseconds; set by the broker
	ProducerID  uint64 // 0 when the producer is not idempotent
	Sequence    uint32 // producer's batch sequence number
	RawLen      uint32 // payload bytes after decompression
	PayloadHash uint64 // xxhash64 of the stored payload bytes
	HeaderHash  uint64 // xxhash64 of header bytes [0, 56)
}

// Codec returns the payload's compression codec.
func (h *Header) Codec() Codec { return Codec(h.Flags & FlagCodecMask) }

// Extended reports whether the messages use the extended encoding (keys,
// headers, timestamps).
func (h *Header) Extended() bool { return h.Flags&FlagExtended != 0 }

// Size returns the encoded size of the whole batch: header, payload, padding.
func (h *Header) Size() int { return SizeFor(int(h.PayloadLen)) }

// LastOffset returns the offset of the batch's last message.
func (h *Header) LastOffset() uint64 { return h.BaseOffset + uint64(h.Count) - 1 }

// NextOffset returns the offset after the batch's last message.
func (h *Header) NextOffset() uint64 { return h.BaseOffset + uint64(h.Count) }

// SizeFor returns the encoded batch size for a payload of n bytes.
func SizeFor(n int) int { return HeaderSize + (n+Align-1)&^(Align-1) }

// ParseHeader decodes and checks the header at the start of b: magic,
// version, known flags, header hash and bounded lengths. It does not look at
// the payload, nor check that b holds the whole batch: Verify and Scanner do.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("%w: %d of %d header bytes", ErrIncomplete, len(b), HeaderSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[offMagic:]); m != Magic {
		return h, fmt.Errorf("%w: bad magic %#08x", ErrCorrupt, m)
	}
	if v := le.Uint16(b[offVersion:]); v != Version {
		return h, fmt.Errorf("%w: unknown version %d", ErrCorrupt, v)
	}
	h.HeaderHash = le.Uint64(b[offHeaderHash:])
	if sum := xxhash.Sum64(b[:offHeaderHash]); sum != h.HeaderHash {
		return h, fmt.Errorf("%w: header hash %#016x, computed %#016x", ErrCorrupt, h.HeaderHash, sum)
	}
	h.Flags = le.Uint16(b[offFlags:])
	h.PayloadLen = le.Uint32(b[offPayloadLen:])
	h.Count = le.Uint32(b[offCount:])
	h.BaseOffset = le.Uint64(b[offBaseOffset:])
	h.AppendTime = int64(le.Uint64(b[offAppendTime:]))
	h.ProducerID = le.Uint64(b[offProducerID:])
	h.Sequence = le.Uint32(b[offSequence:])
	h.RawLen = le.Uint32(b[offRawLen:])
	h.PayloadHash = le.Uint64(b[offPayloadHash:])
	if h.Flags&^flagKnown != 0 {
		return h, fmt.Errorf("%w: unknown flags %#04x", ErrCorrupt, h.Flags)
	}
	if c := h.Codec(); c > CodecZstd {
		return h, fmt.Errorf("%w: %v", ErrCodec, c)
	}
	if uint64(h.PayloadLen) > MaxBatchSize-HeaderSize || h.RawLen > MaxBatchSize {
		return h, fmt.Errorf("%w: payload %d bytes, raw %d bytes", ErrTooLarge, h.PayloadLen, h.RawLen)
	}
	if h.Count == 0 {
		return h, ErrEmpty
	}
	// Every message costs at least one byte (its length varint) before
	// compression, so a count above the raw length is a lie.
	if h.Count > h.RawLen {
		return h, fmt.Errorf("%w: %d messages in %d bytes", ErrCorrupt, h.Count, h.RawLen)
	}
	if h.Codec() == CodecNone && h.RawLen != h.PayloadLen {
		return h, fmt.Errorf("%w: uncompressed payload %d bytes, raw %d", ErrCorrupt, h.PayloadLen, h.RawLen)
	}
	if h.BaseOffset+uint64(h.Count) < h.BaseOffset {
		return h, fmt.Errorf("%w: offset overflow", ErrCorrupt)
	}
	return h, nil
}

// Verify checks a whole batch: the header (ParseHeader), that b holds exactly
// the batch's encoded size, the payload hash and zero padding. It returns the
// decoded header.
func Verify(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	size := h.Size()
	if len(b) < size {
		return h, fmt.Errorf("%w: %d of %d batch bytes", ErrIncomplete, len(b), size)
	}
	if len(b) > size {
		return h, fmt.Errorf("%w: %d trailing bytes after batch", ErrCorrupt, len(b)-size)
	}
	return h, verifyBody(b, &h)
}

// verifyBody checks the payload hash and the padding of a batch whose header
// is valid and whose size fits b.
func verifyBody(b []byte, h *Header) error {
	end := HeaderSize + int(h.PayloadLen)
	if sum := xxhash.Sum64(b[HeaderSize:end]); sum != h.PayloadHash {
		return fmt.Errorf("%w: payload hash %#016x, computed %#016x (offsets %d..%d)",
			ErrCorrupt, h.PayloadHash, sum, h.BaseOffset, h.LastOffset())
	}
	for _, c := range b[end:h.Size()] {
		if c != 0 {
			return fmt.Errorf("%w: non-zero padding (offsets %d..%d)", ErrCorrupt, h.BaseOffset, h.LastOffset())
		}
	}
	return nil
}

// Stamp rewrites a valid batch's base offset and append time in place and
// recomputes its header hash. The broker stamps every batch it appends.
func Stamp(b []byte, baseOffset uint64, appendTime int64) {
	le := binary.LittleEndian
	le.PutUint64(b[offBaseOffset:], baseOffset)
	le.PutUint64(b[offAppendTime:], uint64(appendTime))
	le.PutUint64(b[offHeaderHash:], xxhash.Sum64(b[:offHeaderHash]))
}

// SetProducer rewrites a batch's producer id and sequence in place and
// recomputes its header hash.
func SetProducer(b []byte, producerID uint64, seq uint32) {
	le := binary.LittleEndian
	le.PutUint64(b[offProducerID:], producerID)
	le.PutUint32(b[offSequence:], seq)
	le.PutUint64(b[offHeaderHash:], xxhash.Sum64(b[:offHeaderHash]))
}

// putHeader encodes h into b[:HeaderSize], computing the header hash. The
// payload hash must already be set in h.
func putHeader(b []byte, h *Header) {
	le := binary.LittleEndian
	le.PutUint32(b[offMagic:], Magic)
	le.PutUint16(b[offVersion:], Version)
	le.PutUint16(b[offFlags:], h.Flags)
	le.PutUint32(b[offPayloadLen:], h.PayloadLen)
	le.PutUint32(b[offCount:], h.Count)
	le.PutUint64(b[offBaseOffset:], h.BaseOffset)
	le.PutUint64(b[offAppendTime:], uint64(h.AppendTime))
	le.PutUint64(b[offProducerID:], h.ProducerID)
	le.PutUint32(b[offSequence:], h.Sequence)
	le.PutUint32(b[offRawLen:], h.RawLen)
	le.PutUint64(b[offPayloadHash:], h.PayloadHash)
	h.HeaderHash = xxhash.Sum64(b[:offHeaderHash])
	le.PutUint64(b[offHeaderHash:], h.HeaderHash)
}

// IsZero reports whether b is all zero bytes: a zeroed header reads as "end
// of data", never as a batch.
func IsZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// The accessors below read one field of a batch header in place, for code
// that must not decode the whole header on a hot path. They do not check
// anything: b must hold at least HeaderSize bytes of a verified batch.

// CountOf returns the message count of a batch whose header was verified.
func CountOf(b []byte) uint32 { return binary.LittleEndian.Uint32(b[offCount:]) }

// PayloadLenOf returns the stored payload length (without padding) of a
// batch whose header was verified.
func PayloadLenOf(b []byte) uint32 { return binary.LittleEndian.Uint32(b[offPayloadLen:]) }

// BaseOffsetOf returns the base offset of a batch whose header was verified.
func BaseOffsetOf(b []byte) uint64 { return binary.LittleEndian.Uint64(b[offBaseOffset:]) }

// AppendTimeOf returns the append time (unix nanoseconds) of a batch whose
// header was verified.
func AppendTimeOf(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b[offAppendTime:])) }
