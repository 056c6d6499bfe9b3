package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// BenchmarkScrapeManyTopics: one /metrics scrape of a broker with 2,000
// topics (SCRAPE_TOPICS=10000 for more; creating them on the in-memory
// file system takes minutes), each with one message, at the default label
// cap: its time and size say what a scrape costs a broker that large.
func BenchmarkScrapeManyTopics(b *testing.B) {
	n := 2_000
	if s := os.Getenv("SCRAPE_TOPICS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 100
	}
	e, err := engine.Open(engine.Options{Dir: "/data", FS: vfs.NewMemFS(), SegmentBytes: 1 << 20, ScrubBytesPerSec: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	batch, _ := record.AppendBatch(nil, []byte("m"))
	for i := range n {
		name := fmt.Sprintf("topic-%05d", i)
		if err := e.CreateTopic(name); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Append(context.Background(), name, append([]byte(nil), batch...)); err != nil {
			b.Fatal(err)
		}
	}
	m := New(Options{})
	m.Attach(Sources{Engine: e, Groups: e})
	h := m.Handler()
	var size int64
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		size, _ = io.Copy(io.Discard, rec.Body)
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
