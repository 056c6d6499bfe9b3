package netproto

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			enc := s.msg.AppendTo([]byte("prefix"))
			if string(enc[:6]) != "prefix" {
				t.Fatal("AppendTo overwrote dst")
			}
			enc = enc[6:]
			if err := s.zero.Decode(enc); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(s.msg, s.zero) {
				t.Fatalf("decoded %+v, want %+v", s.zero, s.msg)
			}
			if again := s.zero.AppendTo(nil); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoded %x, want %x", again, enc)
			}
		})
	}
}

// TestZeroValues round-trips the zero value of every type: empty strings
// and lists must survive too.
func TestZeroValues(t *testing.T) {
	for _, s := range samples(t) {
		if s.name == "ProduceRequest" || s.name == "ConsumeResponse" {
			continue // need a batch / BatchBytes to match
		}
		zero := reflect.New(reflect.TypeOf(s.zero).Elem()).Interface().(Message)
		enc := zero.AppendTo(nil)
		if err := s.zero.Decode(enc); err != nil {
			t.Fatalf("%s: Decode of zero value: %v", s.name, err)
		}
		if again := s.zero.AppendTo(nil); !bytes.Equal(again, enc) {
			t.Fatalf("%s: re-encoded %x, want %x", s.name, again, enc)
		}
	}
}

func TestTruncatedAndTrailing(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			enc := s.msg.AppendTo(nil)
			limit := len(enc)
			if p, ok := s.msg.(*ProduceRequest); ok {
				// The batch is the rest of the body: any prefix long
				// enough for a batch header still decodes.
				limit = 2 + len(p.Topic) + 64
			}
			for n := range limit {
				err := s.zero.Decode(enc[:n])
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode of %d of %d bytes: %v, want ErrMalformed", n, len(enc), err)
				}
			}
			if s.name == "ProduceRequest" {
				return
			}
			long := append(enc[:len(enc):len(enc)], 0)
			if err := s.zero.Decode(long); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode with a trailing byte: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	batch := testBatch(t)
	consume := func(batchBytes uint32, reserved uint32, batches []byte) []byte {
		b := appendU64(nil, 1)
		b = appendU64(b, 2)
		b = appendU32(b, batchBytes)
		b = appendU32(b, reserved)
		return append(b, batches...)
	}
	cases := []struct {
		name string
		msg  Message
		body []byte
	}{
		{"produce short batch", new(ProduceRequest), appendStr(nil, []byte("t"))[:3:3]},
		{"produce batch of 63", new(ProduceRequest), append(appendStr(nil, []byte("t")), batch[:63]...)},
		{"string runs past body", new(CreateTopicRequest), []byte{5, 0, 'a', 'b'}},
		{"topics count too large", new(TopicsResponse), []byte{0xff, 0xff, 0xff, 0xff}},
		{"topics count vs body", new(TopicsResponse), []byte{2, 0, 0, 0, 0, 0}},
		{"watch count too large", new(WatchRequest), []byte{0, 0, 0, 0x80, 1, 0, 'a'}},
		{"consume batch bytes mismatch", new(ConsumeResponse), consume(8, 0, batch)},
		{"consume batch bytes unaligned", new(ConsumeResponse), consume(3, 0, []byte{1, 2, 3})},
		{"consume reserved set", new(ConsumeResponse), consume(0, 1, nil)},
		{"error retriable byte 2", new(ErrorResponse), append(make([]byte, 16), 2, 0, 0)},
		{"empty body with a byte", new(CreateTopicResponse), []byte{0}},
	}
	for _, c := range cases {
		if err := c.msg.Decode(c.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestHugeCountAllocatesNothingLarge(t *testing.T) {
	body := []byte{0xff, 0xff, 0xff, 0x0f, 0, 0}
	var m TopicsResponse
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if err := m.Decode(body); err == nil {
			t.Fatal("decoded a count of 268 million names in 2 bytes")
		}
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 100; perCall > 512 || cap(m.Names) != 0 {
		t.Fatalf("%d bytes allocated per decode, cap %d", perCall, cap(m.Names))
	}
}

func TestDecodedSlicesAreCapped(t *testing.T) {
	body := (&TopicsRequest{Prefix: []byte("ab"), Regexp: []byte("cd")}).AppendTo(nil)
	var m TopicsRequest
	if err := m.Decode(body); err != nil {
		t.Fatal(err)
	}
	_ = append(m.Prefix, 'X')
	if string(m.Regexp) != "cd" {
		t.Fatalf("append to Prefix overwrote Regexp: %q", m.Regexp)
	}
}

func TestListDecodeReusesSlice(t *testing.T) {
	body := (&WatchRequest{Topics: [][]byte{[]byte("a"), []byte("b")}}).AppendTo(nil)
	var m WatchRequest
	if err := m.Decode(body); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.Decode(body) }); n != 0 {
		t.Fatalf("second decode: %v allocs", n)
	}
}

func TestConsumeResponseHead(t *testing.T) {
	batch := testBatch(t)
	m := ConsumeResponse{Start: 1, End: 5, BatchBytes: uint32(len(batch))}
	head := m.AppendHead(nil, 99)
	if len(head) != HeaderSize+ConsumeResponseFixedSize {
		t.Fatalf("head is %d bytes", len(head))
	}
	m.Batches = batch
	whole := AppendFrame(nil, Header{Opcode: OpConsume, Flags: FlagResponse, RequestID: 99}, &m)
	if got := append(head, batch...); !bytes.Equal(got, whole) {
		t.Fatalf("head+batch %x\nframe     %x", got, whole)
	}
	var fixed ConsumeResponse
	if err := fixed.DecodeFixed(whole[HeaderSize:]); err != nil {
		t.Fatal(err)
	}
	if fixed.Start != 1 || fixed.End != 5 || fixed.BatchBytes != uint32(len(batch)) || fixed.Batches != nil {
		t.Fatalf("DecodeFixed: %+v", fixed)
	}
	if err := fixed.DecodeFixed(whole[HeaderSize : HeaderSize+10]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeFixed of 10 bytes: %v", err)
	}
}

func TestLongStringIsCut(t *testing.T) {
	long := bytes.Repeat([]byte("x"), MaxString+10)
	enc := (&ErrorResponse{Message: long}).AppendTo(nil)
	var m ErrorResponse
	if err := m.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if len(m.Message) != MaxString {
		t.Fatalf("message of %d bytes", len(m.Message))
	}
}

func TestNewRequestResponse(t *testing.T) {
	for op := Opcode(0); op < 30; op++ {
		req, resp := NewRequest(op), NewResponse(op)
		wantReq := op.Valid() && op != OpWatchEvent
		if (req != nil) != wantReq || (resp != nil) != op.Valid() {
			t.Errorf("%v: request %T, response %T", op, req, resp)
		}
	}
}
