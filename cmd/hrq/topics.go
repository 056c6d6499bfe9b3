package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
)

func (a *app) topicsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List, create, delete, describe and truncate topics",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.topicsListCommand(), a.topicsCreateCommand(), a.topicsDeleteCommand(),
		a.topicsDescribeCommand(), a.topicsTruncateCommand())
	return cmd
}

func (a *app) topicsListCommand() *cobra.Command {
	var match string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [PREFIX]",
		Aliases: []string{"ls"},
		Short:   "Print the topics' names, one per line, sorted",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			names, err := c.ListTopics(cmd.Context(), prefix, match)
			if errors.Is(err, client.ErrMalformed) && match != "" {
				return usagef("--match %q: the broker refused the expression: %v", match, err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, names)
			}
			for _, n := range names {
				fmt.Fprintln(a.stdout, n)
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&match, "match", "m", "", "only names matching this regular `EXPR` (RE2, unanchored)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func (a *app) topicsCreateCommand() *cobra.Command {
	var ifNotExists bool
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create empty topics (each one tried; an error line for each that fails)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.allTopics(cmd.Context(), args, func(c *client.Client, t string) error {
				err := c.CreateTopic(cmd.Context(), t)
				if ifNotExists && errors.Is(err, client.ErrTopicExists) {
					return nil
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVar(&ifNotExists, "if-not-exists", false, "succeed when a topic already exists")
	return cmd
}

func (a *app) topicsDeleteCommand() *cobra.Command {
	var ifExists bool
	cmd := &cobra.Command{
		Use:     "delete TOPIC...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their messages (each one tried; an error line for each that fails)",
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.allTopics(cmd.Context(), args, func(c *client.Client, t string) error {
				err := c.DeleteTopic(cmd.Context(), t)
				if ifExists && errors.Is(err, client.ErrTopicNotFound) {
					return nil
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed when a topic does not exist")
	return cmd
}

// eachTopic connects and runs fn on every topic in turn, stopping at the
// first failure.
func (a *app) eachTopic(ctx context.Context, topics []string, fn func(*client.Client, string) error) error {
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if err := fn(c, t); err != nil {
			return onTopic(t, err)
		}
	}
	return nil
}

// allTopics connects and runs fn on every topic, also after one fails: a
// failure prints its error line and the run goes on with the next topic,
// unless the connection is gone. The exit code is the first failure's.
func (a *app) allTopics(ctx context.Context, topics []string, fn func(*client.Client, string) error) error {
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	code := exitOK
	for _, t := range topics {
		err := fn(c, t)
		if err == nil {
			continue
		}
		if errors.Is(err, client.ErrDisconnected) || errors.Is(err, context.Canceled) {
			return onTopic(t, err)
		}
		c, msg := a.describe(runError{onTopic(t, err)})
		fmt.Fprintln(a.stderr, "hrq: "+oneLine(msg))
		if code == exitOK {
			code = c
		}
	}
	if code != exitOK {
		return reportedError{code: code}
	}
	return nil
}

// topicInfo is what describe reports about a topic.
type topicInfo struct {
	Topic         string     `json:"topic"`
	Start         uint64     `json:"start"`
	End           uint64     `json:"end"`
	Messages      uint64     `json:"messages"`
	FirstAppended *time.Time `json:"first_appended"` // null when empty
	LastAppended  *time.Time `json:"last_appended"`
}

func (a *app) topicsDescribeCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show topics' offset ranges, sizes and the append times of their first and last messages",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			var infos []topicInfo
			var buf client.ConsumeBuffer
			err := a.eachTopic(cmd.Context(), args, func(c *client.Client, t string) error {
				info, err := describeTopic(cmd.Context(), c, t, &buf)
				infos = append(infos, info)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, infos)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tSTART\tEND\tMESSAGES\tFIRST APPENDED\tLAST APPENDED")
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", i.Topic, i.Start, i.End, i.Messages, timeText(i.FirstAppended), timeText(i.LastAppended))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func describeTopic(ctx context.Context, c *client.Client, topic string, buf *client.ConsumeBuffer) (topicInfo, error) {
	info := topicInfo{Topic: topic}
	start, end, err := c.Offsets(ctx, topic)
	if err != nil {
		return info, err
	}
	info.Start, info.End, info.Messages = start, end, end-start
	if end == start {
		return info, nil
	}
	for _, at := range []struct {
		off uint64
		dst **time.Time
	}{{start, &info.FirstAppended}, {end - 1, &info.LastAppended}} {
		msgs, err := c.Consume(ctx, topic, at.off, 1, buf, client.ConsumeMaxBytes(1))
		if errors.Is(err, client.ErrOffsetOutOfRange) {
			continue // truncated or deleted meanwhile
		}
		if err != nil {
			return info, err
		}
		if msgs.Len() == 1 {
			t := msgs.At(0).Time.UTC()
			*at.dst = &t
		}
	}
	return info, nil
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339Nano)
}

func (a *app) topicsTruncateCommand() *cobra.Command {
	var before string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "truncate TOPIC --before POSITION",
		Short: "Drop a topic's oldest messages, in whole segments",
		Long: `Drop the messages of TOPIC before a position: N (an offset), -N (keep the last N),
@RFC3339 or @-DURATION (appended before that time), or end (everything). The
broker drops whole segments only, so the new start may lie below the position
asked for; hrq prints it.`,
		Example: `  hrq topics truncate logs --before 100000
  hrq topics truncate logs --before -1000
  hrq topics truncate logs --before @-24h`,
		Args: args(cobra.ExactArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.truncate(cmd.Context(), args[0], before, asJSON)
		}),
	}
	cmd.Flags().StringVar(&before, "before", "", "drop the messages before this `POSITION` (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func (a *app) truncate(ctx context.Context, topic, before string, asJSON bool) error {
	if before == "" {
		return usagef("--before is required")
	}
	pos, err := parsePosition(before, time.Now())
	if err != nil {
		return usagef("--before %v", err)
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	var newStart, asked uint64
	if pos.kind == posTime {
		newStart, err = c.TruncateBeforeTime(ctx, topic, pos.t)
	} else {
		start, end, oerr := c.Offsets(ctx, topic)
		if oerr != nil {
			return onTopic(topic, oerr)
		}
		off, _ := pos.resolve(ctx, c, topic, start, end) // not posTime: no call
		asked = off
		newStart, err = c.TruncateBefore(ctx, topic, off)
	}
	if err != nil {
		return onTopic(topic, err)
	}
	if asJSON {
		return writeJSON(a.stdout, map[string]any{"topic": topic, "start": newStart})
	}
	fmt.Fprintf(a.stdout, "%s now starts at offset %d\n", topic, newStart)
	if newStart < asked {
		fmt.Fprintf(a.stderr, "hrq: note: offsets %d to %d stay: the broker drops whole segments only, and the segment holding offset %d starts at %d (the broker's -segment-bytes sets their size)\n",
			newStart, asked-1, asked, newStart)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
