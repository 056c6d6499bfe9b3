package main

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/netproto"
)

// Promise: 10,000 connections that never say Hello cannot lock a real
// client out of the broker for long: with every one of its -max-conns
// slots taken by them, a client is served within seconds, once
// -hello-timeout has closed them. The broker runs as its own process so
// that each side has its own descriptor budget.
func TestSilentConnectionsDoNotLockOut(t *testing.T) {
	const silent = 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < silent+200 {
		lim.Cur = min(lim.Max, silent+200)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < silent+200 {
			t.Fatalf("descriptor limit %d (max %d) too low for %d connections: %v", lim.Cur, lim.Max, silent, err)
		}
	}
	bin := buildBroker(t)
	p := startBroker(t, bin, t.TempDir(), "-max-conns", "10000", "-hello-timeout", "2s", "-log-level", "info")
	defer p.stop(t)

	start := time.Now()
	conns := make([]net.Conn, 0, silent)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for len(conns) < silent {
		nc, err := net.DialTimeout("unix", p.sock, 5*time.Second)
		if errors.Is(err, syscall.EAGAIN) && time.Since(start) < time.Minute {
			time.Sleep(time.Millisecond) // the listen backlog is full: the broker is accepting
			continue
		}
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, nc)
	}
	dialled := time.Since(start)

	refused := 0
	var served time.Duration
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := dialRaw(p.sock)
		if err == nil {
			_, _, err = c.call(netproto.OpTopics, &netproto.TopicsRequest{})
			c.nc.Close()
			if err != nil {
				t.Fatalf("served client: %v", err)
			}
			served = time.Since(start)
			break
		}
		// A refusal is one TooBusy frame and a close, which may come
		// before the Hello is written; or, while the broker works through
		// the silent connections, a full listen backlog (EAGAIN).
		if netproto.CodeOf(err) != netproto.CodeTooBusy && !errors.Is(err, syscall.EPIPE) &&
			!errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("refused with %v, want TooBusy", err)
		}
		refused++
	}
	if served == 0 {
		t.Fatalf("no client served within 30 s of %d silent connections (dialled in %v)", silent, dialled)
	}
	t.Logf("%d silent connections dialled in %v; a client refused %d times, then served %v after the first dial",
		silent, dialled.Round(time.Millisecond), refused, served.Round(time.Millisecond))
	if refused == 0 && dialled < 2*time.Second {
		t.Fatal("a client was served while every slot was taken")
	}
}
