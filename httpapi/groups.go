package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
)

// Consumer groups over HTTP: the same calls as the native protocol
// (logsvc.Groups). A client joins once (POST .../members) and names its
// member id and epoch on fetch, ack, nack and extend; a member silent for
// the group's ack wait is dropped, as on the native protocol.

// groupsOf returns the service's groups, or answers 501 when it has none.
func (a *API) groupsOf(w http.ResponseWriter) logsvc.Groups {
	g, ok := a.svc.(logsvc.Groups)
	if !ok {
		fail(w, http.StatusNotImplemented, apiError{Error: "this broker's log service has no consumer groups"})
		return nil
	}
	return g
}

// groupConfig is the JSON body of a group create.
type groupConfig struct {
	Exclusive       bool   `json:"exclusive"`
	AckWait         string `json:"ack_wait"`
	MaxDeliveries   int    `json:"max_deliveries"`
	DeadLetterTopic string `json:"dead_letter_topic"`
	// Start: "earliest" (default), "latest", an offset, or an RFC 3339 time.
	Start string `json:"start"`
}

// maxSmallBody bounds the JSON bodies of group calls.
const maxSmallBody = 1 << 20

// readSmallJSON decodes an optional JSON body into v.
func readSmallJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSmallBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxSmallBody {
		return errors.New("body over 1 MiB")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func (c *groupConfig) engine() (engine.GroupConfig, error) {
	cfg := engine.GroupConfig{Exclusive: c.Exclusive, MaxDeliveries: c.MaxDeliveries, DeadLetterTopic: c.DeadLetterTopic}
	if c.AckWait != "" {
		d, err := time.ParseDuration(c.AckWait)
		if err != nil {
			return cfg, fmt.Errorf("ack_wait: %v", err)
		}
		cfg.AckWait = d
	}
	switch s := c.Start; {
	case s == "" || s == "earliest":
		cfg.Start.Kind = engine.StartEarliest
	case s == "latest":
		cfg.Start.Kind = engine.StartLatest
	default:
		if off, err := strconv.ParseUint(s, 10, 64); err == nil {
			cfg.Start = engine.StartPosition{Kind: engine.StartOffset, Offset: off}
			break
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return cfg, errors.New("start: want earliest, latest, an offset or an RFC 3339 time")
		}
		cfg.Start = engine.StartPosition{Kind: engine.StartTime, Time: tm}
	}
	return cfg, nil
}

// createGroup handles PUT /topics/{topic}/groups/{group}: 201 created,
// 200 when it exists with the same configuration, 409 with another.
func (a *API) createGroup(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	var gc groupConfig
	if err := readSmallJSON(r, &gc); err != nil {
		badRequest(w, "group configuration: "+err.Error())
		return
	}
	cfg, err := gc.engine()
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if cfg.DeadLetterTopic != "" && a.opts.Auth != nil {
		// The broker writes into the dead-letter topic for the group:
		// the client must be allowed to produce there (as natively).
		p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
		if err := a.opts.Auth.Authorize(p, auth.Produce, cfg.DeadLetterTopic); err != nil {
			fail(w, http.StatusForbidden, apiError{Error: "unauthorized: dead-letter topic: " + err.Error()})
			return
		}
	}
	topic, group := r.PathValue("topic"), r.PathValue("group")
	created, err := g.CreateGroup(r.Context(), topic, group, cfg)
	if err != nil {
		a.failErr(w, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]any{"topic": topic, "group": group, "created": created})
}

// groupJSON is a group's description.
type groupJSON struct {
	Topic         string       `json:"topic"`
	Group         string       `json:"group"`
	Exclusive     bool         `json:"exclusive"`
	AckWait       string       `json:"ack_wait"`
	MaxDeliveries int          `json:"max_deliveries,omitempty"`
	DeadLetter    string       `json:"dead_letter_topic,omitempty"`
	Epoch         uint64       `json:"epoch"`
	Committed     uint64       `json:"committed"`
	AckedAbove    uint64       `json:"acked_above"`
	Start         uint64       `json:"start"`
	End           uint64       `json:"end"`
	Lag           uint64       `json:"lag"`
	InFlight      uint64       `json:"in_flight"`
	Delivered     uint64       `json:"delivered"`
	Redeliveries  uint64       `json:"redeliveries"`
	Expired       uint64       `json:"expired"`
	DeadLettered  uint64       `json:"dead_lettered"`
	Skipped       uint64       `json:"skipped"`
	Members       []memberJSON `json:"members"`
}

type memberJSON struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	InFlight uint64    `json:"in_flight"`
	LastSeen time.Time `json:"last_seen"`
	Holder   bool      `json:"holder,omitempty"`
}

func describeJSON(gi engine.GroupInfo) groupJSON {
	out := groupJSON{Topic: gi.Topic, Group: gi.Name, Exclusive: gi.Config.Exclusive, AckWait: gi.Config.AckWait.String(),
		MaxDeliveries: gi.Config.MaxDeliveries, DeadLetter: gi.Config.DeadLetterTopic, Epoch: gi.Epoch,
		Committed: gi.Committed, AckedAbove: gi.AckedAbove, Start: gi.Start, End: gi.End, Lag: gi.Lag,
		InFlight: gi.InFlight, Delivered: gi.Delivered, Redeliveries: gi.Redeliveries, Expired: gi.Expired,
		DeadLettered: gi.DeadLettered, Skipped: gi.Skipped, Members: []memberJSON{}}
	for _, m := range gi.Members {
		out.Members = append(out.Members, memberJSON{ID: strconv.FormatUint(m.ID, 10), Name: m.Name, InFlight: m.InFlight, LastSeen: m.LastSeen, Holder: m.Holder})
	}
	return out
}

// describeGroup handles GET /topics/{topic}/groups/{group}.
func (a *API) describeGroup(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	gi, err := g.DescribeGroup(r.PathValue("topic"), r.PathValue("group"))
	if err != nil {
		a.failErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, describeJSON(gi))
}

// listGroups handles GET /topics/{topic}/groups.
func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	gis, err := g.ListGroups(r.PathValue("topic"))
	if err != nil {
		a.failErr(w, err)
		return
	}
	out := []groupJSON{}
	for _, gi := range gis {
		out = append(out, describeJSON(gi))
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}

// deleteGroup handles DELETE /topics/{topic}/groups/{group}.
func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	if err := g.DeleteGroup(r.Context(), r.PathValue("topic"), r.PathValue("group")); err != nil {
		a.failErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// joinGroup handles POST /topics/{topic}/groups/{group}/members with an
// optional {"name": "..."}: the new member's id and the group's epoch.
func (a *API) joinGroup(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	if err := readSmallJSON(r, &body); err != nil {
		badRequest(w, "join: "+err.Error())
		return
	}
	m, err := g.JoinGroup(r.Context(), r.PathValue("topic"), r.PathValue("group"), body.Name)
	if err != nil {
		a.failErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"member": strconv.FormatUint(m.ID, 10), "epoch": m.Epoch})
}

// memberOf reads the member= and epoch= parameters.
func memberOf(r *http.Request) (engine.Member, error) {
	q := r.URL.Query()
	id := r.PathValue("member")
	if id == "" {
		id = q.Get("member")
	}
	var m engine.Member
	var err error
	if m.ID, err = strconv.ParseUint(id, 10, 64); err != nil || m.ID == 0 {
		return m, errors.New("member: want the id POST .../members answered")
	}
	if e := q.Get("epoch"); e != "" {
		if m.Epoch, err = strconv.ParseUint(e, 10, 64); err != nil {
			return m, errors.New("epoch: want the epoch the join or last fetch answered")
		}
	}
	return m, nil
}

// leaveGroup handles DELETE /topics/{topic}/groups/{group}/members/{member}.
func (a *API) leaveGroup(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	m, err := memberOf(r)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if err := g.LeaveGroup(r.Context(), r.PathValue("topic"), r.PathValue("group"), m); err != nil {
		a.failErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// groupFetch handles POST /topics/{topic}/groups/{group}/fetch?member=&max=&wait=:
// the messages leased to the member, as NDJSON (or a JSON array by
// Accept), each with its deliveries; Group-Epoch names the epoch to ack
// with.
func (a *API) groupFetch(w http.ResponseWriter, r *http.Request) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	m, err := memberOf(r)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	q := r.URL.Query()
	maxMsgs := defaultLimit
	if s := q.Get("max"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			badRequest(w, "max: want an integer above 0")
			return
		}
		maxMsgs = min(n, a.opts.MaxMessages)
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	topic, group := r.PathValue("topic"), r.PathValue("group")
	fr, err := g.GroupFetch(r.Context(), topic, group, m, maxMsgs, min(wait, a.opts.MaxWait))
	if err != nil {
		a.failErr(w, err)
		return
	}
	asArray := wantsJSON(r.Header.Get("Accept"))
	h := w.Header()
	h.Set("Group-Epoch", strconv.FormatUint(fr.Epoch, 10))
	if fr.Standby {
		h.Set("Group-Standby", "true")
	}
	if asArray {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	bw := bufio.NewWriterSize(&deadlineWriter{w: w, rc: rc, timeout: a.opts.WriteTimeout}, 64<<10)
	enc := encoder{w: bw, array: asArray, sent: &a.consumed}
	if asArray {
		bw.WriteByte('[')
	}
	res := &engine.ReadResult{}
	defer res.Release()
	for _, l := range fr.Leases {
		enc.deliveries = l.Deliveries
		for off := l.First; off < l.Next; {
			if err := a.svc.Read(topic, off, l.Next-off, a.opts.MaxConsumeBytes, res); err != nil || len(res.Chunks) == 0 {
				// Leased but unreadable (retention, damage): the lease
				// lapses and the group redelivers or skips it.
				a.opts.Logger.Warn("httpapi: leased offsets not readable", "topic", topic, "group", group, "offset", off, "err", err)
				break
			}
			next := min(l.Next, res.Next())
			if err := enc.chunks(res, off, next); err != nil {
				panic(http.ErrAbortHandler)
			}
			res.Release()
			off = next
		}
	}
	if asArray {
		bw.WriteString("]\n")
	}
	bw.Flush()
}

// ackBody names offsets of an ack, nack or extend.
type ackBody struct {
	Offsets []uint64 `json:"offsets"`
	Ranges  []struct {
		First uint64 `json:"first"`
		Next  uint64 `json:"next"`
	} `json:"ranges"`
	UpTo  *uint64 `json:"up_to"` // ack only: every leased offset below it
	Delay string  `json:"delay"` // nack only: redeliver after it
}

// ranges turns offsets and ranges into ascending, merged ranges; nil when
// the body names none.
func (b *ackBody) ranges() []engine.OffsetRange {
	var out []engine.OffsetRange
	for _, r := range b.Ranges {
		out = append(out, engine.OffsetRange{First: r.First, Next: r.Next})
	}
	for _, o := range b.Offsets {
		out = append(out, engine.OffsetRange{First: o, Next: o + 1})
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(x, y engine.OffsetRange) int {
		switch {
		case x.First < y.First:
			return -1
		case x.First > y.First:
			return 1
		}
		return 0
	})
	merged := out[:1]
	for _, r := range out[1:] {
		last := &merged[len(merged)-1]
		if r.First <= last.Next {
			last.Next = max(last.Next, r.Next)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// groupAck handles POST .../ack?member=&epoch= with {"offsets":[...]},
// {"ranges":[{"first","next"}]} or {"up_to": N}: 204 once durable.
func (a *API) groupAck(w http.ResponseWriter, r *http.Request) { a.settle(w, r, "ack") }

// groupNack handles POST .../nack?member=&epoch= with offsets or ranges
// (none: every lease of the member) and an optional delay.
func (a *API) groupNack(w http.ResponseWriter, r *http.Request) { a.settle(w, r, "nack") }

// groupExtend handles POST .../extend?member=&epoch=: the leases named
// (none: all of the member's) restart their ack wait.
func (a *API) groupExtend(w http.ResponseWriter, r *http.Request) { a.settle(w, r, "extend") }

func (a *API) settle(w http.ResponseWriter, r *http.Request, op string) {
	g := a.groupsOf(w)
	if g == nil {
		return
	}
	m, err := memberOf(r)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	var body ackBody
	if err := readSmallJSON(r, &body); err != nil {
		badRequest(w, op+": "+err.Error())
		return
	}
	topic, group, ctx := r.PathValue("topic"), r.PathValue("group"), r.Context()
	if r.URL.Query().Get("epoch") == "" {
		// No epoch given: the group's current one (a client that gives
		// the one its fetch answered has an ack after a seek or a
		// takeover refused instead).
		gi, err := g.DescribeGroup(topic, group)
		if err != nil {
			a.failErr(w, err)
			return
		}
		m.Epoch = gi.Epoch
	}
	rs := body.ranges()
	switch op {
	case "ack":
		switch {
		case body.UpTo != nil:
			err = g.GroupAckUpTo(ctx, topic, group, m, *body.UpTo)
		case rs == nil:
			badRequest(w, "ack: name offsets, ranges or up_to")
			return
		default:
			err = g.GroupAck(ctx, topic, group, m, rs)
		}
	case "nack":
		var delay time.Duration
		if body.Delay != "" {
			if delay, err = parseWait(body.Delay); err != nil {
				badRequest(w, "delay: want a duration")
				return
			}
		}
		err = g.GroupNack(ctx, topic, group, m, rs, delay)
	case "extend":
		err = g.GroupExtend(ctx, topic, group, m, rs)
	}
	if err != nil {
		a.failErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
