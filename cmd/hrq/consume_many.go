package main

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/haraqa/haraqa/client"
)

// consumeMany is consume over several topics or --match: without --follow
// each topic in turn up to the end it had; with --follow a MultiConsumer.
func (a *app) consumeMany(ctx context.Context, topics []string, f *consumeFlags) error {
	switch {
	case len(topics) == 0 && f.match == "":
		return usagef("want a TOPIC, several, or --match REGEX")
	case len(topics) > 0 && f.match != "":
		return usagef("give topics or --match, not both")
	case f.follow && f.exitAtEnd:
		return usagef("--follow and -e exclude each other")
	case f.count < 0:
		return usagef("-n %d: want 0 or more", f.count)
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
	pr, err := newPrinter(out, "", delim, f.json, f.format)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	if f.follow {
		err = a.followMany(ctx, c, topics, from, f, pr, out)
	} else {
		err = a.readMany(ctx, c, topics, from, f, pr, out)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing stdout: %w", ferr)
	}
	if f.follow && ctx.Err() != nil {
		return nil // the way to end --follow
	}
	return err
}

// readMany writes each topic in turn, from --from up to the end it had.
func (a *app) readMany(ctx context.Context, c *client.Client, topics []string, from position, f *consumeFlags, pr *printer, out *bufio.Writer) error {
	if f.match != "" {
		var err error
		if topics, err = c.ListTopics(ctx, "", f.match); err != nil {
			return err
		}
	}
	written := 0
	for _, topic := range topics {
		if f.count > 0 && written >= f.count {
			return nil
		}
		_, end, next, err := openAt(ctx, c, topic, from)
		if err != nil {
			return err
		}
		r := reader{c: c, topic: topic, next: next, stop: end, skip: f.skip, stderr: a.stderr}
		if f.count > 0 {
			r.count = f.count - written
		}
		err = r.run(ctx, func(m *client.Message) error {
			written++
			return pr.print(m)
		}, out.Flush)
		if err != nil {
			return err
		}
	}
	return nil
}

// followMany writes the messages of every topic as they come.
func (a *app) followMany(ctx context.Context, c *client.Client, topics []string, from position, f *consumeFlags, pr *printer, out *bufio.Writer) error {
	opts := []client.ConsumeOption{}
	switch from.kind {
	case posBeginning:
	case posEnd:
		opts = append(opts, client.ConsumeFrom(time.Now()))
	case posTime:
		opts = append(opts, client.ConsumeFrom(from.t))
	default:
		return usagef("--from %q: with several topics --follow takes beginning, end or a time", f.from)
	}
	var mc *client.MultiConsumer
	if f.match != "" {
		mc = client.NewPatternConsumer(c, "", f.match, opts...)
	} else {
		mc = client.NewMultiConsumer(c, topics, opts...)
	}
	written := 0
	warned := false
	for m, err := range mc.Messages(ctx) {
		if err != nil {
			if !client.IsRetriable(err) {
				if m.Topic != "" {
					return onTopic(m.Topic, err)
				}
				return err
			}
			if !warned {
				_, msg := a.describe(runError{onTopic(m.Topic, err)})
				fmt.Fprintf(a.stderr, "hrq: %s; retrying\n", oneLine(msg))
				warned = true
			}
			continue
		}
		warned = false
		if err := pr.print(&m); err != nil {
			return err
		}
		if written++; f.count > 0 && written >= f.count {
			return nil
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
	}
	return ctx.Err()
}
