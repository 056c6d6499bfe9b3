package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// bystander is a well-behaved client that produces and consumes in a loop
// on its own connection while a test misbehaves on others.
type bystander struct {
	stop, done chan struct{}
	rounds     atomic.Int64
	maxRTT     atomic.Int64 // nanoseconds of the slowest produce+consume
	err        error        // set before done is closed
}

func startBystander(t testing.TB, ts *testServer, topic string) *bystander {
	t.Helper()
	p := mustDial(t, ts, "")
	b := &bystander{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		batch := make([]byte, 0, 256)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-b.stop:
				return
			default:
			}
			start := time.Now()
			want := fmt.Sprint("bystander-", i)
			batch = batch[:0]
			batch = appendBatch(batch, want)
			pr, err := p.produce(topic, batch)
			if err != nil {
				b.err = fmt.Errorf("round %d: produce: %w", i, err)
				return
			}
			cr, err := p.consume(netproto.ConsumeRequest{Topic: []byte(topic), Offset: pr.BaseOffset, Limit: 1})
			if err != nil {
				b.err = fmt.Errorf("round %d: consume: %w", i, err)
				return
			}
			ms, err := decodeBatches(cr.Batches)
			if err != nil || len(ms) == 0 || ms[0] != (message{pr.BaseOffset, want}) {
				b.err = fmt.Errorf("round %d: consumed %v, %v; want %q at %d", i, ms, err, want, pr.BaseOffset)
				return
			}
			if d := int64(time.Since(start)); d > b.maxRTT.Load() {
				b.maxRTT.Store(d)
			}
			b.rounds.Add(1)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-b.stop:
		default:
			close(b.stop)
		}
		<-b.done
	})
	return b
}

// progressing waits until the bystander completes another round.
func (b *bystander) progressing(t testing.TB) {
	t.Helper()
	n := b.rounds.Load()
	if !waitFor(ioTimeout, func() bool { return b.rounds.Load() > n || isClosed(b.done) }) || b.err != nil {
		t.Fatalf("the bystander stalled after %d rounds: %v", n, b.err)
	}
}

// finish stops the bystander and fails the test if it ever failed.
func (b *bystander) finish(t testing.TB) {
	t.Helper()
	close(b.stop)
	<-b.done
	if b.err != nil {
		t.Fatalf("the bystander failed: %v", b.err)
	}
	t.Logf("bystander: %d produce+consume rounds, slowest %v", b.rounds.Load(), time.Duration(b.maxRTT.Load()))
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func appendBatch(dst []byte, msgs ...string) []byte {
	bs := make([][]byte, len(msgs))
	for i, m := range msgs {
		bs[i] = []byte(m)
	}
	out, err := record.AppendBatch(dst, bs...)
	if err != nil {
		panic(err)
	}
	return out
}

func (p *peer) closeWrite() error {
	cw, ok := p.nc.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("no CloseWrite")
	}
	return cw.CloseWrite()
}

// header returns the 16 bytes of a request header.
func header(bodyLen uint32, op netproto.Opcode, flags uint8, status uint16, id uint64) []byte {
	h := netproto.Header{BodyLen: bodyLen, Opcode: op, Flags: flags, Status: netproto.Code(status), RequestID: id}
	return h.AppendTo(nil)
}

// Promise (PROTOCOL.md, Connection 4): bad
// input on a raw socket (seeded random bytes, an HTTP request, a header
// declaring 4 GiB-1 bytes, a truncated frame, an unknown opcode, bad flags,
// a body that does not decode, a produce whose batch fails its checksum,
// bad topic names) gets one error frame or a closed connection. Header
// refusals come at once, without the body being read or allocated; the
// broker stays up; a client connected throughout keeps working; nothing of
// a bad request is stored, and no bad name touches the file system.
func TestBadInput(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) { testBadInput(t, network) })
	}
}

func testBadInput(t *testing.T, network string) {
	// The data directory has a sibling that ".." must never reach.
	root := t.TempDir()
	sentinel := filepath.Join(root, "sentinel")
	if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, engine.Options{Dir: filepath.Join(root, "data")})
	ts := startServer(t, e, network, Options{AutoCreateTopics: true, ReadTimeout: 500 * time.Millisecond})
	setup := mustDial(t, ts, "")
	setup.mustProduce(t, "victim", batchOf(t, "v1", "v2"))
	setup.mustProduce(t, "steady", batchOf(t, "s"))
	wantTopics := e.Topics("")
	by := startBystander(t, ts, "steady")

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 14))

	good := batchOf(t, "never", "stored")
	badPayload := slices.Clone(good)
	badPayload[len(badPayload)-9] ^= 0x40 // a payload byte (before the padding)
	badHeader := slices.Clone(good)
	badHeader[12] ^= 1 // the count
	produceFrame := netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpProduce, RequestID: 3},
		&netproto.ProduceRequest{Topic: []byte("victim"), Batch: good})

	cases := []struct {
		name  string
		hello bool
		run   func(t *testing.T, p *peer)
	}{
		{"random bytes", false, func(t *testing.T, _ *peer) {
			for i := range 40 {
				p := mustDialRaw(t, ts)
				if i%2 == 1 {
					p.mustHello(t, "")
				}
				junk := make([]byte, 1+rng.IntN(8192))
				for j := range junk {
					junk[j] = byte(rng.Uint32())
				}
				p.writeRaw(junk) // the server may already have hung up
				p.closeWrite()
				hs, errs, err := p.expectEnd(1, ioTimeout)
				if err != nil || (len(hs) == 1 && errs[0] == nil) {
					t.Fatalf("round %d (%d bytes %x...): frames %+v %v: %v", i, len(junk), junk[:min(16, len(junk))], hs, errs, err)
				}
				p.Close()
			}
		}},
		{"http request", false, func(t *testing.T, p *peer) {
			p.mustWrite(t, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			expectRefused(t, p, netproto.CodeFrameTooLarge)
		}},
		{"4 GiB-1 body, no hello", false, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(1<<32-1, netproto.OpProduce, 0, 0, 5))
			expectRefused(t, p, netproto.CodeFrameTooLarge)
		}},
		{"4 GiB-1 body", true, func(t *testing.T, p *peer) {
			start := time.Now()
			p.mustWrite(t, header(1<<32-1, netproto.OpProduce, 0, 0, 5))
			h, body, err := p.recv(ioTimeout)
			took := time.Since(start)
			if err != nil || h.Status != netproto.CodeFrameTooLarge || h.RequestID != 5 || h.Opcode != netproto.OpProduce {
				t.Fatalf("got %+v %v", h, err)
			}
			if took > 5*time.Second { // a loaded machine's margin; the body never comes
				t.Fatalf("FrameTooLarge took %v", took)
			}
			t.Logf("FrameTooLarge after %v: %v", took, netproto.DecodeError(h.Status, body))
			if _, _, err := p.expectEnd(0, ioTimeout); err != nil {
				t.Fatal(err)
			}
		}},
		{"4 GiB-1 body, streaming", true, func(t *testing.T, p *peer) {
			// The client goes on sending the body it declared; the error
			// frame still arrives, and the connection ends.
			frame := append(header(1<<32-1, netproto.OpProduce, 0, 0, 5), make([]byte, 256<<10)...)
			go p.writeRaw(frame)
			expectRefused(t, p, netproto.CodeFrameTooLarge)
		}},
		{"body just above MaxBody", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(netproto.DefaultMaxBody+1, netproto.OpProduce, 0, 0, 5))
			expectRefused(t, p, netproto.CodeFrameTooLarge)
		}},
		{"truncated frame", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, produceFrame[:len(produceFrame)/2])
			p.closeWrite()
			if hs, _, err := p.expectEnd(0, ioTimeout); err != nil {
				t.Fatalf("frames %+v: %v", hs, err)
			}
		}},
		{"truncated header", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, produceFrame[:9])
			p.closeWrite()
			if hs, _, err := p.expectEnd(0, ioTimeout); err != nil {
				t.Fatalf("frames %+v: %v", hs, err)
			}
		}},
		{"unknown opcode", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(4, 99, 0, 0, 6))
			expectRefused(t, p, netproto.CodeUnknownOpcode)
		}},
		{"opcode 0", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(0, 0, 0, 0, 6))
			expectRefused(t, p, netproto.CodeUnknownOpcode)
		}},
		{"watch event as request", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(0, netproto.OpWatchEvent, 0, 0, 6))
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"reserved flag", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(0, netproto.OpTopics, 0x80, 0, 6))
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"response flag", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(0, netproto.OpTopics, netproto.FlagResponse, 0, 6))
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"request with status", true, func(t *testing.T, p *peer) {
			p.mustWrite(t, header(0, netproto.OpTopics, 0, 3, 6))
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"trailing bytes", true, func(t *testing.T, p *peer) {
			f := netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpOffsets, RequestID: 7}, &netproto.OffsetsRequest{Topic: []byte("victim")})
			f = append(f, 0)
			binary.LittleEndian.PutUint32(f, uint32(len(f)-netproto.HeaderSize))
			p.mustWrite(t, f)
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"batch shorter than its header", true, func(t *testing.T, p *peer) {
			p.mustSend(t, netproto.OpProduce, 8, &netproto.ProduceRequest{Topic: []byte("victim"), Batch: good[:40]})
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"string longer than the body", true, func(t *testing.T, p *peer) {
			f := netproto.AppendFrame(nil, netproto.Header{Opcode: netproto.OpCreateTopic, RequestID: 9}, &netproto.CreateTopicRequest{Topic: []byte("abc")})
			binary.LittleEndian.PutUint16(f[netproto.HeaderSize:], 60000)
			p.mustWrite(t, f)
			expectRefused(t, p, netproto.CodeMalformed)
		}},
		{"second hello, version 0", true, func(t *testing.T, p *peer) {
			// A second Hello is checked like the first.
			p.mustHello(t, "")
			p.mustSend(t, netproto.OpHello, 10, &netproto.HelloRequest{Version: 0})
			expectRefused(t, p, netproto.CodeUnsupportedVersion)
		}},
		{"bad checksums", true, func(t *testing.T, p *peer) {
			for _, b := range [][]byte{badPayload, badHeader} {
				_, err := p.produce("victim", b)
				wantCode(t, err, netproto.CodeBatchInvalid)
			}
			// A request-level error: the connection goes on.
			p.mustOffsets(t, "victim", 0)
		}},
		{"bad topic names", true, func(t *testing.T, p *peer) {
			for _, name := range []string{"..", ".", "a/b", "../data", strings.Repeat("x", 300), "", "a\x00b", "sp ace"} {
				_, err := p.produce(name, good)
				wantCode(t, err, netproto.CodeBadTopicName)
				_, err = p.call(netproto.OpCreateTopic, &netproto.CreateTopicRequest{Topic: []byte(name)})
				wantCode(t, err, netproto.CodeBadTopicName)
				_, err = p.call(netproto.OpDeleteTopic, &netproto.DeleteTopicRequest{Topic: []byte(name)})
				wantCode(t, err, netproto.CodeBadTopicName)
				_, err = p.consume(netproto.ConsumeRequest{Topic: []byte(name)})
				wantCode(t, err, netproto.CodeBadTopicName)
				_, err = p.offsets(name, 0)
				wantCode(t, err, netproto.CodeBadTopicName)
				_, err = p.call(netproto.OpTruncate, &netproto.TruncateRequest{Topic: []byte(name), BeforeOffset: 1})
				wantCode(t, err, netproto.CodeBadTopicName)
			}
			p.mustOffsets(t, "victim", 0)
		}},
		{"large declared body, little sent", true, func(t *testing.T, p *peer) {
			// A body within MaxBody is read as it arrives: a peer that
			// declares 60 MiB and sends 4 KiB costs about 4 KiB, not 60 MiB.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p.mustWrite(t, header(60<<20, netproto.OpProduce, 0, 0, 11))
			p.mustWrite(t, make([]byte, 4096))
			p.closeWrite()
			if hs, _, err := p.expectEnd(0, ioTimeout); err != nil {
				t.Fatalf("frames %+v: %v", hs, err)
			}
			runtime.ReadMemStats(&after)
			if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
				t.Fatalf("a 4 KiB partial body cost %d MiB of allocations", d>>20)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			victim := mustOffsetsOf(t, e, "victim")
			var p *peer
			if c.hello {
				p = mustDial(t, ts, "")
			} else {
				p = mustDialRaw(t, ts)
			}
			c.run(t, p)

			if got := mustOffsetsOf(t, e, "victim"); got != victim {
				t.Fatalf("victim offsets moved from %v to %v", victim, got)
			}
			if got := e.Topics(""); !slices.Equal(got, wantTopics) {
				t.Fatalf("topics are %q, want %q", got, wantTopics)
			}
			if _, err := os.Stat(sentinel); err != nil {
				t.Fatalf("the data directory's sibling is gone: %v", err)
			}
			// The broker is up for new clients, and the bystander works.
			mustDial(t, ts, "").mustOffsets(t, "victim", 0)
			by.progressing(t)
		})
	}
	by.finish(t)
}

func mustOffsetsOf(t testing.TB, e *engine.Engine, topic string) [2]uint64 {
	t.Helper()
	start, end, err := e.Offsets(topic)
	if err != nil {
		t.Fatal(err)
	}
	return [2]uint64{start, end}
}
