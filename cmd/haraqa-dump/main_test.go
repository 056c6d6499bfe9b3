package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/record"
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
