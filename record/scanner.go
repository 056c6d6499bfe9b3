package record

import "fmt"

// Scanner walks back-to-back batches in a byte region, such as a memory
// mapped segment, verifying each one. It is the one scanner that recovery,
// reads, repair and the dump tool share.
type Scanner struct {
	buf  []byte
	pos  int
	next int
	h    Header
	err  error
}

// NewScanner returns a scanner over buf starting at position 0.
func NewScanner(buf []byte) Scanner { return Scanner{buf: buf} }

// Reset restarts the scanner over buf at position pos.
func (s *Scanner) Reset(buf []byte, pos int) {
	*s = Scanner{buf: buf, pos: pos, next: pos}
}

// Next verifies the batch at the current position and advances past it. It
// returns false at the clean end of the region or at the first invalid
// batch; Err says which, and Pos says where the scan stopped.
func (s *Scanner) Next() bool {
	s.pos = s.next
	if s.err != nil || s.pos >= len(s.buf) {
		return false
	}
	rest := s.buf[s.pos:]
	if len(rest) >= HeaderSize && IsZero(rest[:HeaderSize]) {
		s.err = fmt.Errorf("%w: zeroed header at position %d", ErrIncomplete, s.pos)
		return false
	}
	h, err := ParseHeader(rest)
	if err != nil {
		s.err = fmt.Errorf("at position %d: %w", s.pos, err)
		return false
	}
	size := h.Size()
	if size > len(rest) {
		s.err = fmt.Errorf("%w: batch at position %d needs %d bytes, %d remain", ErrIncomplete, s.pos, size, len(rest))
		return false
	}
	if err := verifyBody(rest, &h); err != nil {
		s.err = fmt.Errorf("at position %d: %w", s.pos, err)
		return false
	}
	s.h = h
	s.next = s.pos + size
	return true
}

// Header returns the header of the batch Next just verified.
func (s *Scanner) Header() *Header { return &s.h }

// Batch returns the bytes of the batch Next just verified.
func (s *Scanner) Batch() []byte { return s.buf[s.pos:s.next] }

// Pos returns the position of the current batch, or, after Next returned
// false, the position where the scan stopped.
func (s *Scanner) Pos() int { return s.pos }

// End returns the position after the last verified batch.
func (s *Scanner) End() int { return s.next }

// Err returns nil after a clean end, or why the scan stopped.
func (s *Scanner) Err() error { return s.err }

// FindValid reports the position of the first fully valid batch that starts
// at an Align-aligned position at or after from, or -1 when there is none.
// Recovery uses it to resume indexing after damage. A batch it finds may
// lie inside another batch's payload: it says nothing about the offsets.
func FindValid(buf []byte, from int) int {
	from = (max(from, 0) + Align - 1) &^ (Align - 1)
	for p := from; p+HeaderSize <= len(buf); p += Align {
		if buf[p] != 'H' || buf[p+1] != 'R' {
			continue
		}
		h, err := ParseHeader(buf[p:])
		if err != nil || h.Size() > len(buf)-p {
			continue
		}
		if verifyBody(buf[p:], &h) == nil {
			return p
		}
	}
	return -1
}
