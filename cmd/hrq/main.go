package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// defaultAddr is the broker address without --addr or HARAQA_ADDR.
const defaultAddr = "tcp://127.0.0.1:4353"

// app is one run of hrq: the streams, the global flags and the
// connection, dialled on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool // stderr is a terminal: bench draws its progress line

	addr, token string
	dialTimeout time.Duration
	tls         tlsFlags // tls.go

	client *client.Client
}

func main() {
	os.Exit(runMain(os.Args[1:]))
}

// runMain runs hrq as a process: SIGINT and SIGTERM cancel the run's
// context, and stay caught until the process exits. A second signal (Ctrl-C
// twice; timeout(1) signals both the process and its group) must not kill
// hrq with the signal's status in place of its exit code, as it would if
// the handler were removed before os.Exit.
func runMain(args []string) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sig:
			cancel()
		case <-ctx.Done():
		}
	}()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr)}
	return a.run(ctx, args)
}

// run executes one command line and returns the exit code; an error is
// printed on stderr as one line.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if a.client != nil {
		a.client.Close()
	}
	if err == nil {
		return exitOK
	}
	code, msg := a.describe(err)
	if msg != "" {
		fmt.Fprintln(a.stderr, "hrq: "+oneLine(msg))
	}
	return code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "hrq",
		Short: "Produce, consume and manage topics of a haraqa broker from the shell",
		Long: `hrq talks to a haraqa broker: it produces messages from stdin or arguments,
consumes them to stdout, manages topics and runs load tests.

The broker address comes from --addr, else HARAQA_ADDR, else ` + defaultAddr + `;
it may be tcp://host:port, host:port, tls://host:port (see --tls-*),
unix:///path/to.sock or a socket path, or a cluster's seed list
tcp://a:4353,b:4353,c:4353 (the first node that answers).
The token comes from --token, else HARAQA_TOKEN.

Exit codes: 0 ok, 1 other error, 2 usage, 3 connection (cannot reach the
broker, lost it, or the token was refused), 4 not found (topic, offset, group),
5 data error (bad input, message too large, corrupt data), 6 storage (the
broker cannot store: a full disk, too few healthy volumes), 130 interrupted.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err: err, cmd: c.CommandPath()}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.addr, "addr", "a", "", "broker address (default $HARAQA_ADDR, else "+defaultAddr+")")
	pf.StringVar(&a.token, "token", "", "authentication token (default $HARAQA_TOKEN)")
	pf.DurationVar(&a.dialTimeout, "dial-timeout", 5*time.Second, "how long to try to connect")
	a.addTLSFlags(pf)
	root.AddCommand(a.produceCommand(), a.consumeCommand(), a.topicsCommand(),
		a.offsetsCommand(), a.watchCommand(), a.benchCommand(), a.groupsCommand(), a.clusterCommand())
	a.completeTopicArgs(root)
	return root
}

// action turns fn into a cobra RunE whose errors are marked as the
// command's own, so that run tells them from cobra's usage errors.
func action(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ue usageError
		if errors.As(err, &ue) && ue.cmd == "" {
			err = usageError{err: ue.err, cmd: cmd.CommandPath()}
		}
		if err != nil {
			return runError{err}
		}
		return nil
	}
}

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		err := check(cmd, a)
		switch {
		case err != nil && cmd.HasSubCommands():
			if len(a) > 0 {
				err = fmt.Errorf("unknown command %q for %q%s", a[0], cmd.CommandPath(), didYouMean(cmd.SuggestionsFor(a[0])))
			}
			return usageError{err: err, cmd: cmd.CommandPath()}
		case err != nil:
			return usageError{err: fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())}
		}
		return nil
	}
}

// address returns the broker address to dial, in the client's form.
func (a *app) address() string {
	addr := a.addr
	if addr == "" {
		addr = os.Getenv("HARAQA_ADDR")
	}
	if addr == "" {
		addr = defaultAddr
	}
	if !strings.Contains(addr, "://") && strings.ContainsRune(addr, '/') {
		return "unix://" + addr // a socket path
	}
	return addr
}

// connect dials the broker once per run, with opts added to the defaults.
func (a *app) connect(ctx context.Context, opts ...client.Option) (*client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	token := a.token
	if token == "" {
		token = os.Getenv("HARAQA_TOKEN")
	}
	tlsOpts, err := a.tlsOptions()
	if err != nil {
		return nil, err
	}
	all := append([]client.Option{client.WithToken(token), client.WithDialTimeout(a.dialTimeout)}, tlsOpts...)
	all = append(all, opts...)
	c, err := client.Dial(ctx, a.address(), all...)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		if errors.Is(err, client.ErrBadAddress) {
			source := "--addr"
			if a.addr == "" {
				source = "HARAQA_ADDR"
			}
			return nil, usageError{err: fmt.Errorf("%s (from %s)", strings.TrimPrefix(err.Error(), "client: "), source), cmd: "hrq"}
		}
		return nil, dialError{addr: a.address(), err: err}
	}
	a.client = c
	return c, nil
}

// completeTopicArgs makes shell completion offer the broker's topic names
// for the TOPIC arguments of cmd and its subcommands: every argument of a
// "TOPIC..." command, the first of a "TOPIC" one. Creating a topic offers
// nothing (its name is new).
func (a *app) completeTopicArgs(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		a.completeTopicArgs(sub)
	}
	use := cmd.Use
	switch {
	case cmd.Name() == "create":
	case strings.Contains(use, "TOPIC..."):
		cmd.ValidArgsFunction = a.topicNames(-1)
	case strings.Contains(use, "TOPIC"):
		cmd.ValidArgsFunction = a.topicNames(1)
	}
}

// topicNames completes topic names from the broker for the first n
// arguments (n < 0: all), without offering files.
func (a *app) topicNames(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, min(a.dialTimeout, 2*time.Second))
		defer cancel()
		c, err := a.connect(ctx)
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, err := c.ListTopics(ctx, toComplete, "")
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
