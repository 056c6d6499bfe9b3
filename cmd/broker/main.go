// Command broker runs a haraqa broker: it opens the data directories,
// serves the haraqa protocol on TCP (and optionally a Unix socket), and
// shuts down gracefully on SIGINT or SIGTERM.
//
//	broker                          # 127.0.0.1:4353, data in ./data
//	broker /mnt/v1 /mnt/v2 -addr :4353  # all interfaces, two mirrored volumes
//
// Flags may stand before or after the data directories. Every flag can
// also be set through an environment variable HARAQA_BROKER_<NAME>, with
// the flag's name upper-cased and dashes turned into underscores
// (-fsync-interval → HARAQA_BROKER_FSYNC_INTERVAL), and as a key of the
// same name (no dash) in a -config file (TOML or YAML). A flag on the
// command line wins over a variable, a variable over the file, the file
// over the default (config.go). -print-config shows the result. (HARAQA_ADDR
// and HARAQA_TOKEN belong to hrq: the broker address it dials and the token
// it presents.)
//
// Exit codes: 0 after a clean stop (and for -h, -version), 1 when the
// broker fails at run time (a port in use, a data directory it cannot
// open), 2 for a bad command line or a bad HARAQA_BROKER_* value.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/metrics"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// envPrefix starts the environment variable of every flag.
const envPrefix = "HARAQA_BROKER_"

type config struct {
	addr, unix              string
	volumes                 listFlag
	configFile              string
	printConfig             bool
	fsync                   string
	fsyncInterval           time.Duration
	segmentBytes            int64
	segmentAge              time.Duration
	retentionAge            time.Duration
	retentionBytes          int64
	retentionInterval       time.Duration
	maxGroups               int
	maxGroupMembers         int
	maxGroupInFlight        int
	maxBody                 uint
	maxConns, maxInFlight   int
	idleTimeout, maxWait    time.Duration
	helloTimeout            time.Duration
	maxInFlightBytes        int64
	token, logLevel         string
	consume                 string
	autoCreate, showVersion bool
	shutdownTimeout         time.Duration
	minVolumes              int
	initVolumes             bool
	scrubRate               int64
	http                    string // -http: the HTTP listener's address (empty: none)
	kafka                   kafkaConfig
	pprof                   bool
	metricsMaxTopics        int
	api                     apiConfig // the HTTP API's limits
	cluster                 clusterConfig

	// origin says where each flag's value came from, for error messages
	// and -print-config; a flag at its default has none.
	origin map[string]source

	tlsCert, tlsKey, tlsClientCA string
	authFile                     string
	sec                          *security // loaded at start from the four above
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr, nil))
}

// stdout receives -print-config.
var stdout io.Writer = os.Stdout

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the broker could not run or stopped with an error
	exitUsage   = 2 // a bad command line or environment variable
)

// run is main without the process exit, so tests can drive it. ready, if
// not nil, receives the listening addresses once the broker serves.
func run(args []string, stderr io.Writer, ready chan<- []net.Addr) int {
	c, fs := newFlags()
	positional, err := parseFlags(fs, args)
	if err == flag.ErrHelp {
		usage(stderr, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "broker: %v (broker -h lists the flags)\n", err)
		return exitUsage
	}
	fs.Visit(func(f *flag.Flag) { c.origin[f.Name] = source{name: "-" + f.Name} })
	if err := loadLayers(c, fs); err != nil {
		fmt.Fprintf(stderr, "broker: %v (broker -h lists the flags and their variables)\n", err)
		return exitUsage
	}
	if c.showVersion {
		fmt.Fprintln(stderr, "haraqa broker", version)
		return exitOK
	}
	vols, err := c.check(fs, positional)
	if err != nil {
		fmt.Fprintln(stderr, "broker:", err)
		return exitUsage
	}
	var level slog.Level
	level.UnmarshalText([]byte(c.logLevel)) // checked by the flag
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	warnForeignEnv(fs, os.Getenv, log)
	if len(positional) > 0 {
		c.origin["volumes"] = source{name: "arguments"}
	}
	if c.printConfig {
		printConfig(stdout, c, fs, vols)
		return exitOK
	}
	log.Info("haraqa broker starting", settings(fs, vols)...)
	if err := serve(c, vols, log, ready); err != nil {
		fmt.Fprintln(stderr, "broker:", err)
		return exitFailure
	}
	return exitOK
}

func newFlags() (*config, *flag.FlagSet) {
	c := &config{origin: map[string]source{}}
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints one line per error, usage prints -h
	fs.Usage = func() {}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4353", "TCP `address` to listen on (empty: no TCP)")
	fs.StringVar(&c.unix, "unix", "", "Unix socket `path` to listen on (empty: none)")
	fs.StringVar(&c.http, "http", "127.0.0.1:4354", "HTTP `address` for /metrics, /healthz, /readyz and the status page (empty: none)")
	kafkaFlags(fs, &c.kafka)
	fs.BoolVar(&c.pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on -http")
	fs.IntVar(&c.metricsMaxTopics, "metrics-max-topics", metrics.DefaultMaxTopics, "topics with /metrics series of their own; the rest are summed into topic=\"_other_\"")
	// The one list of settings: each flag here is also HARAQA_BROKER_<FLAG>
	// and a -config key (config.go); add a check for it in config.check.
	fs.StringVar(&c.configFile, "config", "", "read settings from this TOML (or .yaml/.yml) `file`: keys are the flags' names")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the effective configuration as a config file and exit")
	fs.Var(&c.volumes, "volumes", "comma-separated data `directories`, each a full mirror (default ./data; or give them as arguments); repeatable")
	apiFlags(fs, &c.api)
	fs.BoolVar(&c.initVolumes, "init", false, "adopt missing (created) or empty volume directories as new volumes although the others are initialised")
	fs.IntVar(&c.minVolumes, "min-volumes", 1, "healthy volumes a produce needs; below it produces fail with a retriable storage error")
	fs.Int64Var(&c.scrubRate, "scrub-rate", 32<<20, "bytes per second the scrubber re-verifies sealed segments at (negative: off)")
	fs.Var(choice{&c.fsync, []string{"always", "interval", "never"}}, "fsync", "`policy` for acks: always (after fdatasync), interval or never (default always)")
	c.fsync = "always"
	fs.DurationVar(&c.fsyncInterval, "fsync-interval", 50*time.Millisecond, "longest time between syncs with -fsync interval")
	fs.Int64Var(&c.segmentBytes, "segment-bytes", 1<<30, "segment size at which a topic's log rolls")
	fs.DurationVar(&c.segmentAge, "segment-age", 0, "roll a segment whose first message is older (0: never)")
	fs.DurationVar(&c.retentionAge, "retention-age", 0, "delete sealed segments older than this (0: keep)")
	fs.Int64Var(&c.retentionBytes, "retention-bytes", 0, "per topic, delete the oldest sealed segments above this size (0: no limit)")
	fs.DurationVar(&c.retentionInterval, "retention-interval", time.Minute, "how often retention runs")
	fs.IntVar(&c.maxGroups, "max-groups", 256, "consumer groups per topic")
	fs.IntVar(&c.maxGroupMembers, "max-group-members", 1024, "members per consumer group")
	fs.IntVar(&c.maxGroupInFlight, "max-group-in-flight", 100000, "messages leased to one consumer-group member at once")
	fs.UintVar(&c.maxBody, "max-body", 64<<20+64<<10, "largest request frame body in bytes")
	fs.IntVar(&c.maxConns, "max-conns", 10000, "most open connections")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 64, "most requests handled at once per connection")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 5*time.Minute, "close connections idle this long")
	fs.DurationVar(&c.helloTimeout, "hello-timeout", 10*time.Second, "close connections that have not said Hello this long after connecting")
	fs.Int64Var(&c.maxInFlightBytes, "max-in-flight-bytes", 512<<20, "request body bytes held at once over all connections; past it requests wait a second, then get TooBusy")
	fs.DurationVar(&c.maxWait, "max-wait", 30*time.Second, "longest long-poll a consume may ask for")
	fs.StringVar(&c.token, "token", "", "if set, clients must present this token in Hello")
	fs.StringVar(&c.authFile, "auth-file", "", "per-client permissions `file` (TOML; see README): clients by token hash or certificate subject; reloaded on SIGHUP")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM) for the TCP and HTTP listeners (with -tls-key); reloaded on SIGHUP")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key `file` (PEM) for -tls-cert")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "CA certificates `file` (PEM): TCP clients must present a certificate it signed (mutual TLS)")
	fs.Var(choice{&c.logLevel, []string{"debug", "info", "warn", "error"}}, "log-level", "log `level`: debug, info, warn or error (default info)")
	c.logLevel = "info"
	fs.Var(choice{&c.consume, []string{"writev", "sendfile"}}, "consume-mode", "`mode` consume responses are sent in: writev or sendfile (default writev)")
	c.consume = "writev"
	fs.BoolVar(&c.autoCreate, "auto-create", true, "create a topic on its first produce")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	addClusterFlags(fs, &c.cluster)
	return c, fs
}

// choice is a string flag that takes one of a few words.
type choice struct {
	p     *string
	words []string
}

func (c choice) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

func (c choice) Set(v string) error {
	for _, w := range c.words {
		if v == w {
			*c.p = v
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(c.words))
}

// orList reads "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// parseFlags parses args with flags anywhere among the positional
// arguments (the data directories), as far as a "--", after which
// everything is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usage prints the -h text.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `usage: broker [flags] [DATA_DIR...]

Runs a haraqa broker %s. It stores its topics in the data directories
(default ./data; with more than one, each holds a full mirror of the others)
and serves them on -addr and -unix until SIGINT or SIGTERM. Flags may stand
before or after the directories.

Flags:
`, version)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, `
Environment: every flag can be set as %s<FLAG>, upper case with - as _
(HARAQA_BROKER_FSYNC=interval, HARAQA_BROKER_MAX_CONNS=500). HARAQA_ADDR and
HARAQA_TOKEN are hrq's, not the broker's.

Config file: -config haraqa.toml (or .yaml/.yml) sets flags by name, e.g.
  fsync = "interval"
  volumes = ["/mnt/v1", "/mnt/v2"]
A key the broker does not have is an error. A flag on the command line wins
over a variable, a variable over the file, the file over the default;
-print-config prints the result.

Exit codes: 0 stopped cleanly, 1 failed (port in use, data directory), 2 bad
flags or variables.
`, envPrefix)
}

// envName returns the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// warnForeignEnv logs HARAQA_<FLAG> variables the broker does not read
// (its variables start with HARAQA_BROKER_), except hrq's own.
func warnForeignEnv(fs *flag.FlagSet, getenv func(string) string, log *slog.Logger) {
	fs.VisitAll(func(f *flag.Flag) {
		old := "HARAQA_" + strings.TrimPrefix(envName(f.Name), envPrefix)
		if old == "HARAQA_ADDR" || old == "HARAQA_TOKEN" {
			return // hrq's
		}
		if getenv(old) != "" {
			log.Warn("environment variable ignored: the broker reads "+envName(f.Name), "variable", old)
		}
	})
}

// check validates the settings and returns the volumes.
func (c *config) check(fs *flag.FlagSet, positional []string) ([]string, error) {
	vols := append(append([]string(nil), c.volumes...), positional...)
	if len(vols) == 0 {
		vols = []string{"./data"}
	}
	for _, v := range vols {
		if err := checkVolume(v); err != nil {
			return nil, err
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	if c.tlsClientCA != "" && c.tlsCert == "" {
		return nil, fmt.Errorf("-tls-client-ca needs -tls-cert and -tls-key")
	}
	if c.addr == "" && c.unix == "" {
		return nil, fmt.Errorf("nothing to listen on: set -addr or -unix")
	}
	for _, p := range []struct {
		name string
		ok   bool
		want string
	}{
		{"segment-bytes", c.segmentBytes > 0, "a size above 0"},
		{"max-body", c.maxBody > 0 && c.maxBody <= 1<<32-1, "1 to 4294967295"},
		{"max-conns", c.maxConns > 0, "1 or more"},
		{"max-in-flight", c.maxInFlight > 0, "1 or more"},
		{"min-volumes", c.minVolumes >= 1 && c.minVolumes <= len(vols), fmt.Sprintf("1 to the %d volumes given", len(vols))},
		{"fsync-interval", c.fsyncInterval > 0, "a duration above 0"},
		{"idle-timeout", c.idleTimeout > 0, "a duration above 0"},
		{"hello-timeout", c.helloTimeout > 0, "a duration above 0"},
		{"max-in-flight-bytes", c.maxInFlightBytes > 0, "a size above 0"},
		{"max-wait", c.maxWait >= 0, "0 or more"},
		{"segment-age", c.segmentAge >= 0, "0 or more"},
		{"retention-age", c.retentionAge >= 0, "0 or more"},
		{"retention-bytes", c.retentionBytes >= 0, "0 or more"},
		{"retention-interval", c.retentionInterval > 0, "a duration above 0"},
		{"max-groups", c.maxGroups > 0, "1 or more"},
		{"max-group-members", c.maxGroupMembers > 0, "1 or more"},
		{"max-group-in-flight", c.maxGroupInFlight > 0, "1 or more"},
		{"shutdown-timeout", c.shutdownTimeout > 0, "a duration above 0"},
		{"metrics-max-topics", c.metricsMaxTopics >= 0, "0 or more"},
		{"http-max-body", c.api.maxBody > 0, "a size above 0"},
		{"http-max-line", c.api.maxLine > 0, "a size above 0"},
		{"http-max-messages", c.api.maxMessages > 0, "1 or more"},
		{"http-request-timeout", c.api.requestTimeout > 0, "a duration above 0"},
		{"http-max-in-flight", c.api.maxInFlight > 0, "1 or more"},
		{"http-max-in-flight-bytes", c.api.maxInFlightBytes > 0, "a size above 0"},
		{"http-max-streams", c.api.maxStreams > 0, "1 or more"},
	} {
		if !p.ok {
			return nil, fmt.Errorf("%s: want %s", c.describe(fs, p.name), p.want)
		}
	}
	if err := c.cluster.check(); err != nil {
		return nil, err
	}
	return vols, nil
}

// describe names a setting and its value as the operator gave it:
// "-max-conns 0" or "HARAQA_BROKER_MAX_CONNS=0".
func (c *config) describe(fs *flag.FlagSet, name string) string {
	v := fs.Lookup(name).Value.String()
	switch o := c.origin[name]; {
	case o.env:
		return o.name + "=" + v
	case o.file:
		return "-config " + o.name + ": " + name + " = " + v
	}
	return "-" + name + " " + v
}

// checkVolume refuses a data directory that cannot be one: a name that
// looks like a misplaced flag, or an existing file that is no directory.
func checkVolume(v string) error {
	if v == "" {
		return fmt.Errorf("an empty data directory name (in -volumes?)")
	}
	if strings.HasPrefix(v, "-") {
		return fmt.Errorf("data directory %q starts with '-': a misplaced flag? (write ./%s for a directory of that name)", v, v)
	}
	fi, err := os.Stat(v)
	if err != nil {
		return nil // missing: the engine creates it; other errors it reports
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is a %s, not a directory", v, fileKind(fi.Mode()))
	}
	return nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeDevice != 0:
		return "device"
	case m.IsRegular():
		return "regular file"
	}
	return "file of mode " + m.String()
}

// settings returns the start line's attributes: the version, the volumes
// and every flag's effective value (the token only as set or not).
func settings(fs *flag.FlagSet, vols []string) []any {
	attrs := []any{"version", version, "volumes", strings.Join(vols, ",")}
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "volumes", "version", "print-config":
			return
		}
		if secretFlags[f.Name] {
			set := "none"
			if f.Value.String() != "" {
				set = "set"
			}
			attrs = append(attrs, f.Name, set)
			return
		}
		attrs = append(attrs, f.Name, f.Value.String())
	})
	return attrs
}

// listFlag is a list of strings: each value set adds its comma-separated
// items (a TOML or YAML array adds each element).
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.Split(v, ",")...)
	return nil
}

// fsyncPolicy turns the checked -fsync word into the engine's policy.
func fsyncPolicy(s string) engine.FsyncPolicy {
	p, err := engine.ParseFsyncPolicy(s)
	if err != nil {
		panic(err) // the flag admits only the engine's words
	}
	return p
}
