package realclients

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/internal/testtool"
)

// slowOnly skips a slow suite unless HARAQA_SLOW=1 (.ci/run's slow step).
func slowOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("HARAQA_SLOW") != "1" {
		t.Skip("slow suite: set HARAQA_SLOW=1")
	}
}

const syslogNGKafkaConfig = `@version: 3.38
options { stats-freq(0); time-reopen(1); log-fifo-size(200000); };
source s_in { file("%s" follow-freq(0.1) flags(no-parse) log-fetch-limit(1000) log-iw-size(20000)); };
destination d_kafka { kafka-c(bootstrap-servers("%s") topic("shipped") message("$MSG")
  config("enable.idempotence" => "true" "acks" => "all" "linger.ms" => "10" "compression.codec" => "zstd")); };
log { source(s_in); destination(d_kafka); flags(flow-control); };
`

// Promise: syslog-ng's kafka() destination (librdkafka) tailing a file
// delivers its 100,000 lines to the topic once each, in order, byte for
// byte.
func TestSlowSyslogNGKafka(t *testing.T) {
	slowOnly(t)
	slng := testtool.Need(t, "syslog-ng", "syslog-ng-core syslog-ng-mod-rdkafka")
	b := startBroker(t)
	const total = 100_000
	work := t.TempDir()
	in := filepath.Join(work, "in.log")
	var all bytes.Buffer
	for i := range total {
		fmt.Fprintf(&all, "%06d shipped line with ünïcødé %s\n", i, bytes.Repeat([]byte("x"), i%30))
	}
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "syslog-ng.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(syslogNGKafkaConfig, in, b.kafkaAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	sl := exec.CommandContext(ctx, slng, "-F", "-e", "--no-caps", "-f", conf, "-R", filepath.Join(work, "persist"),
		"-c", filepath.Join(work, "ctl"), "-p", filepath.Join(work, "pid"))
	var slog bytes.Buffer
	sl.Stdout, sl.Stderr = &slog, &slog
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sl.Process.Signal(syscall.SIGTERM); sl.Wait() }()
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := all.Bytes()
	for len(data) > 0 { // in pieces, as a log grows
		n := min(len(data), 256<<10)
		if i := bytes.LastIndexByte(data[:n], '\n'); i >= 0 {
			n = i + 1
		}
		if _, err := f.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
		time.Sleep(20 * time.Millisecond)
	}
	nc := b.native(t)
	end := func() uint64 {
		_, e, _ := nc.Offsets(ctx, "shipped")
		return e
	}
	for deadline := time.Now().Add(3 * time.Minute); end() < total; {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the topic holds %d of %d lines\nsyslog-ng:\n%s", end(), total, slog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate would land now
	got := readAll(t, nc, "shipped")
	lines := bytes.Split(bytes.TrimSuffix(all.Bytes(), []byte("\n")), []byte("\n"))
	if len(got) != total {
		t.Fatalf("%d messages for %d lines", len(got), total)
	}
	for i, m := range got {
		if !bytes.Equal(m.Value, lines[i]) {
			t.Fatalf("message %d is %q, line %d was %q", i, m.Value, i, lines[i])
		}
	}
}
