//go:build unix

package cluster_test

import (
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
)

// tryRawRead is rawRead that returns the first error instead of failing.
func tryRawRead(p *proc, topic string) ([]byte, error) {
	nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var id uint64
	call := func(op netproto.Opcode, msg netproto.Encoder) ([]byte, error) {
		id++
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: op, RequestID: id}, msg)); err != nil {
			return nil, err
		}
		h, body, err := netproto.ReadResponse(nc, 1<<27, nil)
		if err != nil {
			return nil, err
		}
		if h.Status != netproto.CodeOK {
			return nil, netproto.DecodeError(h.Status, body)
		}
		return body, nil
	}
	if _, err := call(netproto.OpHello, &netproto.HelloRequest{Version: netproto.ProtocolVersion}); err != nil {
		return nil, err
	}
	var out []byte
	for off := uint64(0); ; {
		body, err := call(netproto.OpConsume, &netproto.ConsumeRequest{Topic: []byte(topic), Offset: off, Limit: 1 << 20, MaxBytes: 8 << 20})
		if err != nil {
			return nil, fmt.Errorf("at %d: %w", off, err)
		}
		var r netproto.ConsumeResponse
		if err := r.Decode(body); err != nil {
			return nil, err
		}
		if r.BatchBytes == 0 {
			return out, nil
		}
		out = append(out, r.Batches...)
		sc := record.NewScanner(r.Batches)
		for sc.Next() {
			off = sc.Header().NextOffset()
		}
		if sc.Err() != nil {
			return nil, fmt.Errorf("at %d: %w", off, sc.Err())
		}
	}
}

// A replica whose sealed segment is damaged (one volume: no mirror to
// repair from) detects it on a read and re-fetches the damaged batches
// from another replica: afterwards its reads return the right bytes and
// every replica is byte for byte the same.
func TestClusterRepairDamagedSegmentFromPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := startProcCluster(t, 3, "-scrub-rate", "-1")
	c.createTopic("t")
	l := c.startLoad("t", 2)
	for wait := time.Now().Add(30 * time.Second); l.count() < 100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d acknowledged", l.count())
		}
	}
	produceBulk(t, c.nodes[0], "t", 3000, 1024) // 3 MiB: sealed 1 MiB segments
	l.finish()
	before := c.converge("t", l.count())
	lead, _ := c.leaderOf("t")
	victim := c.byID(lead%3 + 1)
	dir := filepath.Join(victim.dir, "data", "topics", "t")
	seals, _ := filepath.Glob(filepath.Join(dir, "*.seal"))
	if len(seals) == 0 {
		t.Fatalf("node %d has no sealed segment in %s", victim.id, dir)
	}
	sort.Strings(seals)
	logPath := strings.TrimSuffix(seals[0], ".seal") + ".log"
	f, err := os.OpenFile(logPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	at := st.Size() / 2
	buf := make([]byte, 64)
	if _, err := f.ReadAt(buf, at); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] ^= 0xA5
	}
	if _, err := f.WriteAt(buf, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Logf("flipped 64 bytes at %d of %s on node %d", at, logPath, victim.id)
	// The first read meets the damage (and reports it); the repair makes
	// a later read whole.
	_, err = tryRawRead(victim, "t")
	if err == nil {
		t.Fatalf("node %d read its damaged segment without an error", victim.id)
	}
	t.Logf("read on the damaged replica: %v", err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, err := tryRawRead(victim, "t")
		if err == nil {
			if string(raw) != string(before[0]) {
				t.Fatalf("node %d reads %d bytes after the repair, the others %d, not the same", victim.id, len(raw), len(before[0]))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d still fails to read: %v", victim.id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The line comes through the process's stderr, read by another
	// goroutine, and may follow the repaired read by a moment.
	for {
		victim.mu.Lock()
		repaired := strings.Contains(victim.logs.String(), "repaired a damaged segment from a peer")
		victim.mu.Unlock()
		if repaired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not log a repair from a peer", victim.id)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.check(l, c.converge("t", l.count()))
	// The file itself is whole again (a restart's open verifies it).
	c.stop(victim)
	c.start(victim)
	c.check(l, c.converge("t", l.count()))
}
