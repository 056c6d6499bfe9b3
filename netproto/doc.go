// Package netproto owns haraqa's wire protocol: the frame header, one message
// type per file with its body encoding, and the error codes. PROTOCOL.md in
// this directory documents every byte.
//
// A frame is a 16-byte little-endian Header (body length, opcode, flags,
// status, request id) followed by the body. Every message type has
// AppendTo(dst []byte) []byte, which appends the body only, and
// Decode(src []byte) error on a pointer, which decodes a whole body and
// rejects truncated bodies and trailing bytes. AppendFrame, or BeginFrame
// and EndFrame, write a header and a body with the length patched in.
//
// Limits before allocation: Header.Check refuses a body length above the
// receiver's limit before anything is sized by it, and every count and
// length inside a body is checked against the bytes left before slicing.
// Decode never panics on any input; the fuzz targets in /fuzz hold it to
// that.
//
// Aliasing: decoded messages alias the source buffer. Byte-slice fields
// ([]byte topics, tokens, batches, names) point into src and stay valid only
// while src is neither reused nor changed; copy what must outlive the
// buffer. Byte fields are capped slices, so appending to one reallocates
// instead of overwriting the bytes after it. ProduceRequest, ConsumeRequest
// and the fixed-size messages decode without allocating; TopicsResponse and
// WatchRequest allocate their slice of names only when the one they hold is
// too small. AppendTo into a buffer with enough capacity allocates nothing.
//
// Concurrency: messages and headers are plain values with no internal
// state; one goroutine decodes or encodes a given value at a time.
//
// Errors: a nonzero Status is a Code; the body of such a frame is an
// ErrorResponse. *Error carries the code, message, retriable flag and valid
// offset range, and matches the code's sentinel (ErrTopicNotFound, ...)
// with errors.Is. Decoders and Check return *Error values, ready to send
// back with AppendErrorFrame.
//
// Example, a client producing one batch:
//
//	batch, _ := record.AppendBatch(nil, []byte("hello"))
//	req := netproto.ProduceRequest{Topic: []byte("events"), Batch: batch}
//	out := netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpProduce, RequestID: 7}, &req)
//	conn.Write(out)
//
//	h, body, err := netproto.ReadResponse(conn, netproto.DefaultMaxBody, buf)
//	if err != nil { ... }
//	if h.Status != netproto.CodeOK {
//		return netproto.DecodeError(h.Status, body)
//	}
//	var resp netproto.ProduceResponse
//	err = resp.Decode(body) // resp.BaseOffset is the first message's offset
package netproto
