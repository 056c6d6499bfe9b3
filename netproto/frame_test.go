package netproto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{BodyLen: 1234, Opcode: OpConsume, Flags: FlagResponse, Status: CodeTimeout, RequestID: 1<<63 + 5}
	enc := h.AppendTo(nil)
	if len(enc) != HeaderSize {
		t.Fatalf("header is %d bytes", len(enc))
	}
	want := []byte{0xd2, 0x04, 0, 0, 3, 1, 16, 0, 5, 0, 0, 0, 0, 0, 0, 0x80}
	if !bytes.Equal(enc, want) {
		t.Fatalf("header bytes %x, want %x", enc, want)
	}
	var got Header
	if err := got.Decode(enc); err != nil || got != h {
		t.Fatalf("Decode: %+v, %v", got, err)
	}
	if err := got.Decode(enc[:15]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode of 15 bytes: %v", err)
	}
}

func headerOf(b string) Header {
	var h Header
	_ = h.Decode([]byte(b))
	return h
}

func TestHeaderCheck(t *testing.T) {
	cases := []struct {
		name string
		h    Header
		want error
	}{
		{"request", Header{BodyLen: 10, Opcode: OpProduce, RequestID: 1}, nil},
		{"response", Header{Opcode: OpProduce, Flags: FlagResponse}, nil},
		{"body at the limit", Header{BodyLen: DefaultMaxBody, Opcode: OpProduce}, nil},
		{"body over the limit", Header{BodyLen: DefaultMaxBody + 1, Opcode: OpProduce}, ErrFrameTooLarge},
		{"huge body", Header{BodyLen: 0xffffffff, Opcode: OpHello}, ErrFrameTooLarge},
		{"HTTP request", headerOf("GET / HTTP/1.1\r\n"), ErrFrameTooLarge},
		{"opcode 0", Header{Opcode: 0}, ErrUnknownOpcode},
		{"opcode 25", Header{Opcode: 25}, ErrUnknownOpcode},
		{"ok response with opcode 200", Header{Opcode: 200, Flags: FlagResponse}, ErrUnknownOpcode},
		{"error response echoes opcode 200", Header{Opcode: 200, Flags: FlagResponse, Status: CodeUnknownOpcode}, nil},
		{"reserved flag", Header{Opcode: OpHello, Flags: 0x2}, ErrMalformed},
		{"request with status", Header{Opcode: OpHello, Status: CodeInternal}, ErrMalformed},
		{"watch-event request", Header{Opcode: OpWatchEvent}, ErrMalformed},
		{"watch-event push", Header{Opcode: OpWatchEvent, Flags: FlagResponse}, nil},
	}
	for _, c := range cases {
		err := c.h.Check(DefaultMaxBody)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Check(%+v) = %v, want %v", c.name, c.h, err, c.want)
		}
	}
	if h := headerOf("GET / HTTP/1.1\r\n"); h.BodyLen != 542393671 {
		t.Errorf(`"GET " reads as length %d`, h.BodyLen)
	}
}

func TestCheckDirection(t *testing.T) {
	req := Header{Opcode: OpHello}
	resp := Header{Opcode: OpHello, Flags: FlagResponse}
	if req.CheckRequest(0) != nil || resp.CheckResponse(0) != nil {
		t.Fatal("valid direction refused")
	}
	if !errors.Is(resp.CheckRequest(0), ErrMalformed) || !errors.Is(req.CheckResponse(0), ErrMalformed) {
		t.Fatal("wrong direction accepted")
	}
	errResp := Header{Opcode: OpHello, Flags: FlagResponse, Status: CodeInternal}
	if !errors.Is(errResp.CheckRequest(DefaultMaxBody), ErrMalformed) {
		t.Fatal("error response accepted by a server")
	}
}

func TestAppendFrame(t *testing.T) {
	m := ProduceResponse{BaseOffset: 9, Count: 3}
	h := Header{BodyLen: 999, Opcode: OpProduce, Flags: FlagResponse, RequestID: 4}
	a := AppendFrame([]byte("x"), h, &m)
	b, start := BeginFrame([]byte("x"), h)
	b = EndFrame(m.AppendTo(b), start)
	if !bytes.Equal(a, b) {
		t.Fatalf("AppendFrame %x, Begin/EndFrame %x", a, b)
	}
	var got Header
	_ = got.Decode(a[1:])
	if got.BodyLen != 12 || len(a) != 1+HeaderSize+12 {
		t.Fatalf("BodyLen %d, frame %d bytes", got.BodyLen, len(a))
	}
	empty := AppendFrame(nil, Header{Opcode: OpInitProducer, BodyLen: 5}, nil)
	if !bytes.Equal(empty, Header{Opcode: OpInitProducer}.AppendTo(nil)) {
		t.Fatalf("frame with nil body: %x", empty)
	}
}

func TestReadRequest(t *testing.T) {
	req := ConsumeRequest{Topic: []byte("events"), Offset: 5, Limit: 10}
	stream := AppendFrame(nil, Header{Opcode: OpConsume, RequestID: 1}, &req)
	stream = AppendFrame(stream, Header{Opcode: OpCreateTopic, RequestID: 2}, &CreateTopicRequest{Topic: []byte("t")})
	r := bytes.NewReader(stream)
	h, body, err := ReadRequest(r, DefaultMaxBody, nil)
	if err != nil || h.RequestID != 1 {
		t.Fatalf("first frame: %+v, %v", h, err)
	}
	var got ConsumeRequest
	if err := got.Decode(body); err != nil || string(got.Topic) != "events" || got.Offset != 5 {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	h, body, err = ReadRequest(r, DefaultMaxBody, body[:0])
	if err != nil || h.RequestID != 2 || h.Opcode != OpCreateTopic {
		t.Fatalf("second frame: %+v, %v", h, err)
	}
	if _, _, err = ReadRequest(r, DefaultMaxBody, body[:0]); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestReadRequestRefusesBeforeAllocating(t *testing.T) {
	buf := make([]byte, 0, 64)
	h, body, err := ReadRequest(bytes.NewReader([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), DefaultMaxBody, buf)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("HTTP request: %v", err)
	}
	if cap(body) != 64 || h.BodyLen != 542393671 {
		t.Fatalf("buffer grown to %d; header %+v", cap(body), h)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeFrameTooLarge {
		t.Fatalf("error %#v", err)
	}
}

func TestReadShortStreams(t *testing.T) {
	frame := AppendFrame(nil, Header{Opcode: OpTruncate, RequestID: 3}, &TruncateRequest{Topic: []byte("t")})
	for n := 1; n < len(frame); n++ {
		_, _, err := ReadRequest(bytes.NewReader(frame[:n]), DefaultMaxBody, nil)
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("%d of %d bytes: %v, want io.ErrUnexpectedEOF", n, len(frame), err)
		}
	}
	var scratch [HeaderSize]byte
	if _, err := ReadHeader(bytes.NewReader(nil), &scratch); err != io.EOF {
		t.Fatalf("ReadHeader on empty stream: %v", err)
	}
	h, err := ReadHeader(bytes.NewReader(frame), &scratch)
	if err != nil || h.Opcode != OpTruncate || h.RequestID != 3 {
		t.Fatalf("ReadHeader: %+v, %v", h, err)
	}
}

func TestErrorFrameRoundTrip(t *testing.T) {
	sent := &Error{Code: CodeOffsetOutOfRange, Message: "offset 200", Start: 10, End: 100}
	frame := AppendErrorFrame(nil, OpConsume, 8, sent)
	h, body, err := ReadResponse(bytes.NewReader(frame), DefaultMaxBody, nil)
	if err != nil || h.Status != CodeOffsetOutOfRange || h.RequestID != 8 || h.Opcode != OpConsume {
		t.Fatalf("ReadResponse: %+v, %v", h, err)
	}
	got := DecodeError(h.Status, body)
	if *got != *sent {
		t.Fatalf("got %+v, want %+v", got, sent)
	}
	if !errors.Is(got, ErrOffsetOutOfRange) {
		t.Fatal("errors.Is(ErrOffsetOutOfRange) is false")
	}
	bad := DecodeError(CodeStorage, []byte{1})
	if bad.Code != CodeStorage || !bad.Retriable {
		t.Fatalf("undecodable body: %+v", bad)
	}
	zero := AppendErrorFrame(nil, OpHello, 1, &Error{})
	if _ = h.Decode(zero); h.Status != CodeInternal {
		t.Fatalf("error frame with CodeOK sent status %v", h.Status)
	}
}

// TestProtocolDocExample keeps the frame example in PROTOCOL.md true.
func TestProtocolDocExample(t *testing.T) {
	got := AppendFrame(nil, Header{Opcode: OpProduce, Flags: FlagResponse, RequestID: 4}, &ProduceResponse{BaseOffset: 9, Count: 2})
	want := []byte{
		0x0c, 0, 0, 0, 0x02, 0x01, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0,
		0x09, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0,
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("frame %x, want %x", got, want)
	}
}

// A sender may fill in a frame's body length and request id after building
// the header; the patched header decodes with exactly those values and the
// other fields untouched.
func TestSetBodyLenAndRequestID(t *testing.T) {
	h := Header{BodyLen: 1, Opcode: OpProduce, Flags: FlagResponse, Status: CodeStorage, RequestID: 2}
	b := h.AppendTo(nil)
	SetBodyLen(b, 0xdeadbeef)
	SetRequestID(b, 0x0102030405060708)
	var got Header
	if err := got.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := Header{BodyLen: 0xdeadbeef, Opcode: OpProduce, Flags: FlagResponse, Status: CodeStorage, RequestID: 0x0102030405060708}
	if got != want {
		t.Errorf("patched header = %+v, want %+v", got, want)
	}
}
