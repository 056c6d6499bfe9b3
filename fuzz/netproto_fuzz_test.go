package fuzz

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/haraqa/haraqa/netproto"
)

// FuzzFrameHeader feeds arbitrary bytes to the frame header decoder, its
// checks and ReadRequest/ReadResponse. Decode must round-trip any 16 bytes;
// Check must only pass headers that keep its promises; reading a frame must
// never size a buffer above the limit; a body that is read must decode
// cleanly or with ErrMalformed.
func FuzzFrameHeader(f *testing.F) {
	addSeeds(f, frameHeaderSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		var h netproto.Header
		err := h.Decode(data)
		if len(data) < netproto.HeaderSize {
			if !errors.Is(err, netproto.ErrMalformed) {
				t.Fatalf("Decode of %d bytes: %v", len(data), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if enc := h.AppendTo(nil); !bytes.Equal(enc, data[:netproto.HeaderSize]) {
			t.Fatalf("re-encoded %x, want %x", enc, data[:netproto.HeaderSize])
		}
		for _, limit := range []uint32{0, 1 << 10, netproto.DefaultMaxBody} {
			checkHeader(t, h, limit)
		}
		const limit = 1 << 10
		for _, response := range []bool{false, true} {
			read := netproto.ReadRequest
			if response {
				read = netproto.ReadResponse
			}
			rh, body, err := read(bytes.NewReader(data), limit, nil)
			if cap(body) > max(limit, 512) {
				t.Fatalf("buffer of %d bytes for a limit of %d", cap(body), limit)
			}
			if err != nil {
				continue
			}
			if rh != h || len(body) != int(h.BodyLen) {
				t.Fatalf("read %+v with %d body bytes from %+v", rh, len(body), h)
			}
			if response && h.Status != netproto.CodeOK {
				var m netproto.ErrorResponse
				checkDecode(t, &m, &netproto.ErrorResponse{}, body)
			} else if m := pick(h.Opcode, response); m != nil {
				checkDecode(t, m, pick(h.Opcode, response), body)
			}
		}
	})
}

func pick(op netproto.Opcode, response bool) netproto.Message {
	if response {
		return netproto.NewResponse(op)
	}
	return netproto.NewRequest(op)
}

// checkHeader holds Check, CheckRequest and CheckResponse to their doc.
func checkHeader(t *testing.T, h netproto.Header, limit uint32) {
	t.Helper()
	err := h.Check(limit)
	if err != nil {
		var e *netproto.Error
		if !errors.As(err, &e) {
			t.Fatalf("Check returned %T %v, not *netproto.Error", err, err)
		}
		switch e.Code {
		case netproto.CodeMalformed, netproto.CodeUnknownOpcode, netproto.CodeFrameTooLarge:
		default:
			t.Fatalf("Check returned code %v", e.Code)
		}
		if (h.BodyLen > limit) != (e.Code == netproto.CodeFrameTooLarge) {
			t.Fatalf("Check(%d) of %+v: %v", limit, h, err)
		}
	} else {
		if h.BodyLen > limit || h.Flags&^netproto.FlagResponse != 0 {
			t.Fatalf("Check(%d) passed %+v", limit, h)
		}
		errResp := h.IsResponse() && h.Status != netproto.CodeOK
		if !errResp && !h.Opcode.Valid() {
			t.Fatalf("Check passed opcode %v", h.Opcode)
		}
	}
	if h.CheckRequest(limit) == nil {
		if err != nil || h.IsResponse() || h.Status != netproto.CodeOK || h.Opcode == netproto.OpWatchEvent {
			t.Fatalf("CheckRequest passed %+v", h)
		}
	}
	if h.CheckResponse(limit) == nil && (err != nil || !h.IsResponse()) {
		t.Fatalf("CheckResponse passed %+v", h)
	}
}

// FuzzRequests decodes arbitrary bodies as requests: the first byte picks
// the opcode (its low 5 bits: every opcode, the group ones too, which
// FuzzGroupRequests also covers), the rest is the body.
func FuzzRequests(f *testing.F) {
	addSeeds(f, requestSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		op := netproto.Opcode(data[0] & 0x1f)
		if m := netproto.NewRequest(op); m != nil {
			checkDecode(t, m, netproto.NewRequest(op), data[1:])
		}
	})
}

// FuzzResponses is FuzzRequests for response bodies; opcode 0 stands for an
// error response.
func FuzzResponses(f *testing.F) {
	addSeeds(f, responseSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		op := netproto.Opcode(data[0] & 0x1f)
		if op == 0 {
			checkDecode(t, &netproto.ErrorResponse{}, &netproto.ErrorResponse{}, data[1:])
			return
		}
		if m := netproto.NewResponse(op); m != nil {
			checkDecode(t, m, netproto.NewResponse(op), data[1:])
		}
	})
}

// checkDecode decodes body into m. A failure must be ErrMalformed. A
// success must re-encode to exactly body (the encoding is canonical), and
// that must decode into fresh as the same value.
func checkDecode(t *testing.T, m, fresh netproto.Message, body []byte) {
	t.Helper()
	if err := m.Decode(body); err != nil {
		if !errors.Is(err, netproto.ErrMalformed) {
			t.Fatalf("%T.Decode: %v, want ErrMalformed", m, err)
		}
		return
	}
	enc := m.AppendTo(nil)
	if !bytes.Equal(enc, body) {
		t.Fatalf("%T re-encoded to %x, decoded from %x", m, enc, body)
	}
	if err := fresh.Decode(enc); err != nil {
		t.Fatalf("%T: re-encoded body does not decode: %v", m, err)
	}
	if !reflect.DeepEqual(m, fresh) {
		t.Fatalf("%T: %+v decoded again as %+v", m, m, fresh)
	}
}
