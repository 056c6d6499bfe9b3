package netproto

import (
	"bytes"
	"errors"
	"testing"
)

// TestGroupDecodeRejects: a group body that breaks a rule of the protocol
// (an empty, overlapping, unordered or wrapping range, a range never
// delivered, an unknown flag bit or start kind, ranges without their
// batches, a count larger than the body) is Malformed, never accepted and
// never a panic, so a broker cannot be fed a range it would have to guess
// the meaning of.
func TestGroupDecodeRejects(t *testing.T) {
	g, tp := []byte("g"), []byte("t")
	ack := func(rs ...AckRange) []byte {
		return (&GroupAckRequest{MemberID: 1, MemberEpoch: 1, Ranges: rs, Group: g, Topic: tp}).AppendTo(nil)
	}
	batch := testBatch(t)
	fetch := func(rs []LeasedRange, batches []byte) []byte {
		return (&GroupFetchResponse{Ranges: rs, BatchBytes: uint32(len(batches)), Batches: batches}).AppendTo(nil)
	}
	join := (&GroupJoinRequest{Group: g, Topic: tp}).AppendTo(nil)
	badKind := bytes.Clone(join)
	badKind[16] = 4 // StartKind
	badFlags := bytes.Clone(join)
	badFlags[17] = 0x04 // Flags
	seek := (&GroupSeekRequest{Group: g, Topic: tp}).AppendTo(nil)
	seek[8] = 9
	joined := (&GroupJoinResponse{}).AppendTo(nil)
	joined[32] = 0x80
	describe := (&GroupDescribeResponse{Members: []GroupMember{{Name: []byte("m")}}}).AppendTo(nil)
	describe[len(describe)-4] = 2 // the member's Holder byte
	hugeRanges := appendU64(appendU64(nil, 1), 1)
	hugeRanges = appendU32(hugeRanges, 1<<30)
	cases := []struct {
		name string
		msg  Message
		body []byte
	}{
		{"ack empty range", new(GroupAckRequest), ack(AckRange{First: 5, Count: 0})},
		{"ack overlapping ranges", new(GroupAckRequest), ack(AckRange{First: 5, Count: 3}, AckRange{First: 7, Count: 1})},
		{"ack ranges out of order", new(GroupAckRequest), ack(AckRange{First: 9, Count: 1}, AckRange{First: 2, Count: 1})},
		{"ack range past the last offset", new(GroupAckRequest), ack(AckRange{First: 1<<64 - 2, Count: 5})},
		{"ack count larger than the body", new(GroupAckRequest), hugeRanges},
		{"nack empty range", new(GroupNackRequest), (&GroupNackRequest{Ranges: []AckRange{{First: 1}}}).AppendTo(nil)},
		{"join start kind 4", new(GroupJoinRequest), badKind},
		{"join unknown flag", new(GroupJoinRequest), badFlags},
		{"seek kind 9", new(GroupSeekRequest), seek},
		{"join response unknown flag", new(GroupJoinResponse), joined},
		{"describe member holder byte 2", new(GroupDescribeResponse), describe},
		{"fetch range delivered 0 times", new(GroupFetchResponse), fetch([]LeasedRange{{First: 0, Count: 1}}, batch)},
		{"fetch ranges without batches", new(GroupFetchResponse), fetch([]LeasedRange{{First: 0, Count: 1, Deliveries: 1}}, nil)},
		{"fetch batches without ranges", new(GroupFetchResponse), fetch(nil, batch)},
		{"fetch overlapping ranges", new(GroupFetchResponse), fetch([]LeasedRange{{First: 0, Count: 2, Deliveries: 1}, {First: 1, Count: 1, Deliveries: 1}}, batch)},
		{"fetch batch bytes unaligned", new(GroupFetchResponse), fetch([]LeasedRange{{First: 0, Count: 1, Deliveries: 1}}, []byte{1, 2, 3})},
		{"fetch range count past the body", new(GroupFetchResponse), func() []byte {
			b := fetch(nil, nil)
			b[24] = 0xff
			return b
		}()},
		{"list count larger than the body", new(GroupListResponse), []byte{0xff, 0xff, 0xff, 0x7f}},
		{"describe member count larger than the body", new(GroupDescribeResponse), func() []byte {
			b := (&GroupDescribeResponse{}).AppendTo(nil)
			return append(b[:len(b)-4], 0xff, 0xff, 0xff, 0x7f)
		}()},
	}
	for _, c := range cases {
		if err := c.msg.Decode(c.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

// TestGroupFetchHead: the head a server writes before sending a fetch's
// batch bytes from the segment files, followed by those bytes, is exactly
// the whole response frame, and the batches start 8-byte aligned.
func TestGroupFetchHead(t *testing.T) {
	batch := testBatch(t)
	m := GroupFetchResponse{Start: 1, End: 5, MemberEpoch: 3, Ranges: []LeasedRange{{First: 0, Count: 1, Deliveries: 1}, {First: 1, Count: 1, Deliveries: 2}}, BatchBytes: uint32(len(batch))}
	head := m.AppendHead(nil, 99)
	if len(head) != m.HeadSize() || len(head)%8 != 0 {
		t.Fatalf("head is %d bytes, HeadSize %d", len(head), m.HeadSize())
	}
	m.Batches = batch
	whole := AppendFrame(nil, Header{Opcode: OpGroupFetch, Flags: FlagResponse, RequestID: 99}, &m)
	if got := append(head, batch...); !bytes.Equal(got, whole) {
		t.Fatalf("head+batch %x\nframe     %x", got, whole)
	}
	var back GroupFetchResponse
	if err := back.Decode(whole[HeaderSize:]); err != nil || len(back.Ranges) != 2 || !bytes.Equal(back.Batches, batch) {
		t.Fatalf("decode: %v %+v", err, back)
	}
}

// TestGroupDecodeReusesSlices: a member decoding fetch after fetch, or
// sending acks, allocates no new range slice once it has one large enough.
func TestGroupDecodeReusesSlices(t *testing.T) {
	batch := testBatch(t)
	fetch := (&GroupFetchResponse{Ranges: []LeasedRange{{First: 0, Count: 2, Deliveries: 1}}, BatchBytes: uint32(len(batch)), Batches: batch}).AppendTo(nil)
	ack := (&GroupAckRequest{Ranges: []AckRange{{First: 0, Count: 2}, {First: 4, Count: 1}}, Group: []byte("g"), Topic: []byte("t")}).AppendTo(nil)
	var f GroupFetchResponse
	var a GroupAckRequest
	if f.Decode(fetch) != nil || a.Decode(ack) != nil {
		t.Fatal("decode")
	}
	assertNoAllocs(t, "GroupFetchResponse.Decode", func() { _ = f.Decode(fetch) })
	assertNoAllocs(t, "GroupAckRequest.Decode", func() { _ = a.Decode(ack) })
}
