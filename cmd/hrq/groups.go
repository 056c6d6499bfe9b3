package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
)

// consumeGroup is hrq consume --group: it reads as a member of the group,
// writes each message, and acks a fetch's messages once they are written
// out (stdout flushed). Without --follow it stops when the group has
// nothing to deliver; -n stops after N messages. On the way out it leaves
// the group, so what it fetched and did not write goes to other members at
// once.
func (a *app) consumeGroup(ctx context.Context, topic string, f *consumeFlags) error {
	if f.skip {
		return usagef("--skip-corrupt does not apply to --group")
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
	start, err := groupStart(ctx, c, topic, from)
	if err != nil {
		return onTopic(topic, err)
	}
	opts := []client.GroupOption{client.GroupStart(start), client.GroupAckBatch(1<<20, time.Hour), client.GroupWait(f.wait)}
	if !f.follow {
		opts = append(opts, client.GroupUntilIdle(), client.GroupWait(min(f.wait, time.Second)))
	}
	if host, err := os.Hostname(); err == nil {
		opts = append(opts, client.GroupMemberName("hrq@"+host+"/"+strconv.Itoa(os.Getpid())))
	}
	gc := client.NewGroupConsumer(c, f.group, topic, opts...)
	var printed []client.GroupMessage
	// ackPrinted writes out what was printed, then acks it and waits for
	// the broker's confirmation.
	ackPrinted := func() error {
		if err := out.Flush(); err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
		for _, m := range printed {
			m.Ack()
		}
		printed = printed[:0]
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return gc.Flush(fctx)
	}
	n := 0
	var runErr error
	for m, err := range gc.Messages(ctx) {
		if err != nil {
			if !client.IsRetriable(err) && !errors.Is(err, client.ErrNotLeased) && !errors.Is(err, client.ErrStaleMember) {
				runErr = onTopic(topic, err)
				break
			}
			fmt.Fprintf(a.stderr, "hrq: %s; retrying\n", oneLine(err.Error()))
			continue
		}
		if err := pr.print(&m.Message); err != nil {
			runErr = err
			break
		}
		printed = append(printed, m)
		n++
		if f.count > 0 && n >= f.count {
			break
		}
		if m.Remaining() == 0 {
			if runErr = ackPrinted(); runErr != nil {
				break
			}
		}
	}
	if err := ackPrinted(); runErr == nil {
		runErr = err
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	gc.Close(lctx) // leave: what was fetched and not printed goes to others now
	if f.follow && ctx.Err() != nil && runErr == nil {
		return nil // the way to end --follow
	}
	if runErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return runErr
}

// groupStart maps --from to where a new group starts.
func groupStart(ctx context.Context, c *client.Client, topic string, p position) (client.GroupPosition, error) {
	switch p.kind {
	case posBeginning:
		return client.GroupEarliest(), nil
	case posEnd:
		return client.GroupLatest(), nil
	case posTime:
		return client.GroupTime(p.t), nil
	}
	start, end, err := c.Offsets(ctx, topic)
	if err != nil {
		return client.GroupPosition{}, err
	}
	off, err := p.resolve(ctx, c, topic, start, end)
	return client.GroupOffset(off), err
}

func (a *app) groupsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List, describe, move and delete consumer groups",
		Long: `A consumer group is a durable cursor on a topic whose members share its
messages (hrq consume TOPIC --group G is a member). These commands manage groups.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.groupsListCommand(), a.groupsDescribeCommand(), a.groupsSeekCommand(), a.groupsDeleteCommand())
	return cmd
}

func (a *app) groupsListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [TOPIC]",
		Aliases: []string{"ls"},
		Short:   "Print the groups (of TOPIC, or of every topic) with committed offset, lag and members",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			topic := ""
			if len(args) == 1 {
				topic = args[0]
			}
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			groups, err := c.ListGroups(cmd.Context(), topic)
			if err != nil {
				return onTopic(topic, err)
			}
			if asJSON {
				type row struct {
					Topic     string `json:"topic"`
					Group     string `json:"group"`
					Committed uint64 `json:"committed"`
					Lag       uint64 `json:"lag"`
					Members   int    `json:"members"`
				}
				rows := make([]row, len(groups))
				for i, g := range groups {
					rows[i] = row{g.Topic, g.Group, g.Committed, g.Lag, g.Members}
				}
				return writeJSON(a.stdout, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tGROUP\tCOMMITTED\tLAG\tMEMBERS")
			for _, g := range groups {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", g.Topic, g.Group, g.Committed, g.Lag, g.Members)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func (a *app) groupsDescribeCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe TOPIC GROUP",
		Short: "Print a group's committed offset, lag, members, in-flight, redeliveries and dead-lettered",
		Args:  args(cobra.ExactArgs(2)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			d, err := c.DescribeGroup(cmd.Context(), args[1], args[0])
			if err != nil {
				return groupErr(args[0], args[1], err)
			}
			if asJSON {
				return writeJSON(a.stdout, describeJSON(d))
			}
			return printDescription(a.stdout, d)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func (a *app) groupsSeekCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "seek TOPIC GROUP --to POSITION",
		Short: "Move a group: its members go on from POSITION (acks above it are forgotten)",
		Long: `Move a group's committed offset to POSITION: ` + positionHelp + `.
Every lease is dropped and the acks above the new position are forgotten: the
members fetch again from there.`,
		Example: `  hrq groups seek events workers --to beginning
  hrq groups seek events workers --to @-1h`,
		Args: args(cobra.ExactArgs(2)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			p, err := parsePosition(to, time.Now())
			if err != nil {
				return usagef("--to %v", err)
			}
			ctx := cmd.Context()
			c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			pos, err := groupStart(ctx, c, args[0], p)
			if err != nil {
				return onTopic(args[0], err)
			}
			committed, err := c.SeekGroup(ctx, args[1], args[0], pos)
			if err != nil {
				return groupErr(args[0], args[1], err)
			}
			fmt.Fprintf(a.stdout, "group %q of topic %q now at offset %d\n", args[1], args[0], committed)
			return nil
		}),
	}
	cmd.Flags().StringVar(&to, "to", "", "where the group goes: "+positionHelp)
	cmd.MarkFlagRequired("to")
	return cmd
}

func (a *app) groupsDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOPIC GROUP",
		Short: "Delete a group and its stored progress",
		Args:  args(cobra.ExactArgs(2)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			return groupErr(args[0], args[1], c.DeleteGroup(cmd.Context(), args[1], args[0]))
		}),
	}
}

// groupNotFound names the group a GroupNotFound error is about.
type groupNotFound struct {
	topic, group string
	err          error
}

func (e groupNotFound) Error() string {
	return fmt.Sprintf("group %q of topic %q not found (hrq groups list %s shows its groups)", e.group, e.topic, e.topic)
}
func (e groupNotFound) Unwrap() error { return e.err }

// groupErr wraps a group call's error with what it is about.
func groupErr(topic, group string, err error) error {
	if errors.Is(err, client.ErrGroupNotFound) {
		return groupNotFound{topic, group, err}
	}
	return onTopic(topic, err)
}

type describeOut struct {
	Topic         string      `json:"topic"`
	Group         string      `json:"group"`
	Committed     uint64      `json:"committed"`
	Start         uint64      `json:"start"`
	End           uint64      `json:"end"`
	Lag           uint64      `json:"lag"`
	InFlight      uint64      `json:"in_flight"`
	Acked         uint64      `json:"acked_above_committed"`
	Delivered     uint64      `json:"delivered"`
	Redeliveries  uint64      `json:"redeliveries"`
	Expired       uint64      `json:"expired_leases"`
	DeadLettered  uint64      `json:"dead_lettered"`
	Skipped       uint64      `json:"skipped"`
	Epoch         uint64      `json:"epoch"`
	Exclusive     bool        `json:"exclusive"`
	AckWaitMillis int64       `json:"ack_wait_ms"`
	MaxDeliveries int         `json:"max_deliveries"`
	DeadLetter    string      `json:"dead_letter_topic"`
	Members       []memberOut `json:"members"`
}

type memberOut struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	InFlight uint64 `json:"in_flight"`
	LastSeen string `json:"last_seen"`
	Holder   bool   `json:"holder"`
}

func describeJSON(d client.GroupDescription) describeOut {
	o := describeOut{Topic: d.Topic, Group: d.Group, Committed: d.Committed, Start: d.Start, End: d.End,
		Lag: d.Lag, InFlight: d.InFlight, Acked: d.Acked, Delivered: d.Delivered, Redeliveries: d.Redeliveries,
		Expired: d.Expired, DeadLettered: d.DeadLettered, Skipped: d.Skipped, Epoch: d.Epoch,
		Exclusive: d.Exclusive, AckWaitMillis: d.AckWait.Milliseconds(), MaxDeliveries: d.MaxDeliveries,
		DeadLetter: d.DeadLetter, Members: []memberOut{}}
	for _, m := range d.Members {
		mo := memberOut{ID: strconv.FormatUint(m.ID, 16), Name: m.Name, InFlight: m.InFlight, Holder: m.Holder}
		if !m.LastSeen.IsZero() {
			mo.LastSeen = m.LastSeen.UTC().Format(time.RFC3339Nano)
		}
		o.Members = append(o.Members, mo)
	}
	return o
}

func printDescription(w interface{ Write([]byte) (int, error) }, d client.GroupDescription) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	mode := "shared"
	if d.Exclusive {
		mode = "exclusive"
	}
	maxDel := "unlimited"
	if d.MaxDeliveries > 0 {
		maxDel = strconv.Itoa(d.MaxDeliveries)
	}
	dead := d.DeadLetter
	if dead == "" {
		dead = "-"
	}
	for _, kv := range [][2]string{
		{"topic", d.Topic}, {"group", d.Group}, {"mode", mode},
		{"committed", strconv.FormatUint(d.Committed, 10)},
		{"topic range", fmt.Sprintf("[%d, %d)", d.Start, d.End)},
		{"lag", strconv.FormatUint(d.Lag, 10)},
		{"in flight", strconv.FormatUint(d.InFlight, 10)},
		{"acked above committed", strconv.FormatUint(d.Acked, 10)},
		{"redeliveries", strconv.FormatUint(d.Redeliveries, 10)},
		{"expired leases", strconv.FormatUint(d.Expired, 10)},
		{"dead-lettered", strconv.FormatUint(d.DeadLettered, 10)},
		{"skipped (retention)", strconv.FormatUint(d.Skipped, 10)},
		{"epoch", strconv.FormatUint(d.Epoch, 10)},
		{"ack-wait", d.AckWait.String()},
		{"max deliveries", maxDel},
		{"dead-letter topic", dead},
		{"members", strconv.Itoa(len(d.Members))},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if len(d.Members) > 0 {
		fmt.Fprintln(tw, "\nMEMBER\tNAME\tIN FLIGHT\tLAST SEEN\tHOLDER")
		for _, m := range d.Members {
			seen := "-"
			if !m.LastSeen.IsZero() {
				seen = time.Since(m.LastSeen).Round(time.Millisecond).String() + " ago"
			}
			holder := ""
			if m.Holder {
				holder = "yes"
			}
			name := m.Name
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(tw, "%x\t%s\t%d\t%s\t%s\n", m.ID, name, m.InFlight, seen, holder)
		}
	}
	return tw.Flush()
}
