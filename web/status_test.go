package web

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/metrics"
)

// TestStatusPageRenders checks the status page's promise to a person: it
// shows every topic with its offset range, size and produce and consume
// rates over the last reload, the volumes with their state and reason
// (escaped), the groups' lag, the readiness reasons, and reloads itself,
// with no script and no external asset.
func TestStatusPageRenders(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snaps := []metrics.Snapshot{
		{Taken: t0, Open: true, Topics: []engine.TopicInfo{{Name: "orders", End: 100, AppendedMessages: 100}}},
		{Taken: t0.Add(10 * time.Second), Open: true, Conns: 7,
			Topics: []engine.TopicInfo{
				{Name: "orders", Start: 40, End: 600, Bytes: 3 << 20, Segments: 2, AppendedMessages: 600, ReadMessages: 200},
				{Name: "fresh", End: 30, AppendedMessages: 30, ReadOnly: errors.New("disk full")},
			},
			Groups: []engine.GroupInfo{{Topic: "orders", Name: "billing", Committed: 450, Lag: 150, InFlight: 12}},
			Stats: engine.Stats{CorruptionsFound: 3, BytesRepaired: 4096, Volumes: []engine.VolumeInfo{
				{Dir: "/mnt/v1", State: engine.VolumeHealthy},
				{Dir: "/mnt/v2", State: engine.VolumeFenced, Reason: "identity <gone>"},
			}}},
	}
	next := 0
	p := NewStatusPage(StatusOptions{Version: "v9.8.7", Snapshot: func() metrics.Snapshot { s := snaps[next]; next++; return s },
		Ready: []Check{{Name: "volumes", Check: func() error { return errors.New("1 healthy volumes, -min-volumes 2") }}}})
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`, `name="viewport"`, "v9.8.7", "connections <b>7</b>",
		"<td>orders</td><td class=\"n\">40</td><td class=\"n\">600</td><td class=\"n\">560</td><td class=\"n\">3.0 MiB</td><td class=\"n\">2</td><td class=\"n\">50/s</td><td class=\"n\">20/s</td>",
		"<td>fresh</td>", "3.0/s", "disk full",
		"/mnt/v2</td><td class=\"bad\">fenced", "identity &lt;gone&gt;",
		"<td>billing</td><td class=\"n\">450</td><td class=\"n\">150</td><td class=\"n\">12</td>",
		"not ready", "volumes: 1 healthy volumes, -min-volumes 2",
		"<td>corruptions found</td><td class=\"n\">3</td>", "<td>bytes repaired</td><td class=\"n\">4,096</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "src=\"http", "href=\"http", "<link"} {
		if strings.Contains(body, banned) {
			t.Errorf("page has %q", banned)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}
