package httpapi

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
)

// maxRegexp bounds a topics regexp, as the native protocol does.
const maxRegexp = 1024

// listTopics handles GET /topics?prefix=&regex=.
func (a *API) listTopics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var re *regexp.Regexp
	if expr := q.Get("regex"); expr != "" {
		if len(expr) > maxRegexp {
			badRequest(w, "regex longer than 1024 bytes")
			return
		}
		var err error
		if re, err = regexp.Compile(expr); err != nil {
			badRequest(w, "bad regex: "+err.Error())
			return
		}
	}
	names := []string{}
	for _, n := range a.svc.Topics(q.Get("prefix")) {
		if (re == nil || re.MatchString(n)) && a.mayList(r, n) {
			names = append(names, n)
		}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"topics": names})
}

// topicInfo is what describe answers.
type topicInfo struct {
	Topic    string `json:"topic"`
	Start    uint64 `json:"start"`
	End      uint64 `json:"end"`
	Segments *int   `json:"segments,omitempty"`
	Bytes    *int64 `json:"bytes,omitempty"`
	ReadOnly string `json:"read_only,omitempty"`
}

// describer is the engine's Describe; a log service without it answers
// describe with the offsets alone.
type describer interface {
	Describe(name string) (engine.TopicInfo, error)
}

// describeTopic handles GET /topics/{topic}.
func (a *API) describeTopic(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if d, ok := a.svc.(describer); ok {
		ti, err := d.Describe(topic)
		if err != nil {
			a.failErr(w, err)
			return
		}
		info := topicInfo{Topic: topic, Start: ti.Start, End: ti.End, Segments: &ti.Segments, Bytes: &ti.Bytes}
		if ti.ReadOnly != nil {
			info.ReadOnly = ti.ReadOnly.Error()
		}
		writeJSON(w, http.StatusOK, info)
		return
	}
	start, end, err := logsvc.LatestOffsets(a.svc, topic)
	if err != nil {
		a.failErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, topicInfo{Topic: topic, Start: start, End: end})
}

// createTopic handles PUT /topics/{topic}: 201 created, 409 when it
// exists.
func (a *API) createTopic(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := a.svc.CreateTopic(topic); err != nil {
		a.failErr(w, err)
		return
	}
	a.opts.Logger.Info("topic created", "topic", topic, "remote", r.RemoteAddr, "by", "HTTP")
	writeJSON(w, http.StatusCreated, map[string]string{"topic": topic})
}

// deleteTopic handles DELETE /topics/{topic}.
func (a *API) deleteTopic(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := a.svc.DeleteTopic(topic); err != nil {
		a.failErr(w, err)
		return
	}
	a.opts.Logger.Info("topic deleted", "topic", topic, "remote", r.RemoteAddr, "by", "HTTP")
	w.WriteHeader(http.StatusNoContent)
}

// offsetsInfo is what offsets answers.
type offsetsInfo struct {
	Topic  string  `json:"topic"`
	Start  uint64  `json:"start"`
	End    uint64  `json:"end"`
	AtTime *uint64 `json:"at_time,omitempty"`
}

// offsets handles GET /topics/{topic}/offsets[?time=]: the valid range
// and, with time, the first offset appended at or after it.
func (a *API) offsets(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	start, end, err := logsvc.LatestOffsets(a.svc, topic)
	if err != nil {
		a.failErr(w, err)
		return
	}
	info := offsetsInfo{Topic: topic, Start: start, End: end}
	if s := r.URL.Query().Get("time"); s != "" {
		tm, err := parseTime(s)
		if err != nil {
			badRequest(w, "time: "+err.Error())
			return
		}
		at, err := a.svc.OffsetAt(topic, tm)
		if err != nil {
			a.failErr(w, err)
			return
		}
		info.AtTime = &at
	}
	writeJSON(w, http.StatusOK, info)
}

// truncate handles POST /topics/{topic}/truncate?before_offset=&before_time=:
// whole segments below the cut go; the later of the two cuts wins.
func (a *API) truncate(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	q := r.URL.Query()
	var off uint64
	bo, bt := q.Get("before_offset"), q.Get("before_time")
	if bo == "" && bt == "" {
		badRequest(w, "want before_offset or before_time")
		return
	}
	if bo != "" {
		var err error
		if off, err = strconv.ParseUint(bo, 10, 64); err != nil {
			badRequest(w, "before_offset: want an unsigned integer")
			return
		}
	}
	if bt != "" {
		tm, err := parseTime(bt)
		if err != nil {
			badRequest(w, "before_time: "+err.Error())
			return
		}
		at, err := a.svc.OffsetAt(topic, tm)
		if err != nil {
			a.failErr(w, err)
			return
		}
		off = max(off, at)
	}
	start, err := a.svc.TruncateBefore(r.Context(), topic, off)
	if err != nil {
		a.failErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"topic": topic, "start": start})
}
