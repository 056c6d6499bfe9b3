package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLimit measures what the machine can do at best, for the
// haraqa figures to be read as fractions of it: loopback TCP and Unix
// socket throughput, sendfile from a page-cached file and writes from its
// mapping, the least work of W3 (tcp-verify-*: limits_verify_test.go), memcpy,
// sequential write into the page cache and with fdatasync, 4 KiB append +
// fdatasync latency, and the round trip of 100 bytes over loopback TCP and
// a Unix socket, to a goroutine and to another process.
func BenchmarkLimit(b *testing.B) {
	sz := size()
	b.Run("tcp-stream", func(b *testing.B) { streamLimit(b, "tcp", sz.limitBytes) })
	b.Run("unix-stream", func(b *testing.B) { streamLimit(b, "unix", sz.limitBytes) })
	b.Run("sendfile-tcp", func(b *testing.B) { sendfileLimit(b, sz.limitBytes) })
	b.Run("tcp-verify-pagecache", func(b *testing.B) { verifyPageCacheLimit(b, int64(sz.w3Msgs)*int64(sz.bigSize)) }) // as much as W3 writes
	b.Run("mapwrite-tcp", func(b *testing.B) { verifyBothLimit(b, sz.limitBytes, false) })
	b.Run("tcp-verify-both", func(b *testing.B) { verifyBothLimit(b, sz.limitBytes, true) })
	b.Run("memcpy", func(b *testing.B) { memcpyLimit(b, 4*sz.limitBytes) })
	b.Run("seqwrite-pagecache", func(b *testing.B) { seqWriteLimit(b, sz.limitBytes/2, false) })
	// As much as W3 produces: past about 1 GiB of new dirty pages the rate
	// drops several-fold on the machine of bench/README.md.
	b.Run("seqwrite-pagecache-w3", func(b *testing.B) { seqWriteLimit(b, int64(sz.w3Msgs)*int64(sz.bigSize), false) })
	b.Run("seqwrite-fdatasync", func(b *testing.B) { seqWriteLimit(b, sz.limitBytes/2, true) })
	b.Run("append4k-fdatasync", func(b *testing.B) { appendSyncLimit(b, sz.limitSyncs) })
	b.Run("overwrite4k-fdatasync", func(b *testing.B) { overwriteSyncLimit(b, sz.limitSyncs) })
	b.Run("tcp-rtt", func(b *testing.B) { rttLimit(b, "tcp", sz.limitRTTs, false) })
	b.Run("unix-rtt", func(b *testing.B) { rttLimit(b, "unix", sz.limitRTTs, false) })
	b.Run("tcp-rtt-proc", func(b *testing.B) { rttLimit(b, "tcp", sz.limitRTTs, true) })
	b.Run("unix-rtt-proc", func(b *testing.B) { rttLimit(b, "unix", sz.limitRTTs, true) })
}

// pair returns both ends of a connection over network.
func pair(b *testing.B, network string) (client, server net.Conn) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = socketPath(b)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	client, err = net.Dial(network, l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// drain reads n bytes from c and reports the count (or the error) on done.
func drain(c net.Conn, n int64, done chan<- error) {
	buf := make([]byte, 1<<20)
	var got int64
	c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	for got < n {
		k, err := c.Read(buf)
		got += int64(k)
		if err != nil {
			done <- fmt.Errorf("read after %d of %d bytes: %w", got, n, err)
			return
		}
	}
	done <- nil
}

func reportBytes(b *testing.B, n int64, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds()/1e6, "MB/s")
}

// streamLimit writes n bytes per op in 1 MiB writes; a goroutine reads them.
func streamLimit(b *testing.B, network string, n int64) {
	w, r := pair(b, network)
	total := n * int64(b.N)
	done := make(chan error, 1)
	chunk := make([]byte, 1<<20)
	b.ResetTimer()
	start := time.Now()
	go drain(r, total, done)
	for sent := int64(0); sent < total; {
		k, err := w.Write(chunk[:min(int64(len(chunk)), total-sent)])
		if err != nil {
			b.Fatal(err)
		}
		sent += int64(k)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	b.StopTimer()
	reportBytes(b, total, d)
}

// sendfileLimit sends a page-cached 256 MiB file (smaller under -short)
// over loopback TCP with sendfile (net.TCPConn.ReadFrom of an *os.File)
// until n bytes per op went out.
func sendfileLimit(b *testing.B, n int64) {
	fileSize := min(n, 256<<20)
	f, err := os.Create(filepath.Join(dataDir(b, "sendfile"), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for w := int64(0); w < fileSize; w += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, fileSize)); err != nil { // into the page cache
		b.Fatal(err)
	}
	w, r := pair(b, "tcp")
	tc := w.(*net.TCPConn)
	rounds := (n + fileSize - 1) / fileSize * int64(b.N)
	total := rounds * fileSize
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go drain(r, total, done)
	for range rounds {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if k, err := tc.ReadFrom(io.LimitReader(f, fileSize)); err != nil || k != fileSize {
			b.Fatalf("sendfile: %d bytes, %v", k, err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	b.StopTimer()
	reportBytes(b, total, d)
}

// memcpyLimit copies 64 MiB buffers (out of the caches) n bytes per op.
func memcpyLimit(b *testing.B, n int64) {
	const bufSize = 64 << 20
	src, dst := make([]byte, bufSize), make([]byte, bufSize)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault the pages in
	rounds := (n + bufSize - 1) / bufSize * int64(b.N)
	b.ResetTimer()
	start := time.Now()
	for range rounds {
		copy(dst, src)
	}
	d := time.Since(start)
	b.StopTimer()
	if dst[bufSize-1] != src[bufSize-1] {
		b.Fatal("copy lost bytes")
	}
	reportBytes(b, rounds*bufSize, d)
}

// seqWriteLimit writes n bytes per op to a new file in 1 MiB writes and,
// with sync, fdatasyncs it at the end: the disk's sequential durable
// bandwidth; without, the rate at which the page cache takes new file
// data (what a broker that does not fsync is bound by).
func seqWriteLimit(b *testing.B, n int64, sync bool) {
	dir := dataDir(b, "seqwrite")
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	write := func(name string) time.Duration {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		start := time.Now()
		for w := int64(0); w < n; w += int64(len(chunk)) {
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if sync {
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	// Untimed first pass: on a virtual machine the first touch of guest
	// memory the page cache has not used before costs several times more
	// than a reuse; the limit is the warm case.
	write("warm")
	b.ResetTimer()
	var d time.Duration
	for i := range b.N {
		d += write(fmt.Sprint(i))
	}
	b.StopTimer()
	reportBytes(b, n*int64(b.N), d)
}

// appendSyncLimit appends 4 KiB and fdatasyncs, n times per op: the
// latency of one durable append, and so the most group commits a second.
func appendSyncLimit(b *testing.B, n int) {
	syncLimit(b, "append", n, false)
}

// overwriteSyncLimit is appendSyncLimit over zeros written (and synced)
// into the file first: each fdatasync writes the block alone, with no new
// file size to commit. haraqa's segments under fsync=always write zeros
// ahead for this (DESIGN.md "Zeros ahead").
func overwriteSyncLimit(b *testing.B, n int) {
	syncLimit(b, "overwrite", n, true)
}

// syncLimit writes 4 KiB at the next position of a file and fdatasyncs,
// n times per op, reporting the latency of each; with zeroed, over zeros
// written and synced into the file before the timer starts.
func syncLimit(b *testing.B, name string, n int, zeroed bool) {
	f, err := os.Create(filepath.Join(dataDir(b, name), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	total := n * b.N
	block := make([]byte, 4096)
	if zeroed {
		zeros := make([]byte, 1<<20)
		for off := 0; off < total*len(block); off += len(zeros) {
			if _, err := f.Write(zeros); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	lat := newLatencies(total)
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		t0 := time.Now()
		if _, err := f.WriteAt(block, int64(i)*int64(len(block))); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	d := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total)/d.Seconds(), "syncs/s")
	lat.report(b)
}

// rttLimit sends 100 bytes and waits for them to come back, n times per
// op, against an echo goroutine, or with proc an echo in a child process
// (this test binary re-executed; both Go, like the haraqa-proc systems).
func rttLimit(b *testing.B, network string, n int, proc bool) {
	var c net.Conn
	if proc {
		c = dialEcho(b, network)
	} else {
		var s net.Conn
		c, s = pair(b, network)
		go echo(s)
	}
	msg, back := make([]byte, 100), make([]byte, 100)
	total := n * b.N
	lat := newLatencies(total)
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	b.ResetTimer()
	for i := range total {
		msg[0] = byte(i)
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, back); err != nil || back[0] != msg[0] {
			b.Fatalf("echo: %v", err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// echo sends back every 100 bytes it reads, until the connection ends.
func echo(c net.Conn) {
	buf := make([]byte, 100)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// echoEnv, set to "network address", makes the test binary an echo server.
const echoEnv = "HQBENCH_ECHO"

// echoServer listens on addr ("tcp 127.0.0.1:0" or "unix /path"), prints
// the address it got on stdout and echoes one connection; it exits when
// stdin closes (its parent went away).
func echoServer(addr string) int {
	network, address, _ := strings.Cut(addr, " ")
	l, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	fmt.Println(l.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		go echo(c)
	}
}

// dialEcho starts an echo server process and connects to it.
func dialEcho(b *testing.B, network string) net.Conn {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = socketPath(b)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), echoEnv+"="+network+" "+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("echo process: %v", err)
	}
	c, err := net.Dial(network, strings.TrimSpace(line))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
