package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/record"
)

// Promise: damage in a topic (no healthy copy) hides none of the messages
// before it from `hrq consume`, which then stops with an error; with
// --skip-corrupt it prints every good message, says on stderr which
// offsets it skipped, and exits 0.
func TestConsumeSkipCorrupt(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	var all []string
	for i := range 10 { // one batch per produce: offsets 10i..10i+9
		var in strings.Builder
		for j := range 10 {
			line := fmt.Sprintf("message %d", i*10+j)
			in.WriteString(line + "\n")
			all = append(all, line)
		}
		mustHRQ(t, b.addr, strings.NewReader(in.String()), "produce", "t")
	}
	// Flip a payload byte of the fifth batch (offsets 40..49) on disk; the
	// broker reads the log through a shared mapping and sees it.
	f, err := os.OpenFile(filepath.Join(b.data, "topics", "t", fmt.Sprintf("%020d.log", 0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var pos int64
	var hdr [record.HeaderSize]byte
	for range 4 {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			t.Fatal(err)
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil {
			t.Fatal(err)
		}
		pos += int64(h.Size())
	}
	if _, err := f.WriteAt([]byte{0xff}, pos+record.HeaderSize+3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	want := strings.Join(all[:40], "\n") + "\n"
	r := hrq(t, b.addr, nil, "consume", "t", "--from", "beginning", "-e")
	if r.code != 5 || r.stdout != want || !strings.Contains(r.stderr, "40..49") {
		t.Fatalf("consume without --skip-corrupt: %v; want the 40 messages before the damage, then exit 5 naming 40..49", r)
	}
	r = hrq(t, b.addr, nil, "consume", "t", "--from", "beginning", "-e", "--skip-corrupt")
	want += strings.Join(all[50:], "\n") + "\n"
	if r.code != 0 || r.stdout != want || r.stderr != "hrq: topic \"t\": skipped damaged offsets 40..49\n" {
		t.Fatalf("consume --skip-corrupt: %v; want the 90 good messages and the skipped offsets on stderr", r)
	}
}
