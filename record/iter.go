package record

import (
	"encoding/binary"
	"fmt"
)

// Iter walks the messages of one uncompressed payload. Messages alias the
// payload. The zero value holds no messages.
type Iter struct {
	p    []byte
	left uint32
	err  error
}

// Reset starts iterating payload, which must hold exactly count messages.
func (it *Iter) Reset(payload []byte, count uint32) {
	it.p, it.left, it.err = payload, count, nil
}

// Next returns the next message. It returns false at the end or on malformed
// input; Err tells which.
func (it *Iter) Next() ([]byte, bool) {
	if it.left == 0 {
		if len(it.p) != 0 && it.err == nil {
			it.err = fmt.Errorf("%w: %d bytes after the last message", ErrCorrupt, len(it.p))
		}
		return nil, false
	}
	n, k := binary.Uvarint(it.p)
	if k <= 0 || n > uint64(len(it.p)-k) {
		it.err = fmt.Errorf("%w: message length runs past the payload (%d messages left)", ErrCorrupt, it.left)
		it.left, it.p = 0, nil
		return nil, false
	}
	msg := it.p[k : k+int(n) : k+int(n)]
	it.p = it.p[k+int(n):]
	it.left--
	return msg, true
}

// Err returns the first decoding error, or nil.
func (it *Iter) Err() error { return it.err }

// Messages returns an iterator over an uncompressed, verified batch. Check
// the returned Iter's Err after the loop.
func Messages(batch []byte, h *Header) Iter {
	var it Iter
	it.Reset(batch[HeaderSize:HeaderSize+int(h.PayloadLen)], h.Count)
	return it
}
