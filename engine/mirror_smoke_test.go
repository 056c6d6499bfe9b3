package engine

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
)

func TestMirrorSmoke(t *testing.T) {
	fs := segment.NewMemFS()
	opts := Options{Volumes: []string{"/v1", "/v2", "/v3"}, FS: fs, SegmentBytes: 64 << 10, SegmentEntries: 64, ScrubBytesPerSec: -1}
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		b, _ := record.AppendBatch(nil, []byte(fmt.Sprintf("m%d", i)))
		if _, err := e.Append(t.Context(), "t", b); err != nil {
			t.Fatal(err)
		}
	}
	info, _ := e.Describe("t")
	t.Logf("%+v", info)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip a byte in a sealed segment of v2, and delete v3's contents.
	fs.Corrupt(filepath.Join("/v2/topics/t", segment.LogName(0)), func(b []byte) []byte { b[100] ^= 1; return b })
	names, _ := fs.List("/v3")
	for _, n := range names {
		if n == "topics" {
			tn, _ := fs.List("/v3/topics/t")
			for _, f := range tn {
				fs.Remove("/v3/topics/t/" + f)
			}
			fs.Remove("/v3/topics/t")
		}
		fs.Remove("/v3/" + n)
	}
	e, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st := e.Stats()
	t.Logf("stats %+v", st)
	if bad := e.Scrub(0); bad != 1 {
		t.Logf("scrub found %d bad (the flipped sealed copy is found by the scrubber, not at open)", bad)
	}
	if bad := e.Scrub(0); bad != 0 {
		t.Fatalf("second scrub found %d bad", bad)
	}
	for _, m := range func() []*mirror { tp, _ := e.topic("t"); return tp.view.Load().mirrors }() {
		if len(m.segs) != len(e.topics["t"].segments()) {
			t.Fatalf("mirror %s has %d segments", m.vol.dir, len(m.segs))
		}
		for _, s := range m.segs {
			s.Acquire()
			if err := s.Verify(); err != nil {
				t.Fatalf("%s: %v", m.vol.dir, err)
			}
			s.Release()
		}
	}
}
