package cluster

import (
	"reflect"
	"testing"
)

// A replica that starts from a snapshot decides every later batch as one
// that applied the whole log: the snapshot's data carries the end offset,
// the last append time, the remembered proposals (oldest first, also once
// the ring wrapped) and the idempotent producers' table.
func TestSnapshotDataCarriesApplyState(t *testing.T) {
	seen := newRecent(recentProposals)
	for i := range recentProposals + 100 { // wraps the ring
		seen.add(proposalKey{uint64(i % 3), uint64(i)})
	}
	prods := newProdTable()
	var next uint64
	for i := range 30 {
		pid := uint64(1 + i%3)
		b := idemBatch(t, pid, uint32(i/3), "m")
		if ok, _, err := prods.decide(b, next); !ok || err != nil {
			t.Fatalf("batch %d: store %v, err %v", i, ok, err)
		}
		next++
	}
	d := snapData{end: next, time: 12345, keys: seen.keys(), prods: prods}
	got, err := decodeSnapData(encodeSnapData(d))
	if err != nil {
		t.Fatal(err)
	}
	if got.end != d.end || got.time != d.time || !reflect.DeepEqual(got.keys, d.keys) {
		t.Fatalf("decoded end %d time %d, %d keys; want %d %d %d", got.end, got.time, len(got.keys), d.end, d.time, len(d.keys))
	}
	// The rebuilt ring forgets the same key next as the original.
	r := recentFrom(got.keys)
	r.add(proposalKey{9, 9})
	seen.add(proposalKey{9, 9})
	if !reflect.DeepEqual(r.keys(), seen.keys()) {
		t.Fatal("rebuilt proposal ring differs after one more proposal")
	}
	if !reflect.DeepEqual(appendProdTable(nil, got.prods), appendProdTable(nil, prods)) {
		t.Fatal("decoded producer table differs")
	}
	// Both tables decide a retry, the next batch and a gap alike.
	for _, b := range [][]byte{idemBatch(t, 2, 9, "m"), idemBatch(t, 2, 10, "m"), idemBatch(t, 3, 20, "m")} {
		ok1, dup1, err1 := prods.decide(b, next)
		ok2, dup2, err2 := got.prods.decide(b, next)
		if ok1 != ok2 || dup1 != dup2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("decisions differ: %v %d %v and %v %d %v", ok1, dup1, err1, ok2, dup2, err2)
		}
		next++
	}
	if _, err := decodeSnapData(encodeSnapData(d)[:30]); err == nil {
		t.Fatal("a cut snapshot decoded")
	}
}
