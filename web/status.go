package web

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/haraqa/haraqa/metrics"
)

// StatusOptions configures the status page.
type StatusOptions struct {
	Version string
	// Snapshot returns the broker's state (metrics.Metrics.Snapshot).
	Snapshot func() metrics.Snapshot
	// Ready are the readiness checks shown at the top.
	Ready []Check
	// Refresh is how often the page reloads itself (default 5s).
	Refresh time.Duration
	// MaxTopics caps the topic rows shown (default 500); the page says how
	// many more there are.
	MaxTopics int
}

// StatusPage is the human status page at /: server-rendered HTML with no
// external assets and no JavaScript, which reloads itself.
type StatusPage struct {
	opts  StatusOptions
	start time.Time
	rates rateSampler
}

// NewStatusPage returns the status page handler. Rates are computed
// between the page's renders, at least minRateWindow apart; the first
// sample is taken now.
func NewStatusPage(o StatusOptions) *StatusPage {
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.MaxTopics <= 0 {
		o.MaxTopics = 500
	}
	p := &StatusPage{opts: o, start: time.Now()}
	p.rates.sample(o.Snapshot())
	return p
}

// minRateWindow is the shortest time rates are computed over.
const minRateWindow = 2 * time.Second

// rateSampler keeps the per-topic counts of the last sample, and the rates
// computed at the last one taken at least minRateWindow after the one
// before, so that renders close together show the same rates.
type rateSampler struct {
	mu    sync.Mutex
	at    time.Time
	prod  map[string]int64
	cons  map[string]int64
	rates map[string][2]float64 // topic → produced, consumed messages per second
}

func (r *rateSampler) sample(s metrics.Snapshot) map[string][2]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := s.Taken.Sub(r.at)
	if r.prod != nil && dt < minRateWindow {
		return r.rates
	}
	prod, cons := make(map[string]int64, len(s.Topics)), make(map[string]int64, len(s.Topics))
	rates := make(map[string][2]float64, len(s.Topics))
	for _, t := range s.Topics {
		prod[t.Name], cons[t.Name] = t.AppendedMessages, t.ReadMessages
		// A topic missing from the last sample is new since: its counts
		// started at 0 within the window.
		if p := r.prod[t.Name]; r.prod != nil && dt > 0 {
			rates[t.Name] = [2]float64{float64(max(t.AppendedMessages-p, 0)) / dt.Seconds(),
				float64(max(t.ReadMessages-r.cons[t.Name], 0)) / dt.Seconds()}
		}
	}
	if r.prod != nil {
		r.rates = rates
	}
	r.at, r.prod, r.cons = s.Taken, prod, cons
	return r.rates
}

// statusView is what the template renders.
type statusView struct {
	Version, Uptime, Refresh string
	RefreshSeconds           int
	Now                      string
	Open                     bool
	Ready                    []Reason // failed checks; empty when ready
	Conns                    int
	Topics                   []topicRow
	MoreTopics               int
	TotalTopics              int
	Volumes                  []volumeRow
	Groups                   []groupRow
	Counters                 []counterRow
}

type topicRow struct {
	Name, Start, End, Messages, Size, Segments, ProduceRate, ConsumeRate, ReadOnly string
}

type volumeRow struct{ Dir, ID, State, Reason string }

type groupRow struct{ Topic, Name, Committed, Lag, InFlight, Members, Redeliveries, DeadLettered string }

type counterRow struct{ Name, Value string }

func (p *StatusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := p.opts.Snapshot()
	rates := p.rates.sample(s)
	v := statusView{
		Version: p.opts.Version, Uptime: uptime(time.Since(p.start)),
		RefreshSeconds: int(p.opts.Refresh / time.Second), Refresh: p.opts.Refresh.String(),
		Now: s.Taken.UTC().Format("2006-01-02 15:04:05 UTC"), Open: s.Open, Conns: s.Conns,
		TotalTopics: len(s.Topics),
	}
	for _, c := range p.opts.Ready {
		if err := c.Check(); err != nil {
			v.Ready = append(v.Ready, Reason{Check: c.Name, Error: err.Error()})
		}
	}
	for i, t := range s.Topics {
		if i == p.opts.MaxTopics {
			v.MoreTopics = len(s.Topics) - i
			break
		}
		row := topicRow{Name: t.Name, Start: num(t.Start), End: num(t.End), Messages: num(t.End - t.Start),
			Size: size(t.Bytes), Segments: strconv.Itoa(t.Segments), ProduceRate: "–", ConsumeRate: "–"}
		if rt, ok := rates[t.Name]; ok {
			row.ProduceRate, row.ConsumeRate = rate(rt[0]), rate(rt[1])
		}
		if t.ReadOnly != nil {
			row.ReadOnly = t.ReadOnly.Error()
		}
		v.Topics = append(v.Topics, row)
	}
	for _, vol := range s.Stats.Volumes {
		v.Volumes = append(v.Volumes, volumeRow{Dir: vol.Dir, ID: vol.ID, State: vol.State.String(), Reason: vol.Reason})
	}
	for _, g := range s.Groups {
		v.Groups = append(v.Groups, groupRow{Topic: g.Topic, Name: g.Name, Committed: num(g.Committed), Lag: num(g.Lag),
			InFlight: num(g.InFlight), Members: strconv.Itoa(len(g.Members)), Redeliveries: num(g.Redeliveries),
			DeadLettered: num(g.DeadLettered)})
	}
	st := s.Stats
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"corruptions found", st.CorruptionsFound}, {"segments repaired", st.SegmentsRepaired},
		{"bytes repaired", st.BytesRepaired}, {"torn bytes cut at open", st.TornBytes},
		{"reads failed over to a mirror", st.ReadFailovers}, {"volumes fenced", st.VolumesFenced},
		{"scrub passes", st.ScrubPasses}, {"bytes scrubbed", st.ScrubBytes},
		{"idempotent duplicates", st.Duplicates}, {"resource errors", st.ResourceErrors},
		{"open segment files", st.OpenFiles}, {"open mappings", st.OpenMappings},
	} {
		v.Counters = append(v.Counters, counterRow{Name: c.name, Value: num(uint64(max(c.v, 0)))})
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, v); err != nil {
		http.Error(w, "web: status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// num writes n with a comma every three digits: 1,234,567.
func num(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, u := float64(n), 0
	for f >= unit && u < 5 {
		f /= unit
		u++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}[u]
}

func rate(r float64) string {
	switch {
	case r == 0:
		return "0/s"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64) + "/s"
	}
	return num(uint64(r+0.5)) + "/s"
}

func uptime(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	if days > 0 {
		return strconv.Itoa(int(days)) + "d " + d.String()
	}
	return d.String()
}
