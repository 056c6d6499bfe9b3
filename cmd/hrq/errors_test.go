package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMissingTopic(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	for _, args := range [][]string{
		{"consume", "nosuch"},
		{"consume", "nosuch", "--follow"},
		{"offsets", "nosuch"},
		{"topics", "describe", "nosuch"},
		{"topics", "delete", "nosuch"},
		{"topics", "truncate", "nosuch", "--before", "1"},
		{"watch", "nosuch"},
		{"bench", "consume", "nosuch"},
	} {
		r := hrq(t, b.addr, nil, args...)
		if r.code != exitNotFound || r.stdout != "" {
			t.Errorf("hrq %s: %v; want exit %d", strings.Join(args, " "), r, exitNotFound)
			continue
		}
		oneLineError(t, r, `topic "nosuch" not found`)
	}
}

func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	missing := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"consume", "t"},
		{"produce", "t", "m"},
		{"topics", "list"},
		{"--addr", "tcp://127.0.0.1:1", "offsets", "t"},
	} {
		r := hrq(t, missing, strings.NewReader("x\n"), args...)
		if r.code != exitConn {
			t.Errorf("hrq %s: %v; want exit %d", strings.Join(args, " "), r, exitConn)
			continue
		}
		oneLineError(t, r, "cannot connect to", "HARAQA_ADDR")
	}
	// The flag wins over the environment; a socket path needs no scheme.
	b := startBroker(t)
	mustHRQ(t, missing, nil, "--addr", strings.TrimPrefix(b.addr, "unix://"), "topics", "list")
}

func TestToken(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "-token", "s3cret")
	r := hrq(t, b.addr, nil, "topics", "list")
	if r.code != exitConn {
		t.Fatalf("no token: %v", r)
	}
	oneLineError(t, r, "refused the token", "HARAQA_TOKEN")
	if r := hrqEnv(t, b.addr, []string{"HARAQA_TOKEN=s3cret"}, nil, "topics", "list"); r.code != 0 {
		t.Fatalf("HARAQA_TOKEN: %v", r)
	}
	mustHRQ(t, b.addr, nil, "--token", "s3cret", "topics", "list")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	for _, args := range [][]string{
		{},
		{"nope"},
		{"consume"},
		{"consume", "t", "--bogus"},
		{"consume", "t", "--from", "yesterday"},
		{"consume", "t", "--follow", "-e"},
		{"consume", "t", "--json", "--format", "{{.Value}}"},
		{"consume", "t", "--format", "{{.Nope}}"},
		{"consume", "bad/name"},
		{"produce", "t", "-H", "novalue", "m"},
		{"produce", "t", "--compression", "lz4", "m"},
		{"produce", "t", "-0", "m"},
		{"produce", "t", "--key", "k", "-K", ":"},
		{"topics", "frobnicate"},
		{"topics", "truncate", "t"},
		{"bench", "produce", "-n", "0"},
	} {
		r := hrq(t, b.addr, nil, args...)
		if len(args) == 0 { // help, not an error
			if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
				t.Errorf("hrq: %v", r)
			}
			continue
		}
		if r.code != exitUsage {
			t.Errorf("hrq %s: %v; want exit %d", strings.Join(args, " "), r, exitUsage)
			continue
		}
		oneLineError(t, r)
	}
}

func TestDataErrors(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	// A file one byte over the message limit (sparse: nothing is written).
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, int64(maxMessage)+1); err != nil {
		t.Fatal(err)
	}
	r := hrq(t, b.addr, nil, "produce", "t", "--file", big)
	if r.code != exitData {
		t.Fatalf("--file too large: %v", r)
	}
	oneLineError(t, r, "message limit")
	fh, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r = hrq(t, b.addr, fh, "produce", "t") // one line of 64 MiB of NULs
	if r.code != exitData {
		t.Fatalf("line too long: %v", r)
	}
	oneLineError(t, r, "longer than")
}
