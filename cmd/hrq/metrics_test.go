package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetricsAgreeWithCLI: what an operator scrapes from the broker's
// /metrics agrees with what hrq did and reports: after hrq produced 100
// messages, the topic's produced count is exactly 100; after a group read
// 30 of them through hrq, the group's lag on /metrics is the lag hrq
// groups describe prints (70).
func TestMetricsAgreeWithCLI(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	b := startBroker(t, "-http", httpAddr)
	mustHRQ(t, b.addr, strings.NewReader(numbers(100)), "produce", "jobs")
	mustHRQ(t, b.addr, nil, "consume", "jobs", "--group", "workers", "-n", "30")
	var d struct {
		Lag      uint64 `json:"lag"`
		InFlight uint64 `json:"in_flight"`
	}
	if err := json.Unmarshal([]byte(mustHRQ(t, b.addr, nil, "groups", "describe", "jobs", "workers", "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Lag != 70 {
		t.Fatalf("hrq groups describe: lag %d, want 70", d.Lag)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("%v\nbroker log:\n%s", err, b.logText())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for series, want := range map[string]uint64{
		`haraqa_produced_messages_total{topic="jobs"}`:                  100,
		`haraqa_group_lag_messages{group="workers",topic="jobs"}`:       d.Lag,
		`haraqa_group_in_flight_messages{group="workers",topic="jobs"}`: d.InFlight,
	} {
		_, rest, ok := strings.Cut(string(body), "\n"+series+" ")
		v, _, _ := strings.Cut(rest, "\n")
		if got, err := strconv.ParseFloat(v, 64); !ok || err != nil || got != float64(want) {
			t.Errorf("/metrics: %s %q, want %d", series, v, want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
