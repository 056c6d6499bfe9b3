package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// The two limits below are W3's floors on this machine: the least work a
// log that checks every batch's checksum must do for 1 MiB messages,
// arranged to use both cores, with nothing else (no protocol, no offsets,
// no index, no acks). W3 produce and consume are read against them as well
// as against the bare stream limits.

// verifyPageCacheLimit streams n bytes per op as 1 MiB messages over
// loopback TCP: the sender hashes each (xxhash64, as a producer computes
// a batch's checksum) and writes the hash and the message; the receiver
// reads each into one of four reused buffers and hashes it again (the
// broker's check), and a third goroutine writes it to a new file in the
// page cache (the broker's store). A produce of verified 1 MiB messages
// cannot go faster here. n is W3's volume: how much new dirty page cache
// a run makes matters (on the machine of bench/README.md the write rate
// drops several-fold between 1 and 2 GiB).
func verifyPageCacheLimit(b *testing.B, n int64) {
	const msgSize = 1 << 20
	w, r := pair(b, "tcp")
	dir := dataDir(b, "verifypc")
	msgs := (n + msgSize - 1) / msgSize * int64(b.N)
	src := make([]byte, 8+msgSize)
	for i := range src {
		src[i] = byte(i * 7)
	}
	// Untimed, as in seqWriteLimit: the page cache's first touch of guest
	// memory it has not used before costs several times a reuse.
	warm, err := os.Create(filepath.Join(dir, "warm"))
	if err != nil {
		b.Fatal(err)
	}
	for range msgs {
		if _, err := warm.Write(src[8:]); err != nil {
			b.Fatal(err)
		}
	}
	warm.Close()
	os.Remove(warm.Name())
	f, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	free, full := make(chan []byte, 4), make(chan []byte, 4)
	for range 4 {
		free <- make([]byte, 8+msgSize)
	}
	recvDone, writeDone := make(chan error, 1), make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { // the file writer
		var err error
		for buf := range full {
			if err == nil {
				_, err = f.Write(buf[8:])
			}
			free <- buf
		}
		writeDone <- err
	}()
	go func() { // the receiver: read, check
		defer close(full)
		r.SetReadDeadline(time.Now().Add(5 * time.Minute))
		for i := range msgs {
			buf := <-free
			if _, err := io.ReadFull(r, buf); err != nil {
				recvDone <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if xxhash.Sum64(buf[8:]) != binary.LittleEndian.Uint64(buf) {
				recvDone <- fmt.Errorf("message %d: checksum mismatch", i)
				return
			}
			full <- buf
		}
		recvDone <- nil
	}()
	for i := range msgs {
		src[8] = byte(i) // a different message each time, hashed anew
		binary.LittleEndian.PutUint64(src, xxhash.Sum64(src[8:]))
		if _, err := w.Write(src); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-recvDone; err != nil {
		b.Fatal(err)
	}
	if err := <-writeDone; err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	b.StopTimer()
	reportBytes(b, msgs*msgSize, d)
}

// verifyBothLimit sends n bytes per op of a page-cached 256 MiB file
// (smaller under -short) over loopback TCP from its memory mapping, in
// 16 MiB writes, as the broker sends a consume response by default. With
// hash (tcp-verify-both) the sender hashes every 1 MiB of a response
// before it writes it (the broker's check before it sends), and a second
// goroutine of the receiver hashes every 1 MiB of each response (the
// consumer's check) while the next is read into the other of two 16 MiB
// buffers: a consume of verified 1 MiB messages cannot go faster here.
// Without (mapwrite-tcp) it is the bare limit of writes from the mapping.
func verifyBothLimit(b *testing.B, n int64, hash bool) {
	const msgSize, respSize = 1 << 20, 16 << 20
	fileSize := min(max(n, respSize), 256<<20) / respSize * respSize
	f, err := os.Create(filepath.Join(dataDir(b, "verifyboth"), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, msgSize)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for w := int64(0); w < fileSize; w += msgSize {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(fileSize), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Munmap(m)
	want := xxhash.Sum64(m[:msgSize]) // every message of the file is chunk
	w, r := pair(b, "tcp")
	resps := (n + respSize - 1) / respSize * int64(b.N)
	free, full := make(chan []byte, 2), make(chan []byte, 2)
	for range 2 {
		free <- make([]byte, respSize)
	}
	recvDone, checkDone := make(chan error, 1), make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { // the consumer's checker
		var err error
		for buf := range full {
			for p := 0; hash && err == nil && p < len(buf); p += msgSize {
				if xxhash.Sum64(buf[p:p+msgSize]) != want {
					err = fmt.Errorf("checksum mismatch")
				}
			}
			free <- buf
		}
		checkDone <- err
	}()
	go func() { // the consumer's reader
		defer close(full)
		r.SetReadDeadline(time.Now().Add(5 * time.Minute))
		for i := range resps {
			buf := <-free
			if _, err := io.ReadFull(r, buf); err != nil {
				recvDone <- fmt.Errorf("response %d: %w", i, err)
				return
			}
			full <- buf
		}
		recvDone <- nil
	}()
	for i := range resps {
		pos := i * respSize % fileSize
		resp := m[pos : pos+respSize]
		for p := 0; hash && p < respSize; p += msgSize {
			if xxhash.Sum64(resp[p:p+msgSize]) != want {
				b.Fatal("file changed under the sender")
			}
		}
		if _, err := w.Write(resp); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-recvDone; err != nil {
		b.Fatal(err)
	}
	if err := <-checkDone; err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	b.StopTimer()
	reportBytes(b, resps*respSize, d)
}
