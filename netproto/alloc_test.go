package netproto

import (
	"bytes"
	"testing"
)

func assertNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(100, f); n != 0 {
		t.Errorf("%s: %v allocs per run, want 0", name, n)
	}
}

func TestHotPathsAllocateNothing(t *testing.T) {
	batch := testBatch(t)
	produce := (&ProduceRequest{Topic: []byte("events"), Batch: batch}).AppendTo(nil)
	consume := (&ConsumeRequest{Topic: []byte("events"), Offset: 1, Limit: 2}).AppendTo(nil)
	var pr ProduceRequest
	var cr ConsumeRequest
	assertNoAllocs(t, "ProduceRequest.Decode", func() {
		if pr.Decode(produce) != nil {
			panic("decode")
		}
	})
	assertNoAllocs(t, "ConsumeRequest.Decode", func() {
		if cr.Decode(consume) != nil {
			panic("decode")
		}
	})
	consumeResp := (&ConsumeResponse{BatchBytes: uint32(len(batch)), Batches: batch}).AppendTo(nil)
	var cresp ConsumeResponse
	assertNoAllocs(t, "ConsumeResponse.Decode", func() { _ = cresp.Decode(consumeResp) })

	frame := make([]byte, 0, 4096)
	assertNoAllocs(t, "Header", func() {
		var h Header
		_ = h.Decode(Header{Opcode: OpProduce}.AppendTo(frame[:0]))
		_ = h.Check(DefaultMaxBody)
	})
	assertNoAllocs(t, "BeginFrame/EndFrame", func() {
		b, start := BeginFrame(frame[:0], Header{Opcode: OpProduce, Flags: FlagResponse})
		m := ProduceResponse{BaseOffset: 1, Count: 2}
		_ = EndFrame(m.AppendTo(b), start)
	})
	reused := &ProduceResponse{} // AppendFrame boxes its message: reuse one
	assertNoAllocs(t, "AppendFrame with a reused message", func() {
		reused.BaseOffset++
		_ = AppendFrame(frame[:0], Header{Opcode: OpProduce, Flags: FlagResponse}, reused)
	})
	assertNoAllocs(t, "ConsumeResponse.AppendHead", func() {
		m := ConsumeResponse{Start: 1, End: 2, BatchBytes: 64}
		_ = m.AppendHead(frame[:0], 1)
	})
	stream := AppendFrame(nil, Header{Opcode: OpProduce, RequestID: 1}, &ProduceRequest{Topic: []byte("t"), Batch: batch})
	r := bytes.NewReader(stream)
	assertNoAllocs(t, "ReadRequest", func() {
		r.Reset(stream)
		_, body, err := ReadRequest(r, DefaultMaxBody, frame[:0])
		if err != nil || pr.Decode(body) != nil {
			panic("read")
		}
	})
	for _, s := range samples(t) {
		assertNoAllocs(t, s.name+".AppendTo", func() { _ = s.msg.AppendTo(frame[:0]) })
	}
}
