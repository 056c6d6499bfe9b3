// Command benchtable turns the output of the bench suite (go test -bench
// with -count N) into the markdown of RESULTS.md: per workload and system
// the median and range of each metric, the haraqa/peer ratios against the
// issue's targets, the machine limits and each haraqa figure as a fraction
// of its limit.
//
//	go run ./internal/benchtable -raw raw.txt -benchstat stat.txt -header head.md > RESULTS.md
//	go run ./internal/benchtable -raw raw.txt -charts charts -date … -machine … -commit … > /dev/null
//
// With -charts it also draws the charts (charts.go).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// result holds every value of one benchmark, per unit, in run order.
type result map[string][]float64

type results struct {
	byName  map[string]result
	skipped map[string]bool
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads go test -bench output.
func parse(r io.Reader) (*results, error) {
	res := &results{byName: map[string]result{}, skipped: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "---" && f[1] == "SKIP:" {
			res.skipped[strings.TrimPrefix(f[2], "Benchmark")] = true
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		r := res.byName[name]
		if r == nil {
			r = result{}
			res.byName[name] = r
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", name, f[i], err)
			}
			r[f[i+1]] = append(r[f[i+1]], v)
		}
	}
	return res, sc.Err()
}

// stat is the median and range of a metric.
type stat struct {
	med, lo, hi float64
	n           int
}

func (s stat) ok() bool { return s.n > 0 }

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: m, lo: s[0], hi: s[len(s)-1], n: len(s)}
}

func (r *results) get(name, unit string) stat { return summarize(r.byName[name][unit]) }

// num formats a value with three significant digits and thousands grouped.
func num(v float64) string {
	switch {
	case v >= 1000:
		return group(strconv.FormatFloat(v, 'f', 0, 64))
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func group(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s stat) cell() string {
	if !s.ok() {
		return "–"
	}
	if s.n == 1 {
		return num(s.med)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.med), num(s.lo), num(s.hi))
}

// workload is a row group of the main table.
type workload struct {
	id, bench, what string
	units           []string
}

var workloads = []workload{
	{"W1", "W1W2/%s/W1-produce", "produce 1,000,000 × 100 B", []string{"msgs/s", "MB/s"}},
	{"W2", "W1W2/%s/W2-consume", "consume them back", []string{"msgs/s", "MB/s"}},
	{"W3p", "W3/%s/produce", "produce 2,000 × 1 MiB", []string{"MB/s"}},
	{"W3c", "W3/%s/consume", "consume them back", []string{"MB/s"}},
	{"W4", "W4/%s", "10,000 sync 100 B produces, latency", []string{"p50-µs", "p99-µs", "p99.9-µs"}},
	{"W4D", "W4D/%s", "2,000 durable sync 100 B produces, latency", []string{"p50-µs", "p99-µs", "p99.9-µs"}},
	{"W5", "W5/%s", "durable produce, 8 producers", []string{"msgs/s", "MB/s"}},
	{"W6", "W6/%s", "end to end at 10,000 msgs/s, latency", []string{"p50-µs", "p99-µs", "p99.9-µs"}},
	{"W7", "W7/%s/1-member", "consume and ack 1,000,000 × 100 B through a group, 1 member; ack-confirm latency", []string{"msgs/s", "p50-µs"}},
	{"W7", "W7/%s/4-members", "the same, 4 members", []string{"msgs/s", "p50-µs"}},
	{"Topics", "Topics/topics=1/%s", "produce over 1 topic (round-robin)", []string{"msgs/s", "rss-MB"}},
	{"Topics", "Topics/topics=100/%s", "produce over 100 topics", []string{"msgs/s", "rss-MB"}},
	{"Topics", "Topics/topics=1000/%s", "produce over 1,000 topics", []string{"msgs/s", "rss-MB"}},
	{"Topics", "Topics/topics=10000/%s", "produce over 10,000 topics", []string{"msgs/s", "rss-MB"}},
}

var systems = []string{"haraqa-tcp", "haraqa-unix", "haraqa-proc-tcp", "haraqa-proc-unix", "nats", "redis"}

func (r *results) mainTable(w io.Writer) {
	fmt.Fprintf(w, "| workload | metric | %s |\n|---|---|%s\n", strings.Join(systems, " | "), strings.Repeat("---|", len(systems)))
	for _, wl := range workloads {
		for i, u := range wl.units {
			label := ""
			if i == 0 {
				label = fmt.Sprintf("**%s** %s", wl.id, wl.what)
			}
			cells := make([]string, len(systems))
			for j, s := range systems {
				name := fmt.Sprintf(wl.bench, s)
				cells[j] = r.get(name, u).cell()
				if !r.get(name, u).ok() && r.skipped[name] {
					cells[j] = "skipped"
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", label, u, strings.Join(cells, " | "))
		}
	}
}

// target is one of the ratio targets.
type target struct {
	id, bench, unit string
	lowerBetter     bool
	haraqa, peer    string
	want            float64 // the speed-up wanted; 0: only "better" (> 1)
}

var targets = []target{
	{"W1", "W1W2/%s/W1-produce", "msgs/s", false, "haraqa-tcp", "nats", 20},
	{"W1", "W1W2/%s/W1-produce", "msgs/s", false, "haraqa-tcp", "redis", 8},
	{"W1", "W1W2/%s/W1-produce", "msgs/s", false, "haraqa-proc-tcp", "redis", 8},
	{"W2", "W1W2/%s/W2-consume", "msgs/s", false, "haraqa-tcp", "nats", 10},
	{"W2", "W1W2/%s/W2-consume", "msgs/s", false, "haraqa-tcp", "redis", 4},
	{"W2", "W1W2/%s/W2-consume", "msgs/s", false, "haraqa-proc-tcp", "redis", 4},
	{"W3 produce", "W3/%s/produce", "MB/s", false, "haraqa-tcp", "nats", 2},
	{"W3 consume", "W3/%s/consume", "MB/s", false, "haraqa-tcp", "nats", 2},
	{"W4", "W4/%s", "p50-µs", true, "haraqa-tcp", "nats", 0},
	{"W4", "W4/%s", "p50-µs", true, "haraqa-tcp", "redis", 0},
	{"W4", "W4/%s", "p50-µs", true, "haraqa-proc-tcp", "redis", 0},
	{"W5", "W5/%s", "msgs/s", false, "haraqa-tcp", "nats", 100},
	{"W5", "W5/%s", "msgs/s", false, "haraqa-tcp", "redis", 5},
	{"W5", "W5/%s", "msgs/s", false, "haraqa-proc-tcp", "redis", 5},
	{"W6", "W6/%s", "p99-µs", true, "haraqa-tcp", "nats", 0},
	{"W7 4 members", "W7/%s/4-members", "msgs/s", false, "haraqa-tcp", "nats", 10},
	{"W7 4 members", "W7/%s/4-members", "msgs/s", false, "haraqa-tcp", "redis", 3},
	{"W7 4 members", "W7/%s/4-members", "msgs/s", false, "haraqa-proc-tcp", "redis", 3},
	// The broker as a process (what users run).
	{"W3 produce", "W3/%s/produce", "MB/s", false, "haraqa-proc-tcp", "nats", 2},
	{"W3 consume", "W3/%s/consume", "MB/s", false, "haraqa-proc-tcp", "nats", 2},
	{"W4", "W4/%s", "p99-µs", true, "haraqa-proc-tcp", "redis", 0},
	{"W4", "W4/%s", "p99-µs", true, "haraqa-proc-tcp", "nats", 0},
	{"W4D", "W4D/%s", "p50-µs", true, "haraqa-proc-tcp", "redis", 0},
	{"W4D", "W4D/%s", "p50-µs", true, "haraqa-proc-tcp", "nats", 0},
	{"W6", "W6/%s", "p50-µs", true, "haraqa-proc-tcp", "redis", 0},
	{"W6", "W6/%s", "p99-µs", true, "haraqa-proc-tcp", "redis", 0},
	{"W6", "W6/%s", "p50-µs", true, "haraqa-proc-tcp", "nats", 0},
	{"W6", "W6/%s", "p99-µs", true, "haraqa-proc-tcp", "nats", 0},
}

func (r *results) ratioTable(w io.Writer) {
	fmt.Fprintln(w, "| target | haraqa | peer | haraqa | peer | speed-up (median, range) | wanted | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, t := range targets {
		h, p := r.get(fmt.Sprintf(t.bench, t.haraqa), t.unit), r.get(fmt.Sprintf(t.bench, t.peer), t.unit)
		if !h.ok() || !p.ok() {
			fmt.Fprintf(w, "| %s %s | %s | %s | %s | %s | not measured | | |\n", t.id, t.unit, t.haraqa, t.peer, h.cell(), p.cell())
			continue
		}
		// speed-up > 1 means haraqa is better; its range pairs the worst
		// and best runs of each side.
		up, lo, hi := h.med/p.med, h.lo/p.hi, h.hi/p.lo
		if t.lowerBetter {
			up, lo, hi = p.med/h.med, p.lo/h.hi, p.hi/h.lo
		}
		want, met := "> 1×", up > 1
		if t.want > 0 {
			want, met = fmt.Sprintf("≥ %g×", t.want), up >= t.want
		}
		verdict := "**missed**"
		if met {
			verdict = "met"
		}
		fmt.Fprintf(w, "| %s %s | %s | %s | %s | %s | %s× (%s–%s) | %s | %s |\n", t.id, t.unit, t.haraqa, t.peer,
			num(h.med), num(p.med), num(up), num(lo), num(hi), want, verdict)
	}
}

var limits = []struct{ name, unit, what string }{
	{"tcp-stream", "MB/s", "loopback TCP, 1 MiB writes"},
	{"unix-stream", "MB/s", "Unix socket, 1 MiB writes"},
	{"sendfile-tcp", "MB/s", "sendfile of a page-cached file over loopback TCP"},
	{"mapwrite-tcp", "MB/s", "a page-cached file's mapping over loopback TCP in 16 MiB writes (how the broker sends consume responses)"},
	{"tcp-verify-pagecache", "MB/s", "1 MiB messages over loopback TCP, hashed by the sender, hashed again and written to the page cache by the receiver (W3 produce's least work)"},
	{"tcp-verify-both", "MB/s", "a page-cached file's mapping over loopback TCP in 16 MiB writes, every 1 MiB hashed by the sender and again by the receiver (W3 consume's least work)"},
	{"memcpy", "MB/s", "memcpy of 64 MiB buffers"},
	{"seqwrite-pagecache", "MB/s", "sequential 1 MiB writes, no sync (page cache)"},
	{"seqwrite-pagecache-w3", "MB/s", "the same, W3's 2,000 MiB into one file"},
	{"seqwrite-fdatasync", "MB/s", "sequential 1 MiB writes + fdatasync"},
	{"append4k-fdatasync", "p50-µs", "4 KiB append + fdatasync, latency"},
	{"append4k-fdatasync", "p99-µs", ""},
	{"append4k-fdatasync", "syncs/s", ""},
	{"overwrite4k-fdatasync", "p50-µs", "4 KiB write over synced zeros + fdatasync, latency (no file size to commit)"},
	{"overwrite4k-fdatasync", "p99-µs", ""},
	{"tcp-rtt", "p50-µs", "100 B round trip, loopback TCP"},
	{"tcp-rtt", "p99-µs", ""},
	{"unix-rtt", "p50-µs", "100 B round trip, Unix socket"},
	{"unix-rtt", "p99-µs", ""},
	{"tcp-rtt-proc", "p50-µs", "100 B round trip, loopback TCP, to a Go echo process"},
	{"tcp-rtt-proc", "p99-µs", ""},
	{"unix-rtt-proc", "p50-µs", "100 B round trip, Unix socket, to a Go echo process"},
	{"unix-rtt-proc", "p99-µs", ""},
}

func (r *results) limitTable(w io.Writer) {
	fmt.Fprintln(w, "| limit | what | metric | median (range) |\n|---|---|---|---|")
	for _, l := range limits {
		name := l.name
		if l.what == "" {
			name = ""
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, l.what, l.unit, r.get("Limit/"+l.name, l.unit).cell())
	}
}

// fraction relates a haraqa figure to the machine limit that bounds it.
type fraction struct {
	id, bench, unit, limit, limitUnit string
	lowerBetter                       bool
}

func fractions(sys string) []fraction {
	stream, rtt, send := "tcp-stream", "tcp-rtt", "sendfile-tcp"
	if strings.HasSuffix(sys, "unix") {
		stream, rtt, send = "unix-stream", "unix-rtt", "unix-stream"
	}
	if strings.Contains(sys, "-proc-") {
		rtt += "-proc"
	}
	return []fraction{
		{"W1", "W1W2/%s/W1-produce", "MB/s", stream, "MB/s", false},
		{"W2", "W1W2/%s/W2-consume", "MB/s", send, "MB/s", false},
		{"W3 produce", "W3/%s/produce", "MB/s", stream, "MB/s", false},
		{"W3 produce", "W3/%s/produce", "MB/s", "seqwrite-pagecache", "MB/s", false},
		{"W3 produce", "W3/%s/produce", "MB/s", "seqwrite-pagecache-w3", "MB/s", false},
		{"W3 produce", "W3/%s/produce", "MB/s", "tcp-verify-pagecache", "MB/s", false},
		{"W3 consume", "W3/%s/consume", "MB/s", send, "MB/s", false},
		{"W3 consume", "W3/%s/consume", "MB/s", "mapwrite-tcp", "MB/s", false},
		{"W3 consume", "W3/%s/consume", "MB/s", "tcp-verify-both", "MB/s", false},
		{"W4", "W4/%s", "p50-µs", rtt, "p50-µs", true},
		{"W4D", "W4D/%s", "p50-µs", "append4k-fdatasync", "p50-µs", true},
		{"W5", "W5/%s", "MB/s", "seqwrite-fdatasync", "MB/s", false},
		{"W6", "W6/%s", "p50-µs", rtt, "p50-µs", true},
	}
}

// fraction is sys's median of f as a fraction of its limit's median
// (latency: limit ÷ haraqa); false if either was not measured.
func (r *results) fraction(f fraction, sys string) (float64, bool) {
	if (strings.HasPrefix(f.limit, "tcp-verify-") || f.limit == "mapwrite-tcp") && !strings.HasSuffix(sys, "-tcp") {
		return 0, false // a TCP floor: no Unix socket counterpart measured
	}
	h, l := r.get(fmt.Sprintf(f.bench, sys), f.unit), r.get("Limit/"+f.limit, f.limitUnit)
	if !h.ok() || !l.ok() {
		return 0, false
	}
	if f.lowerBetter {
		return l.med / h.med, true
	}
	return h.med / l.med, true
}

func (r *results) fractionTable(w io.Writer) {
	haraqas := systems[:4]
	fmt.Fprintf(w, "| figure | limit | %s |\n|---|---|%s\n", strings.Join(haraqas, " | "), strings.Repeat("---|", len(haraqas)))
	for i := range fractions("tcp") {
		var label string
		cells := make([]string, len(haraqas))
		for j, sys := range haraqas {
			f := fractions(sys)[i]
			if j == 0 {
				label = fmt.Sprintf("| %s %s | %s", f.id, f.unit, f.limit)
			} else if !strings.Contains(label, f.limit) {
				label += " / " + f.limit
			}
			v, ok := r.fraction(f, sys)
			if !ok {
				cells[j] = "–"
				continue
			}
			cells[j] = fmt.Sprintf("%.0f%%", 100*v)
		}
		fmt.Fprintf(w, "%s | %s |\n", label, strings.Join(cells, " | "))
	}
}

func main() {
	raw := flag.String("raw", "", "go test -bench output")
	bstat := flag.String("benchstat", "", "benchstat output to append (optional)")
	header := flag.String("header", "", "markdown to put first (optional)")
	charts := flag.String("charts", "", "also write the charts (SVG and PNG) into this directory (optional)")
	var info chartInfo
	flag.StringVar(&info.date, "date", "", "date of the run, for the charts' titles")
	flag.StringVar(&info.machine, "machine", "", "the machine, for the charts' titles")
	flag.StringVar(&info.commit, "commit", "", "haraqa's commit, for the charts' titles")
	flag.Parse()
	f, err := os.Open(*raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if *charts != "" {
		if _, err := r.writeCharts(*charts, info); err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if *header != "" {
		h, err := os.ReadFile(*header)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
		w.Write(h)
	}
	fmt.Fprint(w, "## Workloads: median (min–max) over the runs\n\n")
	r.mainTable(w)
	fmt.Fprint(w, "\n## Targets: haraqa / peer (medians; speed-up > 1 means haraqa is better)\n\n")
	r.ratioTable(w)
	fmt.Fprint(w, "\n## Machine limits\n\n")
	r.limitTable(w)
	fmt.Fprint(w, "\n## haraqa as a fraction of the machine limit (medians; latency: limit ÷ haraqa)\n\n")
	r.fractionTable(w)
	if *bstat != "" {
		s, err := os.ReadFile(*bstat)
		if err == nil && len(s) > 0 {
			fmt.Fprintf(w, "\n## benchstat\n\n<details><summary>benchstat of the same runs</summary>\n\n```\n%s```\n\n</details>\n", s)
		}
	}
}
