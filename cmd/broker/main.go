// Command broker runs a haraqa broker: it opens the data directory, serves
// the haraqa protocol on TCP (and optionally a Unix socket), and shuts down
// gracefully on SIGINT or SIGTERM.
//
//	broker                      # 127.0.0.1:4353, data in ./data
//	broker -addr :4353 /mnt/v1  # all interfaces, data on /mnt/v1
//
// Every flag can also be set through an environment variable HARAQA_<NAME>,
// with the flag's name upper-cased and dashes turned into underscores
// (-fsync-interval → HARAQA_FSYNC_INTERVAL). A flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type config struct {
	addr, unix, volumes      string
	fsync                    string
	fsyncInterval            time.Duration
	segmentBytes             int64
	segmentAge               time.Duration
	retentionAge             time.Duration
	retentionBytes           int64
	maxBody                  uint
	maxConns, maxInFlight    int
	idleTimeout, maxWait     time.Duration
	token, logLevel, consume string
	autoCreate, showVersion  bool
	shutdownTimeout          time.Duration
	minVolumes               int
	scrubRate                int64
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr, nil))
}

// run is main without the process exit, so tests can drive it. ready, if
// not nil, receives the listening addresses once the broker serves.
func run(args []string, stderr io.Writer, ready chan<- []net.Addr) int {
	var c config
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4353", "TCP address to listen on (empty: no TCP)")
	fs.StringVar(&c.unix, "unix", "", "Unix socket path to listen on (empty: none)")
	fs.StringVar(&c.volumes, "volumes", "", "comma-separated data directories, each a full mirror (default ./data; positional arguments work too)")
	fs.IntVar(&c.minVolumes, "min-volumes", 1, "healthy volumes a produce needs; below it produces fail with a retriable storage error")
	fs.Int64Var(&c.scrubRate, "scrub-rate", 32<<20, "bytes per second the scrubber re-verifies sealed segments at (negative: off)")
	fs.StringVar(&c.fsync, "fsync", "always", "when an ack is sent: always (after fdatasync), interval, never")
	fs.DurationVar(&c.fsyncInterval, "fsync-interval", 50*time.Millisecond, "longest time between syncs with -fsync interval")
	fs.Int64Var(&c.segmentBytes, "segment-bytes", 1<<30, "segment size at which a topic's log rolls")
	fs.DurationVar(&c.segmentAge, "segment-age", 0, "roll a segment whose first message is older (0: never)")
	fs.DurationVar(&c.retentionAge, "retention-age", 0, "delete sealed segments older than this (0: keep)")
	fs.Int64Var(&c.retentionBytes, "retention-bytes", 0, "per topic, delete the oldest sealed segments above this size (0: no limit)")
	fs.UintVar(&c.maxBody, "max-body", 64<<20+64<<10, "largest request frame body in bytes")
	fs.IntVar(&c.maxConns, "max-conns", 10000, "most open connections")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 64, "most requests handled at once per connection")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 5*time.Minute, "close connections idle this long")
	fs.DurationVar(&c.maxWait, "max-wait", 30*time.Second, "longest long-poll a consume may ask for")
	fs.StringVar(&c.token, "token", "", "if set, clients must present this token in Hello")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.consume, "consume-mode", "writev", "how consume responses are sent: writev or sendfile")
	fs.BoolVar(&c.autoCreate, "auto-create", true, "create a topic on its first produce")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	if err := applyEnv(fs, os.Getenv); err != nil {
		fmt.Fprintln(stderr, "broker:", err)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.showVersion {
		fmt.Fprintln(stderr, "haraqa broker", version)
		return 0
	}
	if err := serve(c, fs.Args(), stderr, ready); err != nil {
		fmt.Fprintln(stderr, "broker:", err)
		return 1
	}
	return 0
}

// applyEnv sets every flag that has a HARAQA_* variable; command-line flags
// parsed afterwards override them.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "HARAQA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && err == nil {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

func serve(c config, positional []string, stderr io.Writer, ready chan<- []net.Addr) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	policy, err := engine.ParseFsyncPolicy(c.fsync)
	if err != nil {
		return err
	}
	vols := positional
	if c.volumes != "" {
		vols = append(strings.Split(c.volumes, ","), vols...)
	}
	if len(vols) == 0 {
		vols = []string{"./data"}
	}
	mode := server.ConsumeWritev
	switch c.consume {
	case "writev":
	case "sendfile":
		mode = server.ConsumeSendfile
	default:
		return fmt.Errorf("-consume-mode %q: want writev or sendfile", c.consume)
	}
	if c.addr == "" && c.unix == "" {
		return errors.New("nothing to listen on: set -addr or -unix")
	}
	start := time.Now()
	e, err := engine.Open(engine.Options{Volumes: vols, MinVolumes: c.minVolumes, ScrubBytesPerSec: c.scrubRate, Fsync: policy, FsyncInterval: c.fsyncInterval,
		SegmentBytes: c.segmentBytes, SegmentAge: c.segmentAge, RetentionAge: c.retentionAge,
		RetentionBytes: c.retentionBytes, MaxBatchBytes: int(min(int64(c.maxBody), c.segmentBytes)), Logger: log})
	if err != nil {
		return err
	}
	log.Info("engine open", "volumes", strings.Join(vols, ","), "topics", len(e.Topics("")), "fsync", policy.String(), "took", time.Since(start).Round(time.Millisecond))
	srv := server.New(e, server.Options{MaxBody: uint32(c.maxBody), MaxConns: c.maxConns, MaxInFlight: c.maxInFlight,
		IdleTimeout: c.idleTimeout, MaxWait: c.maxWait, Token: c.token, AutoCreateTopics: c.autoCreate,
		ConsumeMode: mode, ServerID: "haraqa/" + version, Logger: log})

	var listeners []net.Listener
	for _, a := range []string{c.addr, c.unix} {
		if a == "" {
			continue
		}
		if a == c.unix {
			a = "unix://" + a
		}
		l, err := server.Listen(a)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			e.Close()
			return err
		}
		listeners = append(listeners, l)
	}
	errc := make(chan error, len(listeners))
	var addrs []net.Addr
	for _, l := range listeners {
		log.Info("listening", "network", l.Addr().Network(), "addr", l.Addr().String())
		addrs = append(addrs, l.Addr())
		go func() { errc <- srv.Serve(l) }()
	}
	if ready != nil {
		ready <- addrs
	}

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var serveErr error
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-sig:
			log.Warn("second signal: closing connections now")
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown cut short", "err", err)
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("closing the engine: %w", err)
	}
	log.Info("stopped cleanly")
	if serveErr != nil && !errors.Is(serveErr, server.ErrServerClosed) {
		return serveErr
	}
	return nil
}
