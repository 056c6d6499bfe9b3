package record

import (
	"encoding/binary"
	"fmt"
)

// Iter walks the messages of one raw (uncompressed) payload, in the plain
// or the extended encoding. Messages alias the payload. The zero value
// holds no messages. One Iter serves both encodings: Next returns each
// message's value, NextMessage the value with its key, timestamp and
// headers; neither allocates.
type Iter struct {
	p    []byte
	left uint32
	err  error
	ext  bool  // extended encoding
	base int64 // extended: the base timestamp
}

// Reset starts iterating a payload in the plain encoding, which must hold
// exactly count messages.
func (it *Iter) Reset(payload []byte, count uint32) {
	*it = Iter{p: payload, left: count}
}

// ResetPayload starts iterating raw, the raw payload of the batch h
// describes: the stored payload of an uncompressed batch, or what
// Decompress returned. The encoding follows h's FlagExtended.
func (it *Iter) ResetPayload(raw []byte, h *Header) {
	*it = Iter{p: raw, left: h.Count}
	if h.Flags&FlagExtended == 0 {
		return
	}
	it.ext = true
	if len(raw) < baseSize {
		it.fail(fmt.Errorf("%w: extended payload of %d bytes has no base timestamp", ErrCorrupt, len(raw)))
		return
	}
	it.base = int64(binary.LittleEndian.Uint64(raw))
	it.p = raw[baseSize:]
}

// Next returns the next message's value. It returns false at the end or
// on malformed input; Err tells which.
func (it *Iter) Next() ([]byte, bool) {
	if !it.ext {
		m, ok := it.next()
		return m, ok
	}
	m, ok := it.NextMessage()
	return m.Value, ok
}

// NextMessage returns the next message with its key, timestamp and
// headers (all empty in a plain payload). It returns false at the end or
// on malformed input; Err tells which.
func (it *Iter) NextMessage() (Message, bool) {
	m, ok := it.next()
	if !ok || !it.ext {
		return Message{Value: m}, ok
	}
	msg, err := parseExtended(m, it.base)
	if err != nil {
		it.fail(fmt.Errorf("%w (%d messages left)", err, it.left+1))
		return Message{}, false
	}
	return msg, true
}

// next cuts the next length-prefixed message off the payload.
func (it *Iter) next() ([]byte, bool) {
	if it.left == 0 {
		if len(it.p) != 0 && it.err == nil {
			it.err = fmt.Errorf("%w: %d bytes after the last message", ErrCorrupt, len(it.p))
		}
		return nil, false
	}
	n, k := binary.Uvarint(it.p)
	if k <= 0 || n > uint64(len(it.p)-k) {
		it.fail(fmt.Errorf("%w: message length runs past the payload (%d messages left)", ErrCorrupt, it.left))
		return nil, false
	}
	msg := it.p[k : k+int(n) : k+int(n)]
	it.p = it.p[k+int(n):]
	it.left--
	return msg, true
}

func (it *Iter) fail(err error) {
	it.err, it.left, it.p = err, 0, nil
}

// Err returns the first decoding error, or nil.
func (it *Iter) Err() error { return it.err }

// Messages returns an iterator over an uncompressed, verified batch, in
// either message encoding. A compressed batch gives an Iter whose Err is
// ErrCodec: decompress it first (Decompress, then Iter.ResetPayload).
// Check the returned Iter's Err after the loop.
func Messages(batch []byte, h *Header) Iter {
	var it Iter
	if c := h.Codec(); c != CodecNone {
		it.err = fmt.Errorf("%w: %v payload: use Decompress and Iter.ResetPayload", ErrCodec, c)
		return it
	}
	it.ResetPayload(batch[HeaderSize:HeaderSize+int(h.PayloadLen)], h)
	return it
}
