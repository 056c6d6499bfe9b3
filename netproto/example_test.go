package netproto_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/haraqa/haraqa/netproto"
)

// A request and its error response travelling through a byte stream.
func Example() {
	var wire bytes.Buffer

	// Client: a consume request with id 7.
	req := netproto.ConsumeRequest{Topic: []byte("events"), Offset: 500, Limit: 10}
	wire.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpConsume, RequestID: 7}, &req))

	// Server: read, decode, refuse.
	h, body, err := netproto.ReadRequest(&wire, netproto.DefaultMaxBody, nil)
	if err != nil {
		panic(err)
	}
	var got netproto.ConsumeRequest
	if err := got.Decode(body); err != nil {
		panic(err)
	}
	refusal := &netproto.Error{Code: netproto.CodeOffsetOutOfRange, Message: "offset 500", Start: 0, End: 120}
	wire.Write(netproto.AppendErrorFrame(nil, h.Opcode, h.RequestID, refusal))

	// Client: read the response for request 7.
	h, body, err = netproto.ReadResponse(&wire, netproto.DefaultMaxBody, nil)
	if err != nil {
		panic(err)
	}
	if h.Status != netproto.CodeOK {
		err = netproto.DecodeError(h.Status, body)
	}
	fmt.Println(h.RequestID, errors.Is(err, netproto.ErrOffsetOutOfRange))
	fmt.Println(err)
	// Output:
	// 7 true
	// netproto: offset out of range: offset 500 (valid range [0, 120))
}
