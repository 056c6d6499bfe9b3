package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/internal/retry"
	"github.com/haraqa/haraqa/netproto"
)

type consumeFlags struct {
	from      string
	count     int
	follow    bool
	exitAtEnd bool
	json      bool
	format    string
	delim     string
	nul       bool
	wait      time.Duration
	skip      bool
	match     string
	group     string
}

func (a *app) consumeCommand() *cobra.Command {
	var f consumeFlags
	cmd := &cobra.Command{
		Use:   "consume TOPIC... | --match REGEX",
		Short: "Write messages to stdout, one per line",
		Long: `Write the messages of TOPIC to stdout, each followed by a newline (-D, -0).
Without --follow hrq stops at the end the topic had when it started (-e says
so explicitly); with --follow it waits for new messages, tail -f style, until
-n messages were written or it is interrupted (then it exits 0).

--from picks the first message: ` + positionHelp + `. The default is beginning.

--json writes one object per message: topic, offset, timestamp (the
producer's, else append_time), append_time, key (null: none), headers
[{key, value}], value. A key or value that is not UTF-8 is base64, marked
by key_encoding or value_encoding "base64".

--skip-corrupt reads on past stored damage that the broker names (offsets no
copy of the topic can serve): hrq writes the skipped offsets to stderr and goes
on. Without it hrq stops there with an error, after every message before it.

--format is a Go template (text/template) over .Topic .Offset .Timestamp
.AppendTime .Key .HasKey .Value .Headers and .Header "name", with the
functions json, base64, hex, quote and rfc3339.

Several topics, or --match REGEX (every topic whose name matches, RE2,
unanchored): without --follow hrq writes each topic in turn up to the end it
had; with --follow it writes the messages of all of them as they come (each
topic in order; --json and .Topic say which), and follows matching topics
created later. With several topics --follow takes --from beginning, end or a
time.

--group GROUP reads TOPIC as a member of a consumer group: a cursor kept on
the broker and shared by every member (hrq groups shows them). Each message
goes to one member; hrq acks what it has written (after flushing stdout), so
the next run, or another member, goes on after it; what it fetched but did
not write (-n, Ctrl-C) goes back to the group at once. A new group starts at
--from. Without --follow hrq stops when the group has nothing left to give.`,
		Example: `  hrq consume numbers --from beginning -e | wc -l
  hrq consume logs --from -10 --follow
  hrq consume events --from @-15m --json | jq .value
  hrq consume events --format '{{.Offset}}\t{{.Key}}\t{{.Value}}'
  hrq consume --match '^logs\.' --follow --json
  hrq consume jobs --group workers --follow`,
		Args: args(cobra.ArbitraryArgs),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if f.group != "" && (len(args) != 1 || f.match != "") {
				return usagef("--group reads one topic: give exactly one TOPIC and no --match")
			}
			if len(args) == 1 && f.match == "" {
				return a.consume(cmd.Context(), args[0], &f)
			}
			return a.consumeMany(cmd.Context(), args, &f)
		}),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.from, "from", "o", "beginning", "first message: "+positionHelp)
	fl.IntVarP(&f.count, "count", "n", 0, "stop after `N` messages (0: no limit)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "wait for new messages at the end instead of exiting")
	fl.BoolVarP(&f.exitAtEnd, "exit", "e", false, "exit at the end the topic had at the start (the default without --follow)")
	fl.BoolVar(&f.json, "json", false, "write each message as a JSON object")
	fl.StringVar(&f.format, "format", "", "write each message with a Go `TEMPLATE`")
	fl.StringVarP(&f.delim, "delimiter", "D", "\n", "written after each message (escapes: \\n \\t \\r \\0 \\\\ \\xHH)")
	fl.BoolVarP(&f.nul, "null", "0", false, "end each message with NUL instead of a newline")
	fl.DurationVar(&f.wait, "poll-wait", 10*time.Second, "long-poll wait of --follow at the end of the topic")
	fl.MarkHidden("poll-wait")
	fl.BoolVar(&f.skip, "skip-corrupt", false, "skip damaged offsets the broker names, reporting them on stderr")
	fl.StringVar(&f.match, "match", "", "consume every topic whose name matches `REGEX` (with --follow, also topics created later)")
	fl.StringVarP(&f.group, "group", "g", "", "read as a member of consumer `GROUP` (created if missing, starting at --from), acking what was written")
	return cmd
}

func (a *app) consume(ctx context.Context, topic string, f *consumeFlags) error {
	if f.follow && f.exitAtEnd {
		return usagef("--follow and -e exclude each other")
	}
	if f.count < 0 {
		return usagef("-n %d: want 0 or more", f.count)
	}
	if f.group != "" {
		return a.consumeGroup(ctx, topic, f)
	}
	from, err := parsePosition(f.from, time.Now())
	if err != nil {
		return usagef("--from %v", err)
	}
	delim := unescape(f.delim)
	if f.nul {
		delim = "\x00"
	}
	out := bufio.NewWriterSize(a.stdout, 64<<10)
	pr, err := newPrinter(out, topic, delim, f.json, f.format)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	_, end, next, err := openAt(ctx, c, topic, from)
	if err != nil {
		return err
	}
	r := reader{c: c, topic: topic, next: next, stop: end, follow: f.follow, count: f.count, wait: f.wait, skip: f.skip, stderr: a.stderr,
		warn: func(err error) string {
			_, msg := a.describe(runError{onTopic(topic, err)})
			return oneLine(msg)
		}}
	err = r.run(ctx, func(m *client.Message) error { return pr.print(m) }, out.Flush)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing stdout: %w", ferr)
	}
	if f.follow && ctx.Err() != nil {
		return nil // the way to end --follow
	}
	return err
}

// reader reads a topic from next: up to stop, or on and on with follow;
// at most count messages when count > 0.
type reader struct {
	c      *client.Client
	topic  string
	next   uint64
	stop   uint64
	follow bool
	count  int
	wait   time.Duration
	skip   bool // read on past damaged offsets the broker names
	stderr io.Writer
	warn   func(error) string // the line that reports a retriable failure

	buf client.ConsumeBuffer
}

// run hands every message to each and calls flush after every read. In
// follow mode a retriable failure (the broker restarting) is reported once
// and retried with backoff.
func (r *reader) run(ctx context.Context, each func(*client.Message) error, flush func() error) error {
	var opts []client.ConsumeOption
	if r.follow {
		opts = append(opts, client.ConsumeWait(r.wait))
	}
	failures := 0
	for n := 0; r.count == 0 || n < r.count; {
		limit := 0
		if r.count > 0 {
			limit = r.count - n
		}
		if !r.follow {
			if r.next >= r.stop {
				return nil
			}
			if left := r.stop - r.next; limit == 0 || uint64(limit) > left {
				limit = int(min(left, 1<<30))
			}
		}
		msgs, err := r.c.Consume(ctx, r.topic, r.next, limit, &r.buf, opts...)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if end, ok := r.skippable(err); ok {
				if err := flush(); err != nil {
					return fmt.Errorf("writing stdout: %w", err)
				}
				fmt.Fprintf(r.stderr, "hrq: topic %q: skipped damaged offsets %d..%d\n", r.topic, r.next, end-1)
				r.next = end
				continue
			}
			if !r.follow || !client.IsRetriable(err) {
				return onTopic(r.topic, err)
			}
			if failures++; failures == 1 {
				fmt.Fprintf(r.stderr, "hrq: %s; retrying\n", r.warn(err))
			}
			if !retry.Sleep(ctx, retry.Backoff(failures, 100*time.Millisecond, 5*time.Second)) {
				return ctx.Err()
			}
			continue
		}
		if failures > 0 {
			fmt.Fprintln(r.stderr, "hrq: reading again")
			failures = 0
		}
		for i := range msgs.Len() {
			m := msgs.At(i)
			if err := each(&m); err != nil {
				return err
			}
		}
		n += msgs.Len()
		if msgs.Len() == 0 && !r.follow {
			return nil // the topic shrank under us; nothing more to read
		}
		r.next = msgs.Next()
		if err := flush(); err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
	}
	return nil
}

// skippable reports, with --skip-corrupt, whether err names damaged offsets
// from r.next on, and the offset after them.
func (r *reader) skippable(err error) (uint64, bool) {
	var e *client.Error
	if !r.skip || !errors.As(err, &e) || e.Code != netproto.CodeCorrupt || e.End <= r.next || e.Start > r.next {
		return 0, false
	}
	return e.End, true
}

// outOfRange is the broker's error for an offset outside [start, end].
func outOfRange(off, start, end uint64) error {
	return &client.Error{Code: netproto.CodeOffsetOutOfRange, Message: fmt.Sprintf("offset %d", off), Start: start, End: end}
}
