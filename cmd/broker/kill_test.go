package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// buildBroker builds this command into a temporary directory once per test.
func buildBroker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "broker")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

type brokerProc struct {
	cmd  *exec.Cmd
	sock string
	logs *bytes.Buffer
	mu   sync.Mutex
	// logsDone is closed once stderr reached its end (the process exited):
	// only then may cmd.Wait run, since Wait closes the pipe and would drop
	// the lines not read yet.
	logsDone chan struct{}
}

// startBroker runs the binary on a Unix socket and waits until it listens.
func startBroker(t *testing.T, bin, dir string, extra ...string) *brokerProc {
	t.Helper()
	sock := filepath.Join(dir, "broker.sock")
	args := append([]string{"-addr", "", "-unix", sock, "-http", "", "-segment-bytes", "262144", "-log-level", "debug"}, extra...)
	args = append(args, filepath.Join(dir, "data"))
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, sock: sock, logs: &bytes.Buffer{}, logsDone: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.logsDone)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !once && strings.Contains(sc.Text(), "msg=listening") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("broker did not start:\n%s", p.logText())
	}
	return p
}

func (p *brokerProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// rawConn speaks the protocol with plain frames, one request at a time.
type rawConn struct {
	nc  net.Conn
	id  uint64
	buf []byte
}

func dialRaw(sock string) (*rawConn, error) {
	nc, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &rawConn{nc: nc}
	if _, _, err := c.call(netproto.OpHello, &netproto.HelloRequest{Version: netproto.ProtocolVersion}); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *rawConn) call(op netproto.Opcode, msg netproto.Encoder) (netproto.Header, []byte, error) {
	c.id++
	c.nc.SetDeadline(time.Now().Add(30 * time.Second)) // bounds a hang; a loaded machine under -race can take seconds
	if _, err := c.nc.Write(netproto.AppendFrame(nil, netproto.Header{Opcode: op, RequestID: c.id}, msg)); err != nil {
		return netproto.Header{}, nil, err
	}
	h, body, err := netproto.ReadResponse(c.nc, 1<<26, c.buf)
	if err != nil {
		return h, nil, err
	}
	c.buf = body
	if h.Status != netproto.CodeOK {
		return h, nil, netproto.DecodeError(h.Status, body)
	}
	return h, body, nil
}

func (c *rawConn) produce(topic string, batch []byte) (uint64, error) {
	_, body, err := c.call(netproto.OpProduce, &netproto.ProduceRequest{Topic: []byte(topic), Batch: batch})
	if err != nil {
		return 0, err
	}
	var r netproto.ProduceResponse
	return r.BaseOffset, r.Decode(body)
}

// readAll consumes a topic from offset 0 and returns every message by offset.
func (c *rawConn) readAll(t *testing.T, topic string) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	for off := uint64(0); ; {
		_, body, err := c.call(netproto.OpConsume, &netproto.ConsumeRequest{Topic: []byte(topic), Offset: off, Limit: 100000})
		if err != nil {
			t.Fatalf("consume at %d: %v", off, err)
		}
		var r netproto.ConsumeResponse
		if err := r.Decode(body); err != nil {
			t.Fatal(err)
		}
		if r.BatchBytes == 0 {
			return out
		}
		sc := record.NewScanner(r.Batches)
		for sc.Next() {
			h := sc.Header()
			it := record.Messages(sc.Batch(), h)
			i := uint64(0)
			for m, ok := it.Next(); ok; m, ok = it.Next() {
				out[h.BaseOffset+i] = string(m)
				i++
			}
			off = h.NextOffset()
		}
		if sc.Err() != nil {
			t.Fatalf("consume at %d: %v", off, sc.Err())
		}
	}
}

// TestKill9UnderLoad checks the promise of fsync=always across process
// crashes: the broker is killed with SIGKILL at a random moment while
// producers run; after a restart every acknowledged message is present
// exactly once, in order, with its content, and no manual step is needed.
func TestKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the broker binary; skipped in -short")
	}
	loops := 200
	if v, err := strconv.Atoi(os.Getenv("HARAQA_KILL_LOOPS")); err == nil && v > 0 {
		loops = v
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %d kill loops (set HARAQA_KILL_LOOPS for more)", seed, loops)
	rng := rand.New(rand.NewSource(seed))
	bin := buildBroker(t)
	dir := t.TempDir()
	acked := map[uint64]string{} // offset → message, across all loops
	var mu sync.Mutex
	for loop := 0; loop < loops; loop++ {
		p := startBroker(t, bin, dir)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialRaw(p.sock)
				if err != nil {
					return
				}
				defer c.nc.Close()
				for n := 0; ctx.Err() == nil && n < 100000; n++ {
					msgs := make([][]byte, 1+n%50)
					for i := range msgs {
						msgs[i] = []byte(fmt.Sprintf("l%d-w%d-n%d-i%d", loop, w, n, i))
					}
					batch, _ := record.AppendBatch(nil, msgs...)
					base, err := c.produce("kill", batch)
					if err != nil {
						return // the broker died under us: not acknowledged
					}
					mu.Lock()
					for i, m := range msgs {
						if old, dup := acked[base+uint64(i)]; dup {
							t.Errorf("offset %d acknowledged twice: %q and %q", base+uint64(i), old, m)
						}
						acked[base+uint64(i)] = string(m)
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.Intn(150)) * time.Millisecond) // the kill point
		p.cmd.Process.Kill()
		p.cmd.Wait()
		cancel()
		wg.Wait()
	}
	p := startBroker(t, bin, dir)
	defer func() { p.cmd.Process.Kill(); p.cmd.Wait() }()
	c, err := dialRaw(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	got := c.readAll(t, "kill")
	missing := 0
	for off, want := range acked {
		if got[off] != want {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged offset %d: got %q, want %q", off, got[off], want)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages lost or changed\n%s", missing, len(acked), p.logText())
	}
	// Offsets are dense from 0: nothing duplicated, nothing skipped.
	for off := uint64(0); off < uint64(len(got)); off++ {
		if _, ok := got[off]; !ok {
			t.Fatalf("offset %d missing from a log of %d messages", off, len(got))
		}
	}
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged in any loop")
	}
	t.Logf("%d acknowledged messages over %d kills, %d stored", len(acked), loops, len(got))
}
