package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// TestDump checks that the dump tool prints every batch of a healthy log
// and reports damage with its position and a non-zero exit.
func TestDump(t *testing.T) {
	dir := t.TempDir()
	var log []byte
	for i := 0; i < 3; i++ {
		b, _ := record.AppendBatch(nil, []byte("a"), []byte("b"))
		record.Stamp(b, uint64(2*i), 1700000000000000000)
		log = append(log, b...)
	}
	path := filepath.Join(dir, "00000000000000000000.log")
	os.WriteFile(path, log, 0o644)
	var out bytes.Buffer
	if code := run([]string{"-messages", dir}, &out, &out); code != 0 {
		t.Fatalf("healthy log: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "offsets 4..5") || !strings.Contains(out.String(), `5 "b"`) {
		t.Fatalf("missing batches:\n%s", out.String())
	}
	log[len(log)/2] ^= 1 // inside the middle batch
	os.WriteFile(path, log, 0o644)
	out.Reset()
	if code := run([]string{path}, &out, &out); code != 1 || !strings.Contains(out.String(), "corruption at byte") {
		t.Fatalf("damaged log: exit %d\n%s", code, out.String())
	}
}

// TestDumpWhileBrokerRuns checks the documented behaviour of dumping a
// volume a broker has open: the tool cannot take its shared lock, says so
// on stderr naming the broker's pid, and still prints every batch.
func TestDumpWhileBrokerRuns(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(engine.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	b, _ := record.AppendBatch(nil, []byte("a"), []byte("b"))
	if _, err := e.Append(context.Background(), "t", b); err != nil {
		t.Fatal(err)
	}
	topic := filepath.Join(dir, "topics", "t")
	var out, errOut bytes.Buffer
	if code := run([]string{"-messages", topic}, &out, &errOut); code != 0 {
		t.Fatalf("dump of a live volume: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	pid := "pid " + strconv.Itoa(os.Getpid())
	if !strings.Contains(errOut.String(), "locked by another broker") || !strings.Contains(errOut.String(), pid) {
		t.Fatalf("no warning naming the running broker:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), `1 "b"`) {
		t.Fatalf("batches missing:\n%s", out.String())
	}
	// The broker (fsync=always) wrote zeros after the batch: the log's end.
	if !strings.Contains(out.String(), "zero bytes after the log") {
		t.Fatalf("the zeros written ahead are not reported as the log's end:\n%s", out.String())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{topic}, &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Fatalf("dump of a stopped volume: exit %d, stderr %q", code, errOut.String())
	}
}

// TestDumpZerosAfterSealedLog: a sealed log ends at its last batch (the
// broker cuts the zeros written ahead before it seals, and refuses a
// sealed log of another length), so zeros after a sealed log are damage:
// the dump says so and exits 1, as the broker would refuse the segment.
func TestDumpZerosAfterSealedLog(t *testing.T) {
	dir := t.TempDir()
	s, err := segment.Create(vfs.OSFS{}, dir, 0, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := record.AppendBatch(nil, []byte("a"), []byte("b"))
	record.Stamp(b, 0, 1700000000000000000)
	if err := s.Write([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	s.Commit()
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, segment.LogName(0))
	var out bytes.Buffer
	if code := run([]string{path}, &out, &out); code != 0 {
		t.Fatalf("healthy sealed log: exit %d\n%s", code, out.String())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4096))
	f.Close()
	out.Reset()
	if code := run([]string{path}, &out, &out); code != 1 || !strings.Contains(out.String(), "sealed") {
		t.Fatalf("zeros after a sealed log: exit %d, want 1 naming the seal\n%s", code, out.String())
	}
}
