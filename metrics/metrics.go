package metrics

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/netproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OtherTopics is the topic label of the series that sums the topics past
// Options.MaxTopics.
const OtherTopics = "_other_"

// DefaultMaxTopics is the topic-label cap when Options.MaxTopics is 0.
const DefaultMaxTopics = 1000

// Options configures Metrics. The zero value works.
type Options struct {
	// MaxTopics caps the topics with series of their own (default
	// DefaultMaxTopics; negative: none, every topic in "_other_").
	MaxTopics int
	// Version is exported as haraqa_build_info{version}.
	Version string
}

// Sources are what Metrics reads at scrape time. Any may be nil.
type Sources struct {
	Engine *engine.Engine
	// Conns returns the open protocol connections.
	Conns func() int
	// Groups lists consumer groups (lag, in flight).
	Groups logsvc.Groups
}

// Metrics holds the broker's Prometheus registry and its hot-path
// histograms. It implements engine.Observer and server.RequestObserver.
type Metrics struct {
	opts Options
	reg  *prometheus.Registry
	src  atomic.Pointer[Sources]

	requests     *prometheus.HistogramVec
	byOp         [256]prometheus.Observer // requests' child per opcode, resolved once
	fsync        prometheus.Histogram
	groupBatches prometheus.Histogram
	groupBytes   prometheus.Histogram

	labelMu sync.Mutex
	named   map[string]bool // topics with series of their own; guarded by labelMu
}

// New returns Metrics with its collectors registered.
func New(o Options) *Metrics {
	if o.MaxTopics == 0 {
		o.MaxTopics = DefaultMaxTopics
	}
	m := &Metrics{opts: o, reg: prometheus.NewRegistry(), named: map[string]bool{}}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "haraqa_request_duration_seconds",
		Help:    "Protocol requests from frame read to response written, by operation (a consume's long-poll wait included; Hello and Watch not observed).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"op"})
	other := m.requests.WithLabelValues("other")
	for i := range m.byOp {
		op := netproto.Opcode(i)
		if op.Valid() && op != netproto.OpHello && op != netproto.OpWatch && op != netproto.OpWatchEvent {
			m.byOp[i] = m.requests.WithLabelValues(op.String())
		} else {
			m.byOp[i] = other
		}
	}
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "haraqa_fsync_duration_seconds",
		Help:    "fdatasync of a segment log on the write path, per volume.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	})
	m.groupBatches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "haraqa_group_commit_batches",
		Help:    "Record batches written together by one group commit (one write and one sync per volume).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024, the group bound
	})
	m.groupBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "haraqa_group_commit_bytes",
		Help:    "Bytes written together by one group commit.",
		Buckets: prometheus.ExponentialBuckets(256, 4, 10), // 256 B to 64 MiB
	})
	m.reg.MustRegister(m.requests, m.fsync, m.groupBatches, m.groupBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		(*stateCollector)(m))
	return m
}

// Registry is where other front ends register their metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Attach sets what the scrape-time collectors read; until then they
// export nothing of the broker (the histograms and process metrics still).
func (m *Metrics) Attach(s Sources) { m.src.Store(&s) }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4, // scrapes walk every topic: a few at once
		Timeout:             30 * time.Second,
	})
}

// ObserveRequest implements server.RequestObserver.
func (m *Metrics) ObserveRequest(op netproto.Opcode, d time.Duration) {
	m.byOp[op].Observe(d.Seconds())
}

// ObserveSync implements engine.Observer.
func (m *Metrics) ObserveSync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// ObserveGroup implements engine.Observer.
func (m *Metrics) ObserveGroup(batches, bytes int) {
	m.groupBatches.Observe(float64(batches))
	m.groupBytes.Observe(float64(bytes))
}

// Snapshot is the broker's state at one moment, for the scrape and the
// status page.
type Snapshot struct {
	Taken  time.Time
	Open   bool               // the engine is attached
	Topics []engine.TopicInfo // sorted by name
	Groups []engine.GroupInfo // by topic, then name
	Stats  engine.Stats       // counters and volumes
	Conns  int                // open protocol connections
}

// Snapshot reads the sources.
func (m *Metrics) Snapshot() Snapshot {
	s := Snapshot{Taken: time.Now()}
	src := m.src.Load()
	if src == nil {
		return s
	}
	if src.Conns != nil {
		s.Conns = src.Conns()
	}
	e := src.Engine
	if e == nil {
		return s
	}
	s.Open = true
	s.Stats = e.Stats()
	names := e.Topics("")
	s.Topics = make([]engine.TopicInfo, 0, len(names))
	for _, n := range names {
		ti, err := e.Describe(n)
		if err != nil {
			continue // deleted meanwhile
		}
		s.Topics = append(s.Topics, ti)
		if src.Groups != nil {
			gs, err := src.Groups.ListGroups(n)
			if err == nil {
				s.Groups = append(s.Groups, gs...)
			}
		}
	}
	sort.Slice(s.Topics, func(i, j int) bool { return s.Topics[i].Name < s.Topics[j].Name })
	return s
}

// labels returns the topic label of each name: its own for the first
// MaxTopics topics seen (kept while the topic exists), OtherTopics for the
// rest. names must be sorted.
func (m *Metrics) labels(names []string) func(string) string {
	m.labelMu.Lock()
	defer m.labelMu.Unlock()
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
	}
	for n := range m.named {
		if !present[n] {
			delete(m.named, n)
		}
	}
	for _, n := range names {
		if len(m.named) >= m.opts.MaxTopics {
			break
		}
		if n != OtherTopics { // a topic of that name is summed in, never its own series
			m.named[n] = true
		}
	}
	named := make(map[string]bool, len(m.named))
	for n := range m.named {
		named[n] = true
	}
	return func(n string) string {
		if named[n] {
			return n
		}
		return OtherTopics
	}
}
