package fuzz

import (
	"testing"

	"github.com/haraqa/haraqa/netproto"
)

// FuzzPlacement decodes arbitrary bodies as a placement request (first
// byte even) or response (odd), the rest being the body: no input panics,
// a failure is ErrMalformed, and what decodes re-encodes to the same
// bytes.
func FuzzPlacement(f *testing.F) {
	addSeeds(f, placementSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		if data[0]&1 == 0 {
			checkDecode(t, new(netproto.PlacementRequest), new(netproto.PlacementRequest), data[1:])
		} else {
			checkDecode(t, new(netproto.PlacementResponse), new(netproto.PlacementResponse), data[1:])
		}
	})
}

func placementSeeds() []seed {
	req := func(m netproto.Encoder) []any { return []any{m.AppendTo([]byte{0})} }
	resp := func(m netproto.Encoder) []any { return []any{m.AppendTo([]byte{1})} }
	full := &netproto.PlacementResponse{
		Nodes: []netproto.PlacementNode{{ID: 1, Addr: []byte("10.0.0.1:4353")}, {ID: 2, Addr: []byte("10.0.0.2:4353")}, {ID: 3}},
		Topics: []netproto.PlacementTopic{{Name: []byte("events"), Leader: 2, Term: 7, Replicas: []uint64{1, 2, 3}},
			{Name: []byte("idle"), Replicas: []uint64{3}}},
	}
	huge := append(resp(&netproto.PlacementResponse{})[0].([]byte)[:1], 0xff, 0xff, 0xff, 0x7f)
	return []seed{
		{"request_all", req(&netproto.PlacementRequest{})},
		{"request_two", req(&netproto.PlacementRequest{Topics: [][]byte{[]byte("a"), []byte("events")}})},
		{"response_empty", resp(&netproto.PlacementResponse{})},
		{"response_full", resp(full)},
		{"response_count_lies", []any{huge}},
	}
}
