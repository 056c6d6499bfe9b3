//go:build unix

package cluster_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
)

// consumeOne consumes one batch of topic at offset off from node p.
func consumeOne(p *proc, topic string, off uint64) error {
	nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	for id, req := range []struct {
		op  netproto.Opcode
		msg netproto.Encoder
	}{
		{netproto.OpHello, &netproto.HelloRequest{Version: netproto.ProtocolVersion}},
		{netproto.OpConsume, &netproto.ConsumeRequest{Topic: []byte(topic), Offset: off, Limit: 1, MaxBytes: 1 << 20}},
	} {
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: req.op, RequestID: uint64(id + 1)}, req.msg)); err != nil {
			return err
		}
		h, body, err := netproto.ReadResponse(nc, 1<<27, nil)
		if err != nil {
			return err
		}
		if h.Status != netproto.CodeOK {
			return netproto.DecodeError(h.Status, body)
		}
	}
	return nil
}

// waitRead waits until read succeeds, after it failed once.
func waitRead(t *testing.T, what string, read func() error) {
	t.Helper()
	err := read()
	if err == nil {
		t.Fatalf("%s: read without an error", what)
	}
	t.Logf("%s: %v", what, err)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err = read(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still fails: %v", what, err)
		}
	}
}

// A replica whose active (unsealed) segment is damaged in its committed
// part re-fetches the damaged batches from another replica, like a sealed
// one's; a replica whose sealed segment's index is damaged (its log still
// matches its seal) rebuilds the index from the log. Afterwards its reads
// return the others' bytes, before and after a restart.
func TestClusterRepairActiveSegmentAndIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3, "-scrub-rate", "-1")
	c.createTopic("t")
	produceBulk(t, c.nodes[0], "t", 2500, 1024) // two sealed 1 MiB segments and an active one
	before := c.converge("t", 2500)
	lead, _ := c.leaderOf("t")
	victim := c.byID(lead%3 + 1)
	dir := filepath.Join(victim.dir, "data", "topics", "t")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	seals, _ := filepath.Glob(filepath.Join(dir, "*.seal"))
	sort.Strings(logs)
	sort.Strings(seals)
	if len(seals) == 0 || len(logs) != len(seals)+1 {
		t.Fatalf("node %d: %d logs, %d seals", victim.id, len(logs), len(seals))
	}

	// The active segment: flip 64 bytes in the middle of its batches.
	active := logs[len(logs)-1]
	data, err := os.ReadFile(active)
	if err != nil {
		t.Fatal(err)
	}
	sc := record.NewScanner(data)
	committed := 0
	for sc.Next() {
		committed = sc.End()
	}
	if committed < 4096 {
		t.Fatalf("active segment holds %d bytes", committed)
	}
	flip(t, active, int64(committed/2), 64)
	read := func() error {
		raw, err := tryRawRead(victim, "t")
		if err == nil && string(raw) != string(before[0]) {
			t.Fatalf("node %d reads %d bytes after the repair, the others %d, not the same", victim.id, len(raw), len(before[0]))
		}
		return err
	}
	waitRead(t, "damaged active segment", read)

	// A sealed segment's index: its middle entry points at the next
	// batch. The node restarts first so that it reads the index file.
	c.stop(victim)
	idxPath := strings.TrimSuffix(seals[0], ".seal") + ".idx"
	idx, err := os.ReadFile(idxPath)
	if err != nil {
		t.Fatal(err)
	}
	e := segment.EntrySize
	i := len(idx) / e / 2
	var base uint64
	fmt.Sscanf(filepath.Base(idxPath), "%d.idx", &base)
	off := base + uint64(binary.LittleEndian.Uint32(idx[i*e:]))
	copy(idx[i*e+4:i*e+8], idx[(i+1)*e+4:(i+1)*e+8])
	if err := os.WriteFile(idxPath, idx, 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(victim)
	waitRead(t, fmt.Sprintf("damaged index entry of offset %d", off), func() error { return consumeOne(victim, "t", off) })
	if err := read(); err != nil {
		t.Fatal(err)
	}
	victim.mu.Lock()
	l := victim.logs.String()
	victim.mu.Unlock()
	for _, want := range []string{"repaired a damaged segment from a peer", "rebuilt a damaged index"} {
		if !strings.Contains(l, want) {
			t.Fatalf("node %d did not log %q", victim.id, want)
		}
	}
	c.stop(victim)
	c.start(victim)
	if err := read(); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}

// flip inverts n bytes of the file at path at offset at.
func flip(t *testing.T, path string, at int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, at); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] ^= 0xA5
	}
	if _, err := f.WriteAt(buf, at); err != nil {
		t.Fatal(err)
	}
}
