package server

import (
	"net"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

func TestSmokeProduceConsume(t *testing.T) {
	e, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, mode := range []ConsumeMode{ConsumeWritev, ConsumeSendfile} {
		s := New(e, Options{AutoCreateTopics: true, ConsumeMode: mode})
		l, err := Listen("tcp://127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(l)
		defer s.Close()
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		hello := netproto.HelloRequest{Version: netproto.ProtocolVersion}
		nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpHello, RequestID: 6}, &hello))
		if h, body, err := netproto.ReadResponse(nc, 1<<20, nil); err != nil || h.Status != 0 || h.RequestID != 6 {
			t.Fatalf("hello: %+v %v %q", h, err, body)
		}
		batch, _ := record.AppendBatch(nil, []byte("hello"), []byte("world"))
		req := netproto.ProduceRequest{Topic: []byte("t"), Batch: batch}
		nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpProduce, RequestID: 7}, &req))
		h, body, err := netproto.ReadResponse(nc, 1<<20, nil)
		if err != nil || h.Status != 0 || h.RequestID != 7 {
			t.Fatalf("produce: %+v %v %q", h, err, body)
		}
		var pr netproto.ProduceResponse
		if err := pr.Decode(body); err != nil {
			t.Fatal(err)
		}
		creq := netproto.ConsumeRequest{Topic: []byte("t"), Offset: pr.BaseOffset, Limit: 10}
		nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpConsume, RequestID: 8}, &creq))
		h, body, err = netproto.ReadResponse(nc, 1<<20, nil)
		if err != nil || h.Status != 0 {
			t.Fatalf("consume: %+v %v", h, err)
		}
		var cr netproto.ConsumeResponse
		if err := cr.Decode(body); err != nil {
			t.Fatal(err)
		}
		hdr, err := record.Verify(cr.Batches)
		if err != nil || hdr.BaseOffset != pr.BaseOffset || hdr.Count != 2 {
			t.Fatalf("batch %+v %v", hdr, err)
		}
	}
}
