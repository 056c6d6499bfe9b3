package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/httpapi"
	"github.com/haraqa/haraqa/server"
)

// BenchmarkHTTP: the HTTP API (package httpapi) next to the native
// protocol, one broker in this process serving both (engine with
// fsync=never, as W1; server and API with their defaults):
//
//   - ingest: 2,000,000 NDJSON lines of 100 bytes, in bodies of 1,000 lines
//     (one POST /topics/{topic}/messages each), over 4 connections, one
//     request in flight on each; native: the same 1,000-message batches
//     over 4 client connections, one Produce in flight on each.
//   - consume: the 2,000,000 messages read back, 10,000 a request, over
//     one connection (GET /topics/{topic}/messages, NDJSON; native:
//     Consume).
//
// msgs/s, and p50/p99 per request in µs. Every run checks the topic's
// length after ingest and the count, order and content of what it read.
func BenchmarkHTTP(b *testing.B) {
	total := 2_000_000
	if testing.Short() {
		total = 20_000
	}
	const lineSize, perBody, conns, perRead = httpLineSize, 1000, 4, 10_000
	quiet := slog.New(slog.DiscardHandler)
	e, err := engine.Open(engine.Options{Dir: dataDir(b, "haraqa-http"), Fsync: engine.FsyncNever, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	l, err := server.Listen("tcp://127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(e, server.Options{AutoCreateTopics: true, Logger: quiet})
	go srv.Serve(l)
	defer srv.Close()
	mux := http.NewServeMux()
	httpapi.Register(mux, e, httpapi.Options{AutoCreateTopics: true, Logger: quiet})
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(hl)
	defer hs.Close()
	base := "http://" + hl.Addr().String()
	native := "tcp://" + l.Addr().String()

	bodies := ndjsonBodies(total, perBody, lineSize)
	last := map[string]string{} // the topic each protocol's last ingest wrote
	for _, proto := range []string{"native", "http"} {
		b.Run("ingest/"+proto, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				httpRuns++
				t := "ingest-" + proto + "-" + strconv.Itoa(httpRuns)
				last[proto] = t
				var lat *latencies
				var d time.Duration
				if proto == "http" {
					lat, d = httpIngest(b, base, t, bodies, conns)
				} else {
					lat, d = nativeIngest(b, native, t, bodies, conns)
				}
				if _, end, err := e.Offsets(t); err != nil || end != uint64(total) {
					b.Fatalf("%s holds %d messages (%v), want %d", t, end, err, total)
				}
				reportRate(b, total, lineSize, d)
				reportP50P99(b, lat)
			}
		})
	}
	for _, proto := range []string{"native", "http"} {
		b.Run("consume/"+proto, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				t := last[proto]
				var lat *latencies
				var d time.Duration
				if proto == "http" {
					lat, d = httpConsume(b, base, t, total, perRead, bodies, perBody)
				} else {
					lat, d = nativeConsume(b, native, t, total, perRead, bodies, perBody)
				}
				reportRate(b, total, lineSize, d)
				reportP50P99(b, lat)
			}
		})
	}
}

// httpRuns numbers BenchmarkHTTP's ingest topics across -count runs.
var httpRuns int

// reportP50P99 reports the median and 99th percentile per request.
func reportP50P99(b *testing.B, l *latencies) {
	l.report(b)
}

// ndjsonBodies returns the NDJSON bodies: total lines of lineSize bytes
// (newline included), perBody a body. Line i is {"i":i,"p":"xxx..."}.
func ndjsonBodies(total, perBody, lineSize int) [][]byte {
	var out [][]byte
	for first := 0; first < total; first += perBody {
		var buf bytes.Buffer
		for i := first; i < min(first+perBody, total); i++ {
			head := fmt.Sprintf(`{"i":%d,"p":"`, i)
			buf.WriteString(head)
			buf.Write(bytes.Repeat([]byte("x"), lineSize-len(head)-3))
			buf.WriteString("\"}\n")
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// httpLineSize is the size of every NDJSON line, newline included.
const httpLineSize = 100

// lineOf returns message i's value (its line without the newline).
func lineOf(bodies [][]byte, perBody, i int) []byte {
	off := (i % perBody) * httpLineSize
	return bodies[i/perBody][off : off+httpLineSize-1]
}

// feed hands out body indexes to conns workers and times each request.
func feed(b *testing.B, n, conns int, do func(w, i int) error) (*latencies, time.Duration) {
	var mu sync.Mutex
	lat := newLatencies(n)
	next := make(chan int)
	errc := make(chan error, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				if err := do(w, i); err != nil {
					errc <- err
					for range next {
					}
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat.add(d)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	d := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return lat, d
}

func httpIngest(b *testing.B, base, topic string, bodies [][]byte, conns int) (*latencies, time.Duration) {
	tr := &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	url := base + "/topics/" + topic + "/messages"
	return feed(b, len(bodies), conns, func(_, i int) error {
		resp, err := c.Post(url, "application/x-ndjson", bytes.NewReader(bodies[i]))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("POST: %s", resp.Status)
		}
		return nil
	})
}

func nativeIngest(b *testing.B, addr, topic string, bodies [][]byte, conns int) (*latencies, time.Duration) {
	ctx := workCtx(b)
	cs := make([]*client.Client, conns)
	for i := range cs {
		c, err := client.Dial(ctx, addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	// The messages as the NDJSON lines, split before the clock starts.
	msgs := make([][][]byte, len(bodies))
	for i, body := range bodies {
		msgs[i] = bytes.SplitAfter(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		for j := range msgs[i] {
			msgs[i][j] = bytes.TrimSuffix(msgs[i][j], []byte("\n"))
		}
	}
	return feed(b, len(bodies), conns, func(w, i int) error {
		_, err := cs[w].Produce(ctx, topic, msgs[i]...)
		return err
	})
}

func httpConsume(b *testing.B, base, topic string, total, perRead int, bodies [][]byte, perBody int) (*latencies, time.Duration) {
	c := &http.Client{Timeout: time.Minute}
	tr := newTracker(total)
	lat := newLatencies(total/perRead + 1)
	next, seen := 0, 0
	start := time.Now()
	for next < total {
		t0 := time.Now()
		resp, err := c.Get(base + "/topics/" + topic + "/messages?offset=" + strconv.Itoa(next) + "&limit=" + strconv.Itoa(perRead))
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			// {"offset":N,"append_time":T,"value":"{\"i\":ID,\"p\":\"xxx\"}"}
			line := sc.Bytes()
			_, rest, _ := bytes.Cut(line, []byte(`"value":"{\"i\":`))
			id, _, _ := bytes.Cut(rest, []byte(`,`))
			i, err := strconv.Atoi(string(id))
			if err != nil || tr.add(uint64(i)) != nil {
				b.Fatalf("message %d: %s: not a line sent, or sent once and read twice", seen, line)
			}
			if i%97 == 0 && !bytes.Contains(line, bytes.ReplaceAll(lineOf(bodies, perBody, i), []byte(`"`), []byte(`\"`))) {
				b.Fatalf("message %d: %s, want line %d", seen, line, i)
			}
			seen++
		}
		resp.Body.Close()
		if err := sc.Err(); err != nil {
			b.Fatal(err)
		}
		n, err := strconv.Atoi(resp.Header.Get("Next-Offset"))
		if err != nil || n <= next {
			b.Fatalf("Next-Offset %q after %d", resp.Header.Get("Next-Offset"), next)
		}
		next = n
		lat.add(time.Since(t0))
	}
	d := time.Since(start)
	if err := tr.complete(); err != nil || seen != total {
		b.Fatalf("read %d messages, want %d: %v", seen, total, err)
	}
	return lat, d
}

func nativeConsume(b *testing.B, addr, topic string, total, perRead int, bodies [][]byte, perBody int) (*latencies, time.Duration) {
	ctx := workCtx(b)
	c, err := client.Dial(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var buf client.ConsumeBuffer
	tr := newTracker(total)
	lat := newLatencies(total/perRead + 1)
	next, seen := uint64(0), 0
	start := time.Now()
	for next < uint64(total) {
		t0 := time.Now()
		ms, err := c.Consume(ctx, topic, next, perRead, &buf)
		if err != nil {
			b.Fatal(err)
		}
		for m := range ms.All() {
			_, rest, _ := bytes.Cut(m.Value, []byte(`{"i":`))
			id, _, _ := bytes.Cut(rest, []byte(`,`))
			i, err := strconv.Atoi(string(id))
			if err != nil || tr.add(uint64(i)) != nil || !bytes.Equal(m.Value, lineOf(bodies, perBody, i)) {
				b.Fatalf("message %d: %q: not a line sent, or read twice", seen, m.Value)
			}
			seen++
		}
		if ms.Next() <= next {
			b.Fatal(errors.New("no progress"))
		}
		next = ms.Next()
		lat.add(time.Since(t0))
	}
	d := time.Since(start)
	if err := tr.complete(); err != nil || seen != total {
		b.Fatalf("read %d messages, want %d: %v", seen, total, err)
	}
	return lat, d
}
