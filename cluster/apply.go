package cluster

// stageBuf is a topic apply's reusable buffer for the batches of one
// entry: the engine stamps each batch in place (offset, time, checksum),
// so it is given a copy; copying into one buffer kept for the next entry
// saves an allocation (and its zeroing) per batch.
type stageBuf struct {
	b []byte
}

// stage returns the group's buffer, large enough for batches (apply
// goroutine only; the previous entry's batches must be stored).
func (g *group) stage(batches [][]byte) *stageBuf {
	total := 0
	for _, b := range batches {
		total += len(b)
	}
	if cap(g.abuf.b) < total {
		g.abuf.b = make([]byte, 0, total)
	}
	g.abuf.b = g.abuf.b[:0]
	return &g.abuf
}

// next copies b into the buffer and returns the copy.
func (s *stageBuf) next(b []byte) []byte {
	start := len(s.b)
	s.b = append(s.b, b...)
	return s.b[start:len(s.b):len(s.b)]
}
