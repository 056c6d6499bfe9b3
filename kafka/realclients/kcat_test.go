package realclients

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtool"
	"github.com/haraqa/haraqa/record"
)

// kcat runs kcat against the broker with stdin and returns its stdout.
func kcat(t *testing.T, b *broker, stdin []byte, args ...string) []byte {
	t.Helper()
	bin := testtool.Need(t, "kcat", "kcat")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-b", b.kafkaAddr}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// readAll reads a topic whole through the native client.
func readAll(t *testing.T, c *client.Client, topic string) []client.Message {
	t.Helper()
	var out []client.Message
	var buf client.ConsumeBuffer
	_, end, err := c.Offsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for off := uint64(0); off < end; {
		ms, err := c.Consume(t.Context(), topic, off, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for m := range ms.All() {
			m.Key, m.Value = bytes.Clone(m.Key), bytes.Clone(m.Value)
			out = append(out, m)
		}
		off = ms.Next()
	}
	return out
}

// Promise: kcat's metadata lists the topics; 100,000 lines kcat produces
// from stdin are stored once each, in order, byte for byte (checked
// through the native Go client); kcat reads them back to the end (-e),
// and in a consumer group (-G) it reads them all and its commit lands in
// the haraqa group.
func TestKcat(t *testing.T) {
	b := startBroker(t)
	const n = 100_000
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "line %06d %s\n", i, strings.Repeat("k", i%40))
	}
	kcat(t, b, in.Bytes(), "-P", "-t", "lines", "-z", "snappy")
	got := readAll(t, b.native(t), "lines")
	lines := bytes.Split(bytes.TrimSuffix(in.Bytes(), []byte("\n")), []byte("\n"))
	if len(got) != n {
		t.Fatalf("native read %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if !bytes.Equal(m.Value, lines[i]) {
			t.Fatalf("message %d: %q, want %q", i, m.Value, lines[i])
		}
	}
	if meta := kcat(t, b, nil, "-L"); !bytes.Contains(meta, []byte(`topic "lines" with 1 partitions`)) {
		t.Fatalf("kcat -L:\n%s", meta)
	}
	if out := kcat(t, b, nil, "-C", "-t", "lines", "-e", "-q"); !bytes.Equal(out, in.Bytes()) {
		t.Fatalf("kcat -C -e read %d bytes, want %d identical", len(out), in.Len())
	}
	out := kcat(t, b, nil, "-G", "kgroup", "-e", "-q", "-X", "auto.offset.reset=earliest", "lines")
	if !bytes.Equal(out, in.Bytes()) {
		t.Fatalf("kcat -G read %d bytes, want %d identical", len(out), in.Len())
	}
	info, err := b.e.DescribeGroup("lines", "kgroup")
	if err != nil || info.Committed != n {
		t.Fatalf("haraqa group after kcat -G: %+v %v, want committed %d", info, err, n)
	}
}

// Promise: keys, headers and timestamps round-trip between kcat and the
// native Go client, both ways.
func TestKcatKeysHeadersTimestamps(t *testing.T) {
	b := startBroker(t)
	before := time.Now().Add(-time.Second)
	kcat(t, b, []byte("k1:v1\nk2:v2\n"), "-P", "-t", "kv", "-K:", "-H", "trace=abc", "-H", "empty=")
	got := readAll(t, b.native(t), "kv")
	if len(got) != 2 {
		t.Fatalf("%d messages", len(got))
	}
	for i, m := range got {
		if string(m.Key) != fmt.Sprint("k", i+1) || string(m.Value) != fmt.Sprint("v", i+1) || len(m.Headers) != 2 ||
			m.Headers[0].Key != "trace" || string(m.Headers[0].Value) != "abc" || m.Headers[1].Key != "empty" ||
			m.Timestamp.Before(before) || m.Timestamp.After(time.Now().Add(time.Second)) {
			t.Fatalf("native read %d: %+v", i, m)
		}
	}
	nc := b.native(t)
	ts := time.UnixMilli(1_650_000_000_123)
	if _, err := nc.ProduceMessages(t.Context(), "fromgo", client.Message{Key: []byte("gk"), Value: []byte("gv"), Timestamp: ts,
		Headers: []record.MessageHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}}); err != nil {
		t.Fatal(err)
	}
	out := kcat(t, b, nil, "-C", "-t", "fromgo", "-e", "-q", "-f", "%k|%s|%T|%h\n")
	if want := "gk|gv|1650000000123|a=1,b=2\n"; string(out) != want {
		t.Fatalf("kcat read %q, want %q", out, want)
	}
}
