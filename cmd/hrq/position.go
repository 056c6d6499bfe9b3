package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/haraqa/haraqa/client"
)

// position is a place in a topic as the user names it: --from of
// consume, --before of truncate.
type position struct {
	kind posKind
	n    uint64    // posOffset: the offset; posFromEnd: how many before the end
	t    time.Time // posTime
}

type posKind uint8

const (
	posBeginning posKind = iota // the topic's first offset
	posEnd                      // the offset the next message will get
	posOffset                   // an absolute offset: N
	posFromEnd                  // N messages before the end: -N
	posTime                     // the first message appended at or after a time: @TIME
)

const positionHelp = "beginning, end, N (an offset), -N (N before the end), @RFC3339 time or @-DURATION (that long ago)"

// parsePosition reads "beginning", "end", "N", "-N", "@2006-01-02T15:04:05Z"
// or "@-1h30m"; now anchors the last form.
func parsePosition(s string, now time.Time) (position, error) {
	switch strings.ToLower(s) {
	case "beginning", "start":
		return position{kind: posBeginning}, nil
	case "end":
		return position{kind: posEnd}, nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		if d, err := time.ParseDuration(rest); err == nil && d <= 0 {
			return position{kind: posTime, t: now.Add(d)}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, rest)
		if err != nil {
			return position{}, fmt.Errorf("%q: want @RFC3339 (like @2024-05-01T12:00:00Z) or @-DURATION (like @-15m)", s)
		}
		return position{kind: posTime, t: t}, nil
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return position{}, fmt.Errorf("%q: want %s", s, positionHelp)
		}
		return position{kind: posFromEnd, n: n}, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return position{}, fmt.Errorf("%q: want %s", s, positionHelp)
	}
	return position{kind: posOffset, n: n}, nil
}

// resolve returns the offset p names in a topic whose valid range is
// [start, end). -N stops at the start; N is taken as it is (the broker
// refuses one outside the range).
func (p position) resolve(ctx context.Context, c *client.Client, topic string, start, end uint64) (uint64, error) {
	switch p.kind {
	case posBeginning:
		return start, nil
	case posEnd:
		return end, nil
	case posOffset:
		return p.n, nil
	case posFromEnd:
		if p.n >= end-start {
			return start, nil
		}
		return end - p.n, nil
	}
	off, err := c.OffsetAt(ctx, topic, p.t)
	return off, onTopic(topic, err)
}

// openAt reads a topic's valid range and resolves from against it: the
// offset to start reading at, checked to lie in [start, end].
func openAt(ctx context.Context, c *client.Client, topic string, from position) (start, end, next uint64, err error) {
	start, end, err = c.Offsets(ctx, topic)
	if err != nil {
		return 0, 0, 0, onTopic(topic, err)
	}
	next, err = from.resolve(ctx, c, topic, start, end)
	if err != nil {
		return 0, 0, 0, err
	}
	if next < start || next > end {
		return 0, 0, 0, onTopic(topic, outOfRange(next, start, end))
	}
	return start, end, next, nil
}
