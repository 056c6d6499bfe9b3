package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Transport frames (FORMAT.md "Cluster transport"): length (u32, the
// bytes after it), group (u64), form (u8), then by form:
//
//   - formProto: a protobuf-encoded raftpb.Message (a node frame, group
//     nodeFrame: its payload instead).
//   - formEntries: a message carrying entries (appends, forwarded
//     proposals), their data outside the protobuf: the length (u32) of
//     the protobuf-encoded message without its entries, that encoding, the
//     entry count (u32), per entry its term and index (u64), type (u8) and
//     data length (u32), then every entry's data, back to back.
//
// So the sender writes each entry's data from the entry itself (one
// writev for a round's frames to a peer, no copy into an encoding or a
// write buffer), and the receiver reads a frame's data into one buffer the
// entries then share (one copy, out of the socket), where a protobuf
// encoding cost a copy into the encoding, one out of it, and one into the
// sender's write buffer.

const (
	formProto   = 0
	formEntries = 1

	entryHeader = 21 // term, index, type, data length
	// trustBytes: a frame's entry data up to this size are read into a
	// buffer allocated at once, so that a header cannot make the node
	// allocate more than this before the bytes arrive.
	trustBytes = 4 << 20
	// inlineData: entry data shorter than this is copied into the frame
	// buffer (a separate write vector costs more than the copy).
	inlineData = 4 << 10
)

// frameWriter gathers the frames of one write to a peer as buffers for one
// writev: small parts in buf, large entry data as vectors of their own.
type frameWriter struct {
	vecs net.Buffers
	buf  []byte
	mark int   // start of buf's bytes not yet in vecs
	n    int64 // bytes gathered
}

func (w *frameWriter) reset() {
	clear(w.vecs)
	w.vecs, w.buf, w.mark, w.n = w.vecs[:0], w.buf[:0], 0, 0
}

// add appends one frame (the message is not modified: its entries are
// shared with the Raft log).
func (w *frameWriter) add(e envelope) error {
	start := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, e.group)
	var ents []*pb.Entry
	var err error
	switch {
	case e.msg == nil:
		w.buf = append(w.buf, formProto)
		w.buf = append(w.buf, e.raw...)
	case len(e.msg.Entries) == 0:
		w.buf = append(w.buf, formProto)
		w.buf, err = proto.MarshalOptions{}.MarshalAppend(w.buf, e.msg)
	default:
		ents = e.msg.Entries
		w.buf = append(w.buf, formEntries, 0, 0, 0, 0)
		at := len(w.buf)
		w.buf, err = proto.MarshalOptions{}.MarshalAppend(w.buf, withoutEntries(e.msg))
		binary.LittleEndian.PutUint32(w.buf[at-4:], uint32(len(w.buf)-at))
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(ents)))
		for _, x := range ents {
			w.buf = binary.LittleEndian.AppendUint64(w.buf, x.GetTerm())
			w.buf = binary.LittleEndian.AppendUint64(w.buf, x.GetIndex())
			w.buf = append(w.buf, byte(x.GetType()))
			w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(x.Data)))
		}
	}
	if err != nil {
		w.buf = w.buf[:start]
		return err
	}
	size := int64(len(w.buf) - start - 4)
	for _, x := range ents {
		size += int64(len(x.Data))
	}
	if size > maxMessage {
		w.buf = w.buf[:start]
		return fmt.Errorf("frame of %d bytes", size)
	}
	binary.LittleEndian.PutUint32(w.buf[start:], uint32(size))
	for _, x := range ents {
		if len(x.Data) < inlineData {
			w.buf = append(w.buf, x.Data...)
			continue
		}
		w.cut()
		w.vecs = append(w.vecs, x.Data)
	}
	w.n += size + 4
	return nil
}

// withoutEntries returns a shallow copy of m with every field set but its
// entries.
func withoutEntries(m *pb.Message) *pb.Message {
	c := &pb.Message{}
	dst := c.ProtoReflect()
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != "entries" {
			dst.Set(fd, v)
		}
		return true
	})
	return c
}

// cut ends the current run of buf as a vector. Later appends may move buf;
// the vectors keep the bytes already written.
func (w *frameWriter) cut() {
	if len(w.buf) > w.mark {
		w.vecs = append(w.vecs, w.buf[w.mark:len(w.buf):len(w.buf)])
	}
	w.mark = len(w.buf)
}

// writeTo writes the gathered frames to c (writev) and resets w.
func (w *frameWriter) writeTo(c net.Conn) error {
	w.cut()
	v := w.vecs
	_, err := v.WriteTo(c)
	w.reset()
	return err
}

// writeSome writes the gathered frames to c without blocking (one writev,
// writevNow) and resets w; rest is a copy of what the socket did not take.
func (w *frameWriter) writeSome(c net.Conn) (rest []byte, err error) {
	w.cut()
	n, err := writevNow(c, w.vecs)
	if err == nil {
		for _, v := range w.vecs {
			if n >= len(v) {
				n -= len(v)
				continue
			}
			rest = append(rest, v[n:]...)
			n = 0
		}
	}
	w.reset()
	return rest, err
}

// readFrame reads one frame (after the hello) from br into e, and adds its
// bytes to *size; buf is scratch space it may grow and returns. A node
// frame's payload is a copy; an entries frame's entries share one buffer
// of their data.
func readFrame(br *bufio.Reader, buf []byte, size *uint64) (envelope, []byte, error) {
	var hdr [13]byte
	if _, err := io.ReadFull(br, hdr[:4]); err != nil {
		return envelope{}, buf, err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	*size += uint64(n) + 4
	if n < 9 || n > maxMessage {
		return envelope{}, buf, fmt.Errorf("bad frame length %d", n)
	}
	if _, err := io.ReadFull(br, hdr[4:13]); err != nil {
		return envelope{}, buf, err
	}
	e := envelope{group: binary.LittleEndian.Uint64(hdr[4:])}
	rest := int(n) - 9
	read := func(k int) ([]byte, error) {
		if k > rest {
			return nil, errors.New("frame shorter than its parts")
		}
		rest -= k
		var err error
		buf, err = readBody(br, buf, k)
		return buf, err
	}
	switch form := hdr[12]; {
	case form == formProto:
		b, err := read(rest)
		if err != nil {
			return e, buf, err
		}
		if e.group == nodeFrame {
			e.raw = append([]byte(nil), b...)
			return e, buf, nil
		}
		e.msg = &pb.Message{}
		if err := proto.Unmarshal(b, e.msg); err != nil {
			return e, buf, fmt.Errorf("decode raft message: %w", err)
		}
		return e, buf, nil
	case form == formEntries && e.group != nodeFrame:
		b, err := read(4)
		if err != nil {
			return e, buf, err
		}
		if b, err = read(int(binary.LittleEndian.Uint32(b))); err != nil {
			return e, buf, err
		}
		e.msg = &pb.Message{}
		if err := proto.Unmarshal(b, e.msg); err != nil {
			return e, buf, fmt.Errorf("decode raft message: %w", err)
		}
		if len(e.msg.Entries) > 0 {
			return e, buf, errors.New("entries frame with entries in its message")
		}
		if b, err = read(4); err != nil {
			return e, buf, err
		}
		cnt := int(binary.LittleEndian.Uint32(b))
		if cnt == 0 || cnt > rest/entryHeader {
			return e, buf, fmt.Errorf("bad entry count %d", cnt)
		}
		if b, err = read(cnt * entryHeader); err != nil {
			return e, buf, err
		}
		ents := make([]*pb.Entry, cnt)
		lens := make([]int, cnt)
		total := 0
		for i := range ents {
			h := b[i*entryHeader:]
			l := int(binary.LittleEndian.Uint32(h[17:]))
			if l > rest-total {
				return e, buf, errors.New("entry data past the frame's end")
			}
			total += l
			lens[i] = l
			ents[i] = &pb.Entry{Term: new(binary.LittleEndian.Uint64(h)), Index: new(binary.LittleEndian.Uint64(h[8:])),
				Type: pb.EntryType(h[16]).Enum()}
		}
		if total != rest {
			return e, buf, errors.New("entry data do not fill the frame")
		}
		// Allocated at once up to trustBytes (a frame's usual size); a
		// larger one grows as its bytes arrive (readBody).
		data, err := readBody(br, make([]byte, 0, min(total, trustBytes)), total)
		if err != nil {
			return e, buf, err
		}
		p := 0
		for i, x := range ents {
			if l := lens[i]; l > 0 {
				x.Data = data[p : p+l : p+l]
				p += l
			}
		}
		e.msg.Entries = ents
		return e, buf, nil
	default:
		return e, buf, fmt.Errorf("unknown frame form %d", form)
	}
}
