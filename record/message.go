package record

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The extended message encoding (FlagExtended; FORMAT.md, "Extended
// messages"): the raw payload starts with an 8-byte little-endian base
// timestamp, then holds count messages, each
//
//	uvarint  length of the rest of the message
//	varint   timestamp - base (zigzag, encoding/binary.AppendVarint)
//	uvarint  key length, key bytes
//	uvarint  header count, then per header:
//	         uvarint key length, key bytes, uvarint value length, value bytes
//	value    the remaining bytes

// baseSize is the size of the base timestamp at the start of an extended
// payload.
const baseSize = 8

// MessageHeader is one header of a message: a string key and a bytes
// value. Keys need not be unique; their order is kept.
type MessageHeader struct {
	Key   string
	Value []byte
}

// Message is one decoded message (Iter.NextMessage). Its slices alias the
// raw payload and have capacity equal to their length.
type Message struct {
	// Value is the message's content.
	Value []byte
	// Key is the message's key; nil when it has none (an empty key is no
	// key). Always nil in a plain batch.
	Key []byte
	// Timestamp is the producer's time of the message in Unix nanoseconds,
	// 0 when it has none. Always 0 in a plain batch.
	Timestamp int64

	hdrs  []byte // the encoded headers, validated by the iterator
	nhdrs int
}

// NumHeaders returns the number of headers of the message.
func (m *Message) NumHeaders() int { return m.nhdrs }

// Headers returns an iterator over the message's headers.
func (m *Message) Headers() HeaderIter { return HeaderIter{p: m.hdrs, left: m.nhdrs} }

// HeaderIter walks the headers of one message. The iterator validated them
// when it decoded the message, so walking them cannot fail.
type HeaderIter struct {
	p    []byte
	left int
}

// Next returns the next header's key and value, aliasing the payload, or
// false after the last one.
func (h *HeaderIter) Next() (key, value []byte, ok bool) {
	if h.left == 0 {
		return nil, nil, false
	}
	h.left--
	key, h.p = cutBytes(h.p)
	value, h.p = cutBytes(h.p)
	return key, value, true
}

// cutBytes splits a length-prefixed field off validated bytes.
func cutBytes(p []byte) (field, rest []byte) {
	n, k := binary.Uvarint(p)
	end := k + int(n)
	return p[k:end:end], p[end:]
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

// extendedLen returns the encoded size of a message's fields after its
// length varint.
func extendedLen(delta int64, key, value []byte, hdrs []MessageHeader) int {
	n := uvarintLen(zigzag(delta)) + uvarintLen(uint64(len(key))) + len(key) +
		uvarintLen(uint64(len(hdrs))) + len(value)
	for i := range hdrs {
		n += uvarintLen(uint64(len(hdrs[i].Key))) + len(hdrs[i].Key) +
			uvarintLen(uint64(len(hdrs[i].Value))) + len(hdrs[i].Value)
	}
	return n
}

// appendExtended appends one message in the extended encoding; inner is
// extendedLen of its fields.
func appendExtended(dst []byte, inner int, delta int64, key, value []byte, hdrs []MessageHeader) []byte {
	dst = binary.AppendUvarint(dst, uint64(inner))
	dst = binary.AppendVarint(dst, delta)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(hdrs)))
	for i := range hdrs {
		dst = binary.AppendUvarint(dst, uint64(len(hdrs[i].Key)))
		dst = append(dst, hdrs[i].Key...)
		dst = binary.AppendUvarint(dst, uint64(len(hdrs[i].Value)))
		dst = append(dst, hdrs[i].Value...)
	}
	return append(dst, value...)
}

// parseExtended decodes the fields of one extended message (the bytes
// after its length varint), checking every length against m.
func parseExtended(m []byte, base int64) (Message, error) {
	var msg Message
	delta, k := binary.Varint(m)
	if k <= 0 {
		return msg, fmt.Errorf("%w: bad timestamp varint", ErrCorrupt)
	}
	msg.Timestamp = base + delta // wraps exactly as the encoder's subtraction did
	m = m[k:]
	key, m, ok := cutChecked(m)
	if !ok {
		return msg, fmt.Errorf("%w: key runs past the message", ErrCorrupt)
	}
	if len(key) > 0 {
		msg.Key = key
	}
	n, k := binary.Uvarint(m)
	// Every header takes at least two bytes: its two length varints.
	if k <= 0 || n > uint64(len(m)-k)/2 {
		return msg, fmt.Errorf("%w: header count runs past the message", ErrCorrupt)
	}
	m = m[k:]
	hdrs := m
	for range n {
		if _, m, ok = cutChecked(m); ok {
			_, m, ok = cutChecked(m)
		}
		if !ok {
			return msg, fmt.Errorf("%w: header runs past the message", ErrCorrupt)
		}
	}
	msg.hdrs = hdrs[: len(hdrs)-len(m) : len(hdrs)-len(m)]
	msg.nhdrs = int(n)
	msg.Value = m[:len(m):len(m)]
	return msg, nil
}

// cutChecked splits a length-prefixed field off p, or reports false when
// the varint or the field runs past p.
func cutChecked(p []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return p[k:end:end], p[end:], true
}
