package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/haraqa/haraqa/cluster"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
	"github.com/haraqa/haraqa/web"
)

// serve binds the listeners, opens the engine, serves until a signal or a
// listener failure, and shuts down. The listeners come first, so that an
// address in use is reported before the data directories are created or
// opened.
func serve(c *config, vols []string, log *slog.Logger, ready chan<- []net.Addr) error {
	sec, err := loadSecurity(c)
	if err != nil {
		return err
	}
	c.sec = sec
	listeners, err := listen(c)
	if err != nil {
		return err
	}
	kf, err := listenKafka(c)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	sec.logStart(log, c)
	stopHUP := make(chan struct{})
	defer close(stopHUP)
	sec.reloadOnHUP(log, stopHUP)
	hl, err := listenHTTP(c)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		kf.shutdown(context.Background(), log)
		return err
	}
	// The HTTP listener serves from here on: /healthz answers while the
	// data directories are recovered, and /readyz says why it is not ready.
	rd := &readiness{minVolumes: c.minVolumes, listeners: int32(len(listeners))}
	var ws *web.Server
	var obs *observers
	errc := make(chan error, len(listeners)+2)
	if hl != nil {
		ws, obs = newWeb(c, rd, log)
		log.Info("serving HTTP", "addr", hl.Addr().String(), "pprof", c.pprof, "metrics_max_topics", c.metricsMaxTopics)
		go func() { errc <- ws.Serve(hl) }()
	}
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
		kf.shutdown(context.Background(), log)
		if ws != nil {
			ws.Shutdown(context.Background())
		}
	}
	raiseLimits(log)
	start := time.Now()
	var relay *cluster.Relay
	var groupRecords engine.GroupRecordsFunc
	var deadLetter func(context.Context, string, []byte) (uint64, error)
	if c.cluster.nodeID != 0 {
		relay = &cluster.Relay{} // consumer-group records go through the topic's Raft group
		groupRecords = relay.GroupRecords
		deadLetter = relay.DeadLetterAppend
	}
	e, err := engine.Open(engine.Options{Volumes: vols, InitVolumes: c.initVolumes, MinVolumes: c.minVolumes, ScrubBytesPerSec: c.scrubRate, Fsync: engineFsync(c), FsyncInterval: c.fsyncInterval,
		SegmentBytes: c.segmentBytes, SegmentAge: c.segmentAge, RetentionAge: c.retentionAge,
		RetentionBytes: c.retentionBytes, RetentionInterval: c.retentionInterval, MaxGroups: c.maxGroups, MaxGroupMembers: c.maxGroupMembers, MaxGroupInFlight: c.maxGroupInFlight,
		MaxBatchBytes: int(min(int64(c.maxBody), c.segmentBytes)), Logger: log,
		Observer: obs.engine(), GroupRecords: groupRecords, DeadLetterAppend: deadLetter})
	if err != nil {
		closeAll()
		return err
	}
	log.Info("engine open", "volumes", strings.Join(vols, ","), "topics", len(e.Topics("")), "fsync", c.fsync, "took", time.Since(start).Round(time.Millisecond))
	checkLimits(log, e)
	mode := server.ConsumeWritev
	if c.consume == "sendfile" {
		mode = server.ConsumeSendfile
	}
	svc, stopCluster, err := startCluster(&c.cluster, vols, e, relay, log, listeners)
	if err != nil {
		e.Close()
		closeAll()
		return err
	}
	srv := server.NewService(svc, server.Options{MaxBody: uint32(c.maxBody), MaxConns: c.maxConns, MaxInFlight: c.maxInFlight,
		HelloTimeout: c.helloTimeout, MaxInFlightBytes: c.maxInFlightBytes,
		IdleTimeout: c.idleTimeout, MaxWait: c.maxWait, Token: c.token, Auth: sec.auth, AutoCreateTopics: c.autoCreate,
		ConsumeMode: mode, ServerID: "haraqa/" + version, Logger: log, Observer: obs.server()})
	obs.attach(e, srv)
	if obs != nil {
		sec.registerMetrics(obs.m.Registry())
	}

	if ws != nil {
		mountRoutes(ws.Mux(), c, svc, e, srv, obs, log)
	}

	sig := make(chan os.Signal, 2)
	// sig stays registered after serve returns: a signal that arrives
	// while the process exits (a second Ctrl-C, or a supervisor signalling
	// the process and its group) must not kill it with that signal's status
	// in place of a clean stop's 0. Later signals land in the full buffer.
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var addrs []net.Addr
	for _, l := range listeners {
		log.Info("listening", "network", l.Addr().Network(), "addr", l.Addr().String())
		addrs = append(addrs, l.Addr())
		rd.serving.Add(1)
		go func() {
			err := srv.Serve(l)
			rd.serving.Add(-1)
			errc <- err
		}()
	}
	kf.serve(c, svc, log, errc) // in a cluster, the replicated log
	var names []string
	for _, a := range addrs {
		scheme := a.Network()
		if scheme == "tcp" && sec.tls != nil {
			scheme = "tls"
		}
		names = append(names, scheme+"://"+a.String())
	}
	if kf != nil {
		// After the native listeners, before HTTP (tests take the last
		// ready address as HTTP's).
		addrs = append(addrs, kf.ln.Addr())
		names = append(names, "kafka://"+kf.ln.Addr().String())
	}
	if hl != nil {
		addrs = append(addrs, hl.Addr())
		scheme := "http"
		if sec.tls != nil {
			scheme = "https"
		}
		names = append(names, scheme+"://"+hl.Addr().String())
	}
	rd.engine.Store(e)
	log.Info("haraqa broker serving", "version", version, "listeners", strings.Join(names, ","),
		"volumes", strings.Join(vols, ","), "min_volumes", c.minVolumes, "fsync", c.fsync, "fsync_interval", c.fsyncInterval,
		"max_conns", c.maxConns, "max_body", c.maxBody, "max_in_flight", c.maxInFlight, "max_in_flight_bytes", c.maxInFlightBytes,
		"segment_bytes", c.segmentBytes, "retention_age", c.retentionAge, "retention_bytes", c.retentionBytes)
	if ready != nil {
		ready <- addrs
	}

	var serveErr error
	select {
	case s := <-sig:
		log.Info("shutting down: accepting no more connections, answering the requests in flight, then closing the connections",
			"signal", s.String(), "connections", srv.Conns(), "wait_up_to", c.shutdownTimeout.String(), "hint", "a second signal closes them at once")
	case serveErr = <-errc:
		log.Error("listener failed; shutting down", "err", serveErr, "connections", srv.Conns(), "wait_up_to", c.shutdownTimeout.String())
	}
	rd.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-sig:
			log.Warn("second signal: closing connections now", "connections", srv.Conns())
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown cut short: connections closed with requests unanswered", "err", err)
	}
	kf.shutdown(ctx, log)
	if ws != nil {
		// After the protocol connections: /readyz answered 503 meanwhile.
		// Before the engine closes: HTTP handlers may use it.
		if err := ws.Shutdown(ctx); err != nil {
			log.Warn("HTTP shutdown cut short", "err", err)
		}
	}
	stopCluster()
	log.Info("connections closed; syncing and closing the data directories")
	if err := e.Close(); err != nil {
		return fmt.Errorf("closing the engine: %w", err)
	}
	log.Info("stopped cleanly")
	if serveErr != nil && !errors.Is(serveErr, server.ErrServerClosed) && !errors.Is(serveErr, http.ErrServerClosed) && !isKafkaClosed(serveErr) {
		return serveErr
	}
	return nil
}

// listen binds -addr and -unix.
func listen(c *config) ([]net.Listener, error) {
	var listeners []net.Listener
	for _, a := range []struct{ flag, addr string }{{"-addr", c.addr}, {"-unix", c.unix}} {
		if a.addr == "" {
			continue
		}
		addr := a.addr
		if a.flag == "-unix" {
			addr = "unix://" + addr
		}
		l, err := server.Listen(addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", a.flag, a.addr, err)
		}
		if a.flag == "-addr" && c.sec.nativeTLS() != nil {
			l = tls.NewListener(l, c.sec.nativeTLS())
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}
