package netproto

// TopicsResponse answers a TopicsRequest with the matching names, sorted.
// Decode aliases every name to the source and reuses the Names slice when
// it is large enough; the count is checked against the body (each name
// costs at least 2 bytes) before the slice is sized by it.
//
//	u32 Count | Count × (u16 len + Name)
type TopicsResponse struct {
	Names [][]byte
}

// AppendTo appends the body to dst.
func (m *TopicsResponse) AppendTo(dst []byte) []byte {
	return appendStrs(dst, m.Names)
}

// Decode decodes a body; the names alias src.
func (m *TopicsResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "topics response"}
	m.Names = d.strs(m.Names)
	return d.done()
}

// appendStrs appends a u32 count and each string with its u16 length.
func appendStrs(dst []byte, list [][]byte) []byte {
	dst = appendU32(dst, uint32(len(list)))
	for _, s := range list {
		dst = appendStr(dst, s)
	}
	return dst
}

// strs reads what appendStrs wrote into buf[:0], growing it only when the
// count, bounded by the body, does not fit.
func (d *bodyDecoder) strs(buf [][]byte) [][]byte {
	n := d.count(2)
	if d.why != "" {
		return buf[:0]
	}
	if cap(buf) < n {
		buf = make([][]byte, 0, n)
	}
	buf = buf[:0]
	for range n {
		buf = append(buf, d.str())
	}
	return buf
}
