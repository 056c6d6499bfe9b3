package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkMetricsCost: what the HTTP listener costs the write path. W1
// (100-byte messages in batches of 1,000, 4 in flight, relaxed
// durability) against two broker processes of the same build, one with
// -http ” and one with -http on and /metrics and the status page fetched
// every second while it is measured. Rounds alternate between the two
// (and which goes first), so that load on the shared machine falls on
// both alike; each round produces metricsMsgs messages into a new topic and
// checks the count. Reported: the median msgs/s of each and on/off, the
// ratio of the medians. The last scrape must show the round's exact count.
func BenchmarkMetricsCost(b *testing.B) {
	rounds, msgs := 7, 5_000_000
	if testing.Short() {
		rounds, msgs = 1, 3_000
	}
	p, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	port := "127.0.0.1:" + strconv.Itoa(p)
	off := startProcess(b, "tcp", relaxed)
	on := startProcess(b, "tcp", relaxed, "-http", port)
	g := newGen(100)
	var offRates, onRates []float64
	var offCPU, onCPU time.Duration // the broker processes' CPU time in the rounds
	for b.Loop() {
		for r := range rounds {
			first, second := false, true // with -http second on even rounds
			if r%2 == 1 {
				first, second = true, false
			}
			for _, withHTTP := range []bool{first, second} {
				br := off
				if withHTTP {
					br = on
				}
				cpu0 := procCPU(b, br.pid)
				rate := metricsRound(b, br, g, msgs, withHTTP, "http://"+port)
				cpu := procCPU(b, br.pid) - cpu0
				if withHTTP {
					onRates, onCPU = append(onRates, rate), onCPU+cpu
				} else {
					offRates, offCPU = append(offRates, rate), offCPU+cpu
				}
			}
		}
	}
	mOff, mOn := medianOf(offRates), medianOf(onRates)
	b.ReportMetric(mOff, "off-msgs/s")
	b.ReportMetric(mOn, "on-msgs/s")
	b.ReportMetric(mOn/mOff, "on/off")
	// Each round's two measurements ran back to back: their ratio leaves
	// out load that drifts over the run.
	paired := make([]float64, len(onRates))
	for i := range onRates {
		paired[i] = onRates[i] / offRates[i]
	}
	b.ReportMetric(medianOf(paired), "paired-on/off")
	// CPU per message is what the listener costs whatever else the
	// machine runs (its wall-clock rate is what that load leaves).
	perM := func(d time.Duration) float64 { return d.Seconds() / float64(rounds*msgs*b.N) * 1e6 }
	b.ReportMetric(perM(offCPU), "off-cpu-s/Mmsg")
	b.ReportMetric(perM(onCPU), "on-cpu-s/Mmsg")
	if offCPU > 0 {
		b.ReportMetric(float64(onCPU)/float64(offCPU), "cpu-on/off")
	}
	// What one scrape (/metrics and /) costs the idle broker: CPU time
	// over 50 of them, with the topics of the rounds deleted.
	cpu0 := procCPU(b, on.pid)
	for range 50 {
		fetchHTTP(b, "http://"+port+"/metrics")
		fetchHTTP(b, "http://"+port+"/")
	}
	b.ReportMetric(float64(procCPU(b, on.pid)-cpu0)/float64(time.Millisecond)/50, "scrape-cpu-ms")
	b.Logf("W1 msgs/s, -http off: %s", millions(offRates))
	b.Logf("W1 msgs/s, -http on, scraped every second: %s", millions(onRates))
}

// metricsRound produces msgs messages into a new topic of br and returns
// the rate; with scrape, /metrics and / are fetched at the start and every
// second until the produce is done, and /metrics must then count msgs.
func metricsRound(b *testing.B, br *haraqaBroker, g *gen, msgs int, scrape bool, base string) float64 {
	b.Helper()
	ctx := workCtx(b)
	s := dial(b, br)
	topic := fmt.Sprintf("metrics-%d", time.Now().UnixNano())
	if err := s.CreateTopic(ctx, topic); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	scraped := make(chan int)
	if scrape {
		go func() {
			n := 0
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				fetchHTTP(b, base+"/metrics")
				fetchHTTP(b, base+"/")
				n++
				select {
				case <-done:
					scraped <- n
					return
				case <-t.C:
				}
			}
		}()
	}
	start := time.Now()
	err := s.Produce(ctx, topic, &idSource{max: uint64(msgs)}, 100, depth, g)
	d := time.Since(start)
	close(done)
	if err != nil {
		b.Fatal(err)
	}
	if scrape {
		<-scraped
		series := fmt.Sprintf("haraqa_produced_messages_total{topic=%q} ", topic)
		body := fetchHTTP(b, base+"/metrics")
		_, rest, ok := strings.Cut(body, "\n"+series)
		v, _, _ := strings.Cut(rest, "\n")
		if got, err := strconv.ParseFloat(v, 64); !ok || err != nil || got != float64(msgs) {
			b.Fatalf("/metrics: %s%q, want %d", series, v, msgs)
		}
	}
	if n, err := s.Len(ctx, topic); err != nil || n != msgs {
		b.Fatalf("topic %s holds %d messages (%v), want %d", topic, n, err, msgs)
	}
	if err := s.DeleteTopic(ctx, topic); err != nil {
		b.Fatal(err)
	}
	return float64(msgs) / d.Seconds()
}

func fetchHTTP(b *testing.B, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		b.Error(err)
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Errorf("%s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// procCPU returns the user and system CPU time process pid has used
// (/proc/PID/stat; clock ticks of 10ms).
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	_, after, _ := strings.Cut(string(st), ") ")
	f := strings.Fields(after)
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, st)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, st)
	}
	return time.Duration(ut+stime) * 10 * time.Millisecond
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func millions(v []float64) string {
	var out []string
	for _, r := range v {
		out = append(out, strconv.FormatFloat(r/1e6, 'f', 2, 64)+"M")
	}
	return strings.Join(out, " ")
}
