package record

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Builder appends messages into a reusable buffer and finishes them as one
// uncompressed batch. After the buffer has grown to its working size a
// Builder allocates nothing. The zero value is ready to use.
type Builder struct {
	buf   []byte
	count uint32
}

// Reset empties the builder, keeping its buffer.
func (b *Builder) Reset() {
	if cap(b.buf) < HeaderSize {
		b.buf = make([]byte, HeaderSize, 64<<10)
	}
	b.buf = b.buf[:HeaderSize]
	clear(b.buf)
	b.count = 0
}

// Add appends one message. It returns ErrTooLarge when the batch would grow
// past MaxBatchSize; the builder is unchanged then.
func (b *Builder) Add(msg []byte) error {
	if len(b.buf) < HeaderSize {
		b.Reset()
	}
	if SizeFor(len(b.buf)-HeaderSize+binary.MaxVarintLen64+len(msg)) > MaxBatchSize {
		return fmt.Errorf("%w: message of %d bytes does not fit", ErrTooLarge, len(msg))
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(len(msg)))
	b.buf = append(b.buf, msg...)
	b.count++
	return nil
}

// Len returns the number of messages added since Reset.
func (b *Builder) Len() int { return int(b.count) }

// Size returns the size the batch would have if finished now.
func (b *Builder) Size() int { return SizeFor(max(len(b.buf)-HeaderSize, 0)) }

// Finish pads the payload, writes the header and returns the batch. The
// returned slice aliases the builder's buffer: it is valid until the next
// Reset or Add. Finish may be called again after more Adds. Finish on an empty builder returns ErrEmpty.
func (b *Builder) Finish() ([]byte, error) {
	if b.count == 0 {
		return nil, ErrEmpty
	}
	payload := len(b.buf) - HeaderSize
	h := Header{
		PayloadLen:  uint32(payload),
		RawLen:      uint32(payload),
		Count:       b.count,
		PayloadHash: xxhash.Sum64(b.buf[HeaderSize:]),
	}
	n := len(b.buf)
	for len(b.buf)%Align != 0 {
		b.buf = append(b.buf, 0)
	}
	putHeader(b.buf, &h)
	out := b.buf
	// Drop the padding again so that a later Add or Finish continues the
	// payload, not the padding.
	b.buf = b.buf[:n]
	return out, nil
}

// AppendBatch encodes msgs as one uncompressed batch appended to dst. It is
// the one-shot form of Builder.
func AppendBatch(dst []byte, msgs ...[]byte) ([]byte, error) {
	if len(msgs) == 0 {
		return dst, ErrEmpty
	}
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	for _, m := range msgs {
		dst = binary.AppendUvarint(dst, uint64(len(m)))
		dst = append(dst, m...)
		if SizeFor(len(dst)-start-HeaderSize) > MaxBatchSize {
			return dst[:start], fmt.Errorf("%w: %d messages", ErrTooLarge, len(msgs))
		}
	}
	payload := len(dst) - start - HeaderSize
	h := Header{
		PayloadLen:  uint32(payload),
		RawLen:      uint32(payload),
		Count:       uint32(len(msgs)),
		PayloadHash: xxhash.Sum64(dst[start+HeaderSize:]),
	}
	for (len(dst)-start)%Align != 0 {
		dst = append(dst, 0)
	}
	putHeader(dst[start:], &h)
	return dst, nil
}
