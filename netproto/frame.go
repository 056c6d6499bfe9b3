package netproto

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// Frame constants.
const (
	// HeaderSize is the size of the fixed frame header.
	HeaderSize = 16
	// ProtocolVersion is the protocol version this package speaks; HelloRequest
	// and HelloResponse carry it.
	ProtocolVersion uint16 = 1
	// DefaultMaxBody is the default limit on a frame's body: a 64 MiB batch
	// plus room for the topic name and fixed fields.
	DefaultMaxBody uint32 = 64<<20 + 64<<10
	// MaxString is the longest string field: its length is a u16. Encoders
	// truncate longer fields; check topic names with topicname.Check first.
	MaxString = 1<<16 - 1
)

// Flag bits of Header.Flags.
const (
	// FlagResponse marks a frame sent by the server: a response, an error
	// response or a WatchEvent. Every other bit is reserved and must be zero.
	FlagResponse uint8 = 0x01

	flagsKnown = FlagResponse
)

// Header is the fixed 16-byte header that starts every frame. All integers
// are little-endian:
//
//	[0:4)   BodyLen    u32  bytes after the header
//	[4]     Opcode     u8
//	[5]     Flags      u8   FlagResponse; other bits zero
//	[6:8)   Status     u16  0 = OK, else a Code (responses only)
//	[8:16)  RequestID  u64  chosen by the client, echoed by the server
type Header struct {
	BodyLen   uint32
	Opcode    Opcode
	Flags     uint8
	Status    Code
	RequestID uint64
}

// IsResponse reports whether the frame travels from server to client.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// AppendTo appends the 16 header bytes to dst.
func (h Header) AppendTo(dst []byte) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, h.BodyLen)
	dst = append(dst, byte(h.Opcode), h.Flags)
	dst = le.AppendUint16(dst, uint16(h.Status))
	return le.AppendUint64(dst, h.RequestID)
}

// Decode reads the header from the first HeaderSize bytes of src; bytes
// after them (the body, when src holds a whole frame) are ignored. Decode
// only fails on a short src: call Check before trusting the fields.
func (h *Header) Decode(src []byte) error {
	if len(src) < HeaderSize {
		return malformed("frame header", strconv.Itoa(len(src))+" of 16 bytes")
	}
	le := binary.LittleEndian
	h.BodyLen = le.Uint32(src[0:])
	h.Opcode = Opcode(src[4])
	h.Flags = src[5]
	h.Status = Code(le.Uint16(src[6:]))
	h.RequestID = le.Uint64(src[8:])
	return nil
}

// Check validates a decoded header before anything is allocated or read for
// its body. It refuses, as an *Error:
//   - a BodyLen above maxBody (CodeFrameTooLarge), checked first: the four
//     bytes "GET " read as a length are 542,393,671;
//   - an unknown opcode (CodeUnknownOpcode), except on an error response,
//     which echoes whatever opcode its request had;
//   - reserved flag bits, a request with a nonzero Status, and a WatchEvent
//     that is not flagged as a response (CodeMalformed).
func (h Header) Check(maxBody uint32) error {
	if h.BodyLen > maxBody {
		return &Error{Code: CodeFrameTooLarge, Message: "body of " +
			strconv.FormatUint(uint64(h.BodyLen), 10) + " bytes, limit " + strconv.FormatUint(uint64(maxBody), 10)}
	}
	if h.Flags&^flagsKnown != 0 {
		return malformed("frame header", "reserved flags "+strconv.Itoa(int(h.Flags)))
	}
	if h.IsResponse() && h.Status != CodeOK {
		return nil
	}
	if !h.Opcode.Valid() {
		return &Error{Code: CodeUnknownOpcode, Message: h.Opcode.String()}
	}
	if !h.IsResponse() {
		if h.Status != CodeOK {
			return malformed("frame header", "request with status "+h.Status.String())
		}
		if h.Opcode == OpWatchEvent {
			return malformed("frame header", "watch-event sent as a request")
		}
	}
	return nil
}

// Encoder is implemented by every message type: AppendTo appends the
// message's body (never a frame header) to dst.
type Encoder interface {
	AppendTo(dst []byte) []byte
}

// Message is implemented by a pointer to every message type.
type Message interface {
	Encoder
	Decode(src []byte) error
}

// AppendFrame appends a whole frame to dst: h with BodyLen set to the size of
// msg's body, then the body. h.BodyLen is ignored. A nil msg sends an empty
// body. msg goes through an interface, so a message value that does not
// already live on the heap escapes to it: reuse one message value per
// connection, or use BeginFrame and EndFrame, where nothing may allocate.
func AppendFrame(dst []byte, h Header, msg Encoder) []byte {
	start := len(dst)
	dst = h.AppendTo(dst)
	if msg != nil {
		dst = msg.AppendTo(dst)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-HeaderSize))
	return dst
}

// BeginFrame appends h and returns where the frame starts; append the body
// to dst, then call EndFrame. It is AppendFrame without the interface call,
// for hot paths that must not allocate.
func BeginFrame(dst []byte, h Header) ([]byte, int) {
	return h.AppendTo(dst), len(dst)
}

// EndFrame patches the BodyLen of the frame that BeginFrame started at start.
func EndFrame(dst []byte, start int) []byte {
	SetBodyLen(dst[start:], uint32(len(dst)-start-HeaderSize))
	return dst
}

// SetBodyLen rewrites the BodyLen field of the encoded frame header at the
// start of frame, in place: for a sender whose body is written after the
// header (a payload passed to writev) and known only then.
func SetBodyLen(frame []byte, n uint32) { binary.LittleEndian.PutUint32(frame[0:], n) }

// SetRequestID rewrites the RequestID field of the encoded frame header at
// the start of frame, in place: for a sender that builds the frame before
// it picks the request id.
func SetRequestID(frame []byte, id uint64) { binary.LittleEndian.PutUint64(frame[8:], id) }

// AppendErrorFrame appends an error response to the request (op, reqID):
// Status is e's code (CodeInternal if e.Code is CodeOK) and the body an
// ErrorResponse built from e.
func AppendErrorFrame(dst []byte, op Opcode, reqID uint64, e *Error) []byte {
	code := e.Code
	if code == CodeOK {
		code = CodeInternal
	}
	h := Header{Opcode: op, Flags: FlagResponse, Status: code, RequestID: reqID}
	dst, start := BeginFrame(dst, h)
	body := ErrorResponse{Retriable: e.Retriable, Start: e.Start, End: e.End, Message: []byte(e.Message)}
	dst = body.AppendTo(dst)
	return EndFrame(dst, start)
}

// ReadHeader reads and decodes one frame header from r into scratch. It
// returns io.EOF when r ends before the first byte and io.ErrUnexpectedEOF
// when it ends inside the header. It does not Check the header.
func ReadHeader(r io.Reader, scratch *[HeaderSize]byte) (Header, error) {
	var h Header
	if _, err := io.ReadFull(r, scratch[:]); err != nil {
		return h, err
	}
	err := h.Decode(scratch[:])
	return h, err
}

// CheckRequest is Check for a server: it also refuses a frame flagged as a
// response (CodeMalformed).
func (h Header) CheckRequest(maxBody uint32) error {
	if err := h.Check(maxBody); err != nil {
		return err
	}
	if h.IsResponse() {
		return malformed("frame header", "response flag on a frame sent to the server")
	}
	return nil
}

// CheckResponse is Check for a client: it also refuses a frame not flagged
// as a response (CodeMalformed).
func (h Header) CheckResponse(maxBody uint32) error {
	if err := h.Check(maxBody); err != nil {
		return err
	}
	if !h.IsResponse() {
		return malformed("frame header", "request frame sent to the client")
	}
	return nil
}

// ReadRequest reads one frame on the server side. It reads the header into
// buf, checks it with CheckRequest against maxBody and only then grows buf to
// the body's length and reads the body into it. The body aliases the
// returned buffer: pass body[:0] back in as buf to reuse it. On a check
// failure ReadRequest returns the header, so that the caller can answer its
// RequestID, and the *Error, without reading the body. A stream that ends
// before the first byte gives io.EOF; one that ends inside the frame gives
// io.ErrUnexpectedEOF.
func ReadRequest(r io.Reader, maxBody uint32, buf []byte) (Header, []byte, error) {
	return readFrame(r, maxBody, buf, Header.CheckRequest)
}

// ReadResponse is ReadRequest for the client side: it checks the header
// with CheckResponse.
func ReadResponse(r io.Reader, maxBody uint32, buf []byte) (Header, []byte, error) {
	return readFrame(r, maxBody, buf, Header.CheckResponse)
}

func readFrame(r io.Reader, maxBody uint32, buf []byte, check func(Header, uint32) error) (Header, []byte, error) {
	var h Header
	if cap(buf) < HeaderSize {
		buf = make([]byte, HeaderSize, 512)
	}
	if _, err := io.ReadFull(r, buf[:HeaderSize]); err != nil {
		return h, buf[:0], err
	}
	_ = h.Decode(buf[:HeaderSize]) // cannot fail: HeaderSize bytes
	if err := check(h, maxBody); err != nil {
		return h, buf[:0], err
	}
	n := int(h.BodyLen)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, body[:0], err
	}
	return h, body, nil
}
