package main

import (
	"strings"
	"testing"
)

// TestW3FractionOfFloors protects the promise that W3 is shown as a
// fraction of its floors (the least work of verified 1 MiB messages), and
// that a Unix socket figure is never divided by a floor measured over TCP.
func TestW3FractionOfFloors(t *testing.T) {
	raw := `BenchmarkW3/haraqa-proc-tcp/produce-2 	1	1 ns/op	 600.0 MB/s
BenchmarkW3/haraqa-proc-tcp/consume-2 	1	1 ns/op	 1500.0 MB/s
BenchmarkW3/haraqa-unix/produce-2 	1	1 ns/op	 900.0 MB/s
BenchmarkW3/haraqa-unix/consume-2 	1	1 ns/op	 1400.0 MB/s
BenchmarkLimit/tcp-verify-pagecache-2 	1	1 ns/op	 1200.0 MB/s
BenchmarkLimit/mapwrite-tcp-2 	1	1 ns/op	 3000.0 MB/s
BenchmarkLimit/tcp-verify-both-2 	1	1 ns/op	 2000.0 MB/s
`
	r, err := parse(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.fractionTable(&b)
	rows := map[string][]string{}
	for line := range strings.SplitSeq(b.String(), "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 6 {
			continue
		}
		// | figure | limit | haraqa-tcp | haraqa-unix | haraqa-proc-tcp | haraqa-proc-unix |
		rows[strings.TrimPrefix(cells[0], "| ")+" / "+cells[1]] = cells[2:]
	}
	for _, c := range []struct{ row, unix, procTCP string }{
		{"W3 produce MB/s / tcp-verify-pagecache", "–", "50%"},
		{"W3 consume MB/s / mapwrite-tcp", "–", "50%"},
		{"W3 consume MB/s / tcp-verify-both", "–", "75%"},
	} {
		got, ok := rows[c.row]
		if !ok {
			t.Errorf("no row %q in\n%s", c.row, b.String())
			continue
		}
		if got[1] != c.unix || got[2] != c.procTCP {
			t.Errorf("%s: haraqa-unix %q, haraqa-proc-tcp %q; want %q, %q", c.row, got[1], got[2], c.unix, c.procTCP)
		}
	}
}
