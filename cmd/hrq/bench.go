package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
)

// benchTopic is the topic bench uses without one given.
const benchTopic = "hrq-bench"

type benchFlags struct {
	count       int
	size        int
	compression string
	inFlight    int
	linger      time.Duration
	batchBytes  int
	timeout     time.Duration
	from        string
	json        bool
	statusEvery time.Duration
}

// benchResult is a benchmark's summary (--json prints it as it is).
type benchResult struct {
	Mode       string  `json:"mode"`
	Topic      string  `json:"topic"`
	Messages   uint64  `json:"messages"`
	Bytes      uint64  `json:"bytes"`
	Failed     uint64  `json:"failed"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"` // 10^6 bytes of message values
}

func (a *app) benchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test the broker: produce or consume as fast as it goes",
		Long: `Load-test the broker. While stderr is a terminal a progress line shows the
messages done, msgs/s, MB/s and the time left; otherwise a status line goes
to stderr every --status-every. At the end a summary goes to stdout (--json:
one JSON object). MB are 10^6 bytes of message values.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.benchProduceCommand(), a.benchConsumeCommand())
	return cmd
}

func (a *app) benchProduceCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "produce [TOPIC]",
		Short: "Send -n messages of -s bytes through a batching Producer (topic default " + benchTopic + ")",
		Example: `  hrq bench produce -n 1000000 -s 100
  hrq bench produce load --compression s2 --in-flight 8 --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.benchProduce(cmd.Context(), benchTopicOf(args), &f)
		}),
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.count, "count", "n", 1_000_000, "messages to send")
	fl.IntVarP(&f.size, "size", "s", 100, "bytes per message")
	fl.StringVarP(&f.compression, "compression", "z", "none", "batch compression: none, s2 or zstd")
	fl.IntVar(&f.inFlight, "in-flight", 4, "batches awaiting their ack at once")
	fl.DurationVar(&f.linger, "linger", 5*time.Millisecond, "longest a batch waits for more messages")
	fl.IntVar(&f.batchBytes, "batch-bytes", 1<<20, "send a batch once it holds this many bytes")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "give up when messages wait this long with no acknowledgement (0: never)")
	fl.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fl.DurationVar(&f.statusEvery, "status-every", 10*time.Second, "when stderr is no terminal, print a status line this often (0: never)")
	return cmd
}

func (a *app) benchConsumeCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "consume [TOPIC]",
		Short: "Read a topic from --from to its current end, or -n messages (topic default " + benchTopic + ")",
		Example: `  hrq bench produce -n 1000000 && hrq bench consume
  hrq bench consume logs --from -100000 --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.benchConsume(cmd.Context(), benchTopicOf(args), &f)
		}),
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.count, "count", "n", 0, "messages to read (0: up to the current end)")
	fl.StringVarP(&f.from, "from", "o", "beginning", "first message: "+positionHelp)
	fl.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fl.DurationVar(&f.statusEvery, "status-every", 10*time.Second, "when stderr is no terminal, print a status line this often (0: never)")
	return cmd
}

func benchTopicOf(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return benchTopic
}

func (a *app) benchProduce(ctx context.Context, topic string, f *benchFlags) error {
	if f.count <= 0 || f.size < 0 {
		return usagef("-n %d -s %d: want a positive count and a size of 0 or more", f.count, f.size)
	}
	codec, err := parseCodec(f.compression)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, client.WithCompression(codec))
	if err != nil {
		return err
	}
	if err := c.CreateTopic(ctx, topic); err != nil && !errors.Is(err, client.ErrTopicExists) {
		return onTopic(topic, err)
	}
	var m meter
	pctx, guard := guardStalls(ctx, f.timeout)
	defer guard.close()
	p := client.NewProducer(c, topic, client.ProducerMaxInFlight(max(f.inFlight, 1)),
		client.ProducerLinger(f.linger), client.ProducerMaxBytes(f.batchBytes),
		client.ProducerOnAck(func(_ uint64, n int) {
			m.msgs.Add(uint64(n))
			m.bytes.Add(uint64(n) * uint64(f.size))
			guard.finished(n)
		}),
		client.ProducerOnError(func(_ []byte, err error) {
			if errors.Is(err, client.ErrRetrying) {
				return // still resent: acked or failed later
			}
			m.failed.Add(1)
			guard.finished(1)
		}))
	stopProgress := a.benchProgress(fmt.Sprintf("bench produce %q", topic), "acked", &m, uint64(f.count), f.statusEvery, guard.waiting)
	start := time.Now()
	pool := payloadPool(f.size)
	for i := 0; i < f.count && err == nil; i++ {
		at := (i * 7919) % (len(pool) - f.size + 1)
		guard.sending()
		if err = p.Send(pctx, pool[at:at+f.size]); err != nil {
			m.failed.Add(1) // refused by Send: never stored
			guard.finished(1)
		}
	}
	err = closeProducer(ctx, pctx, p, err)
	elapsed := time.Since(start)
	stopProgress()
	var se stalledError
	if errors.As(err, &se) {
		se.pending = m.failed.Load() // the final count, as the summary's
		err = se
	}
	if perr := a.printBench("produce", topic, &m, elapsed, f.json); err == nil {
		err = perr
	}
	return onTopic(topic, err)
}

// payloadPool returns bytes to cut messages of size from: lowercase
// letters, so that compression has something to do, as with text.
func payloadPool(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, size+64<<10)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return b
}

func (a *app) benchConsume(ctx context.Context, topic string, f *benchFlags) error {
	if f.count < 0 {
		return usagef("-n %d: want 0 or more", f.count)
	}
	from, err := parsePosition(f.from, time.Now())
	if err != nil {
		return usagef("--from %v", err)
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	_, end, next, err := openAt(ctx, c, topic, from)
	if err != nil {
		return err
	}
	total := uint64(0)
	if end > next {
		total = end - next
	}
	if f.count > 0 {
		total = min(total, uint64(f.count))
	}
	var m meter
	stopProgress := a.benchProgress(fmt.Sprintf("bench consume %q", topic), "consumed", &m, total, f.statusEvery, nil)
	began := time.Now()
	r := reader{c: c, topic: topic, next: next, stop: next + total, stderr: a.stderr}
	err = r.run(ctx, func(msg *client.Message) error {
		m.msgs.Add(1)
		m.bytes.Add(uint64(len(msg.Value)))
		return nil
	}, func() error { return nil })
	elapsed := time.Since(began)
	stopProgress()
	if perr := a.printBench("consume", topic, &m, elapsed, f.json); err == nil {
		err = perr
	}
	return err
}

// benchProgress shows m's progress on stderr: a progress line on a
// terminal, else a status line every statusEvery. It returns the function
// that stops it.
func (a *app) benchProgress(what, label string, m *meter, total uint64, statusEvery time.Duration, idle func() time.Duration) func() {
	switch {
	case a.stderrTTY:
		return startProgress(a.stderr, label, m, total).finish
	case statusEvery > 0:
		return startStatus(a.stderr, what, label, m, total, statusEvery, idle).finish
	}
	return func() {}
}

// printBench writes the summary to stdout.
func (a *app) printBench(mode, topic string, m *meter, elapsed time.Duration, asJSON bool) error {
	secs := max(elapsed.Seconds(), 1e-9)
	r := benchResult{Mode: mode, Topic: topic, Messages: m.msgs.Load(), Bytes: m.bytes.Load(), Failed: m.failed.Load(),
		Seconds: elapsed.Seconds()}
	r.MsgsPerSec = float64(r.Messages) / secs
	r.MBPerSec = float64(r.Bytes) / 1e6 / secs
	if asJSON {
		return writeJSON(a.stdout, r)
	}
	_, err := fmt.Fprintf(a.stdout, "%s %q: %d messages, %d bytes in %s: %.0f msgs/s, %.1f MB/s, %d failed\n",
		mode, topic, r.Messages, r.Bytes, elapsed.Round(time.Millisecond), r.MsgsPerSec, r.MBPerSec, r.Failed)
	return err
}
