package record

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
)

// Builder appends messages into a reusable buffer and finishes them as one
// batch, uncompressed (Finish) or compressed (FinishCodec). Messages added
// with Add use the plain encoding; the first AddMessage switches the batch
// to the extended encoding (keys, headers, timestamps), re-encoding any
// plain messages added before it once. After its buffers have grown to
// their working size a Builder allocates nothing. The zero value is ready
// to use.
type Builder struct {
	buf   []byte // header space, then the raw payload
	count uint32
	ext   bool   // the payload uses the extended encoding
	base  int64  // extended: the base timestamp, also in buf[64:72]
	zbuf  []byte // FinishCodec's batch; scratch for the switch to extended
}

// Reset empties the builder, keeping its buffers.
func (b *Builder) Reset() {
	if cap(b.buf) < HeaderSize {
		b.buf = make([]byte, HeaderSize, 64<<10)
	}
	b.buf = b.buf[:HeaderSize]
	clear(b.buf)
	b.count, b.ext, b.base = 0, false, 0
}

// Add appends one message with no key, headers or timestamp. It returns
// ErrTooLarge when the batch would grow past MaxBatchSize; the builder is
// unchanged then.
func (b *Builder) Add(msg []byte) error {
	if len(b.buf) < HeaderSize {
		b.Reset()
	}
	if b.ext {
		return b.AddMessage(0, nil, msg, nil)
	}
	if SizeFor(len(b.buf)-HeaderSize+binary.MaxVarintLen64+len(msg)) > MaxBatchSize {
		return fmt.Errorf("%w: message of %d bytes does not fit", ErrTooLarge, len(msg))
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(len(msg)))
	b.buf = append(b.buf, msg...)
	b.count++
	return nil
}

// AddMessage appends one message with a key (nil or empty: none), headers
// and the producer's timestamp in Unix nanoseconds (0: none), in the
// extended encoding. It returns ErrTooLarge when the batch would grow past
// MaxBatchSize; the builder is unchanged then.
func (b *Builder) AddMessage(timestamp int64, key, value []byte, hdrs []MessageHeader) error {
	if len(b.buf) < HeaderSize {
		b.Reset()
	}
	base := b.base
	if !b.ext {
		base = timestamp
	}
	delta := timestamp - base // may wrap; the decoder's addition wraps back
	inner := extendedLen(delta, key, value, hdrs)
	need := uvarintLen(uint64(inner)) + inner
	if !b.ext {
		// The switch re-encodes each plain message with a timestamp
		// delta, key length and header count: at most 12 more bytes,
		// and one more for its length varint.
		need += baseSize + 13*int(b.count)
	}
	if inner > MaxBatchSize || SizeFor(len(b.buf)-HeaderSize+need) > MaxBatchSize {
		return fmt.Errorf("%w: message of %d bytes does not fit", ErrTooLarge, inner)
	}
	if !b.ext {
		b.toExtended(timestamp)
	}
	b.buf = appendExtended(b.buf, inner, delta, key, value, hdrs)
	b.count++
	return nil
}

// toExtended switches the payload to the extended encoding with the given
// base timestamp, re-encoding the plain messages added so far (with no
// timestamp, key or headers) through zbuf.
func (b *Builder) toExtended(base int64) {
	if b.count == 0 {
		b.buf = binary.LittleEndian.AppendUint64(b.buf[:HeaderSize], uint64(base))
		b.ext, b.base = true, base
		return
	}
	out := b.zbuf[:0]
	if need := len(b.buf) + baseSize + 13*int(b.count); cap(out) < need {
		out = make([]byte, 0, need)
	}
	out = out[:HeaderSize]
	out = binary.LittleEndian.AppendUint64(out, uint64(base))
	var it Iter
	it.Reset(b.buf[HeaderSize:], b.count)
	for m, ok := it.next(); ok; m, ok = it.next() {
		delta := -base
		out = appendExtended(out, extendedLen(delta, nil, m, nil), delta, nil, m, nil)
	}
	b.buf, b.zbuf = out, b.buf
	b.ext, b.base = true, base
}

// Len returns the number of messages added since Reset.
func (b *Builder) Len() int { return int(b.count) }

// Size returns the size the batch would have if finished now without
// compression.
func (b *Builder) Size() int { return SizeFor(max(len(b.buf)-HeaderSize, 0)) }

func (b *Builder) flags() uint16 {
	if b.ext {
		return FlagExtended
	}
	return 0
}

// Finish pads the payload, writes the header and returns the batch,
// uncompressed. The returned slice aliases the builder's buffer: it is
// valid until the next Reset, Add or AddMessage. Finish may be called
// again after more messages. Finish on an empty builder returns ErrEmpty.
func (b *Builder) Finish() ([]byte, error) {
	if b.count == 0 {
		return nil, ErrEmpty
	}
	payload := len(b.buf) - HeaderSize
	h := Header{
		Flags:       b.flags(),
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

// FinishCodec is Finish with the payload compressed by c: payload_len and
// payload_hash describe the compressed bytes, raw_len the raw payload.
// When compressing does not make the payload smaller, the batch is stored
// uncompressed (codec none), as Finish would. The returned slice aliases a
// second buffer of the builder, valid until the next Reset, Add,
// AddMessage or FinishCodec; the builder's messages are kept, so more may
// be added and the batch finished again.
func (b *Builder) FinishCodec(c Codec) ([]byte, error) {
	if c == CodecNone {
		return b.Finish()
	}
	if b.count == 0 {
		return nil, ErrEmpty
	}
	raw := b.buf[HeaderSize:]
	out, err := compress(growTo(b.zbuf[:0], HeaderSize), raw, c)
	if err != nil {
		return nil, err
	}
	b.zbuf = out
	stored := len(out) - HeaderSize
	if stored >= len(raw) {
		return b.Finish()
	}
	h := Header{
		Flags:       b.flags() | uint16(c),
		PayloadLen:  uint32(stored),
		RawLen:      uint32(len(raw)),
		Count:       b.count,
		PayloadHash: xxhash.Sum64(out[HeaderSize:]),
	}
	for len(out)%Align != 0 {
		out = append(out, 0)
	}
	putHeader(out, &h)
	b.zbuf = out
	return out, nil
}

// AppendBatch encodes msgs as one uncompressed batch in the plain encoding
// appended to dst. It is the one-shot form of Builder.
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

// AddFrom appends one message in the plain encoding whose value is read
// from r until io.EOF, straight into the batch (no second copy of the
// value is held). It returns the value's length. A value longer than max
// bytes, or one that would grow the batch past MaxBatchSize, is
// ErrTooLarge; on any error the builder is unchanged. It is an error on a
// batch that already uses the extended encoding.
func (b *Builder) AddFrom(r io.Reader, max int) (int, error) {
	if len(b.buf) < HeaderSize {
		b.Reset()
	}
	if b.ext {
		return 0, fmt.Errorf("record: AddFrom on an extended batch")
	}
	start := len(b.buf)
	// Room for the longest length varint; the value is moved down once
	// its length is known.
	b.buf = append(b.buf, make([]byte, binary.MaxVarintLen64)...)
	n := 0
	for {
		if len(b.buf) == cap(b.buf) {
			b.buf = append(b.buf, make([]byte, 32<<10)...)[:len(b.buf)]
		}
		m, err := r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+m]
		n += m
		if n > max || SizeFor(len(b.buf)-HeaderSize) > MaxBatchSize {
			b.buf = b.buf[:start]
			return 0, fmt.Errorf("%w: message of more than %d bytes", ErrTooLarge, min(n, max))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.buf = b.buf[:start]
			return 0, err
		}
	}
	k := binary.PutUvarint(b.buf[start:], uint64(n))
	copy(b.buf[start+k:], b.buf[start+binary.MaxVarintLen64:])
	b.buf = b.buf[:start+k+n]
	b.count++
	return n, nil
}

// Align - 1 zero bytes: the most padding a batch needs.
var zeroPad [Align - 1]byte

// SingleParts encodes a batch of the one plain message msg without copying
// it: the batch is head, then msg, then pad, written one after the other
// (a vectored write). head is the header and msg's length varint, appended
// to dst[:0]; pad is the zero padding (read-only, shared). The payload hash
// covers the varint and msg, exactly as AppendBatch(nil, msg) encodes it.
func SingleParts(dst, msg []byte) (head, pad []byte, err error) {
	var v [binary.MaxVarintLen64]byte
	vn := binary.PutUvarint(v[:], uint64(len(msg)))
	payload := vn + len(msg)
	if SizeFor(payload) > MaxBatchSize {
		return nil, nil, fmt.Errorf("%w: message of %d bytes does not fit", ErrTooLarge, len(msg))
	}
	var d xxhash.Digest
	d.Reset()
	d.Write(v[:vn])
	d.Write(msg)
	h := Header{PayloadLen: uint32(payload), RawLen: uint32(payload), Count: 1, PayloadHash: d.Sum64()}
	head = append(dst[:0], make([]byte, HeaderSize)...)
	putHeader(head, &h)
	head = append(head, v[:vn]...)
	return head, zeroPad[:SizeFor(payload)-HeaderSize-payload], nil
}
