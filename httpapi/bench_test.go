package httpapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/haraqa/haraqa/engine"
)

// BenchmarkProduceHandler measures the produce handler alone (no network,
// no HTTP client): bodies of 1,000 NDJSON lines of 100 bytes, each checked,
// built into a batch and appended (fsync=never). It reports the messages
// per second one core of the handler sustains.
func BenchmarkProduceHandler(b *testing.B) {
	e, err := engine.Open(engine.Options{Dir: b.TempDir(), Fsync: engine.FsyncNever, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	mux := http.NewServeMux()
	Register(mux, e, Options{AutoCreateTopics: true})
	var body bytes.Buffer
	for i := range 1000 {
		head := fmt.Sprintf(`{"i":%d,"p":"`, i)
		body.WriteString(head)
		body.Write(bytes.Repeat([]byte("x"), 100-len(head)-3))
		body.WriteString("\"}\n")
	}
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("POST", "/topics/bench/messages", bytes.NewReader(body.Bytes()))
		req.Header.Set("Content-Type", "application/x-ndjson")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "msgs/s")
}
