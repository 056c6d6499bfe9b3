package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/testtool"
)

// Promise: -kafka-addr serves the Kafka protocol on the broker's topics:
// what kcat produces there reads back through the native protocol, and
// without the flag no Kafka listener runs.
func TestKafkaAddrFlag(t *testing.T) {
	kcat := testtool.Need(t, "kcat", "kcat")
	dir := t.TempDir()
	p := runInProcess(t, dir, "-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0")
	if len(p.addrs) != 2 {
		t.Fatalf("ready addresses %v, want native and Kafka", p.addrs)
	}
	kaddr := p.addrs[1].String()
	cmd := exec.Command(kcat, "-b", kaddr, "-P", "-t", "flagged", "-K:")
	cmd.Stdin = strings.NewReader("k1:one\nk2:two\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	c, err := client.Dial(t.Context(), "tcp://"+p.addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ms, err := c.Consume(t.Context(), "flagged", 0, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range ms.All() {
		got = append(got, string(m.Key)+":"+string(m.Value))
	}
	if strings.Join(got, ",") != "k1:one,k2:two" {
		t.Fatalf("native read %v", got)
	}
	p.stop(t)
	q := runInProcess(t, t.TempDir(), "-addr", "127.0.0.1:0")
	if len(q.addrs) != 1 {
		t.Fatalf("without -kafka-addr: ready addresses %v", q.addrs)
	}
}

// Promise: a broker that requires a token requires it of Kafka clients
// too, as their SASL/PLAIN password: kcat without it, or with a wrong one,
// stores nothing; with it, its messages are stored.
func TestKafkaToken(t *testing.T) {
	kcat := testtool.Need(t, "kcat", "kcat")
	p := runInProcess(t, t.TempDir(), "-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-token", "s3cret")
	kaddr := p.addrs[1].String()
	produce := func(extra ...string) error {
		args := append([]string{"-b", kaddr, "-P", "-t", "guarded", "-m", "5", "-X", "message.timeout.ms=3000"}, extra...)
		cmd := exec.Command(kcat, args...)
		cmd.Stdin = strings.NewReader("one\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	sasl := func(pw string) []string {
		return []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=any", "-X", "sasl.password=" + pw}
	}
	if err := produce(); err == nil {
		t.Fatal("kcat without SASL produced")
	}
	if err := produce(sasl("wrong")...); err == nil {
		t.Fatal("kcat with a wrong token produced")
	}
	if err := produce(sasl("s3cret")...); err != nil {
		t.Fatalf("kcat with the token: %v", err)
	}
	c, err := client.Dial(t.Context(), "tcp://"+p.addrs[0].String(), client.WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, end, err := c.Offsets(t.Context(), "guarded"); err != nil || end != 1 {
		t.Fatalf("guarded holds %d messages (%v), want 1", end, err)
	}
}
