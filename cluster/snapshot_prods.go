package cluster

import (
	"encoding/binary"
	"errors"
	"slices"
)

// A topic snapshot carries its apply's producer table (producers.go), so
// that a replica starting from the snapshot deduplicates the batches after
// it exactly as one that applied the whole log. Layout (FORMAT.md "Cluster
// Raft log", snapshot data): `tick` (u64), `n` (u32), then n × (`pid`
// u64, `seen` u64, `count` u8 of remembered batches, then per batch oldest
// first `seq` u32, `count` u32, `base` u64), producers by id.

func appendProdTable(b []byte, pt *prodTable) []byte {
	if pt == nil {
		pt = newProdTable()
	}
	b = binary.LittleEndian.AppendUint64(b, pt.tick)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pt.m)))
	ids := make([]uint64, 0, len(pt.m))
	for id := range pt.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := pt.m[id]
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, st.seen)
		b = append(b, byte(st.n))
		for i := st.n - 1; i >= 0; i-- { // oldest first
			s := st.ring[(st.head-i+producerWindow)%producerWindow]
			b = binary.LittleEndian.AppendUint32(b, s.seq)
			b = binary.LittleEndian.AppendUint32(b, s.count)
			b = binary.LittleEndian.AppendUint64(b, s.base)
		}
	}
	return b
}

func decodeProdTable(b []byte) (*prodTable, error) {
	bad := errors.New("cluster: bad producer table in snapshot")
	pt := newProdTable()
	if len(b) < 12 {
		return nil, bad
	}
	pt.tick = binary.LittleEndian.Uint64(b)
	n := int(binary.LittleEndian.Uint32(b[8:]))
	p := 12
	for range n {
		if len(b) < p+17 {
			return nil, bad
		}
		id, seen, k := binary.LittleEndian.Uint64(b[p:]), binary.LittleEndian.Uint64(b[p+8:]), int(b[p+16])
		p += 17
		if k > producerWindow || len(b) < p+16*k {
			return nil, bad
		}
		st := &prodState{seen: seen}
		for range k {
			st.add(seqAt{seq: binary.LittleEndian.Uint32(b[p:]), count: binary.LittleEndian.Uint32(b[p+4:]), base: binary.LittleEndian.Uint64(b[p+8:])})
			p += 16
		}
		pt.m[id] = st
	}
	if p != len(b) {
		return nil, bad
	}
	return pt, nil
}
