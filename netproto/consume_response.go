package netproto

import "github.com/haraqa/haraqa/record"

// ConsumeResponseFixedSize is the size of the fixed part of a
// ConsumeResponse body, before its batch bytes. With the frame header it
// makes 40 bytes, so batches start 8-byte aligned in a frame read into an
// aligned buffer.
const ConsumeResponseFixedSize = 24

// ConsumeResponse answers a ConsumeRequest: the topic's valid offset range
// [Start, End) and BatchBytes bytes of whole, back-to-back record batches.
// The first batch may start before the requested offset and the last may
// end after the limit; the client trims. BatchBytes is a multiple of
// record.Align; zero means no data arrived within the wait. Decode aliases
// Batches to the source; the client checks them with record.Scanner.
//
//	u64 Start | u64 End | u32 BatchBytes | u32 reserved (zero) | Batches
type ConsumeResponse struct {
	Start      uint64
	End        uint64
	BatchBytes uint32
	Batches    []byte
}

// AppendTo appends the fixed part, declaring BatchBytes, then Batches. A
// server that sends the batch bytes itself leaves Batches nil; otherwise
// BatchBytes must equal len(Batches).
func (m *ConsumeResponse) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.Start)
	dst = appendU64(dst, m.End)
	dst = appendU32(dst, m.BatchBytes)
	dst = appendU32(dst, 0)
	return append(dst, m.Batches...)
}

// AppendHead appends a whole response frame except its batch bytes: the
// frame header for request reqID, with BodyLen = ConsumeResponseFixedSize +
// BatchBytes, and the fixed part. The server writes these
// HeaderSize+ConsumeResponseFixedSize bytes, then sends exactly BatchBytes
// bytes of batches from the segment file (sendfile).
func (m *ConsumeResponse) AppendHead(dst []byte, reqID uint64) []byte {
	return m.AppendHeadOp(dst, OpConsume, reqID)
}

// AppendHeadOp is AppendHead for a response to op (OpConsume or
// OpConsumeNext).
func (m *ConsumeResponse) AppendHeadOp(dst []byte, op Opcode, reqID uint64) []byte {
	h := Header{
		BodyLen:   ConsumeResponseFixedSize + m.BatchBytes,
		Opcode:    op,
		Flags:     FlagResponse,
		RequestID: reqID,
	}
	dst = h.AppendTo(dst)
	dst = appendU64(dst, m.Start)
	dst = appendU64(dst, m.End)
	dst = appendU32(dst, m.BatchBytes)
	return appendU32(dst, 0)
}

// Decode decodes a whole body; Batches aliases src.
func (m *ConsumeResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "consume response"}
	m.decodeFixed(&d)
	m.Batches = d.rest()
	if d.why == "" && uint64(len(m.Batches)) != uint64(m.BatchBytes) {
		d.fail("batch bytes do not match the body")
	}
	return d.done()
}

// DecodeFixed decodes only the first ConsumeResponseFixedSize bytes of src,
// for a client that reads the batch bytes into a buffer of its own. It
// leaves Batches nil.
func (m *ConsumeResponse) DecodeFixed(src []byte) error {
	if len(src) > ConsumeResponseFixedSize {
		src = src[:ConsumeResponseFixedSize]
	}
	d := bodyDecoder{b: src, what: "consume response"}
	m.decodeFixed(&d)
	m.Batches = nil
	return d.done()
}

func (m *ConsumeResponse) decodeFixed(d *bodyDecoder) {
	m.Start = d.u64()
	m.End = d.u64()
	m.BatchBytes = d.u32()
	if d.u32() != 0 {
		d.fail("reserved field not zero")
	}
	if m.BatchBytes%record.Align != 0 {
		d.fail("batch bytes not a multiple of 8")
	}
}
