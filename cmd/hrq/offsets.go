package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
)

func (a *app) offsetsCommand() *cobra.Command {
	var at string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "offsets TOPIC...",
		Short: `Print each topic's valid offset range: "TOPIC START END", END being the next offset`,
		Long: `Print "TOPIC START END" for each topic: messages START..END-1 can be read and
END is the offset the next message gets. With --at TIME print "TOPIC OFFSET",
the first offset appended at or after TIME (@RFC3339 or @-DURATION; END when
every message is older).`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.offsets(cmd.Context(), args, at, asJSON)
		}),
	}
	cmd.Flags().StringVar(&at, "at", "", "print the first offset appended at or after this `TIME`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

type offsetsInfo struct {
	Topic  string  `json:"topic"`
	Start  uint64  `json:"start"`
	End    uint64  `json:"end"`
	Offset *uint64 `json:"offset,omitempty"` // with --at
}

func (a *app) offsets(ctx context.Context, topics []string, at string, asJSON bool) error {
	var when time.Time
	if at != "" {
		pos, err := parsePosition("@"+trimAt(at), time.Now())
		if err != nil {
			return usagef("--at %v", err)
		}
		when = pos.t
	}
	var infos []offsetsInfo
	err := a.eachTopic(ctx, topics, func(c *client.Client, t string) error {
		start, end, err := c.Offsets(ctx, t)
		if err != nil {
			return err
		}
		info := offsetsInfo{Topic: t, Start: start, End: end}
		if at != "" {
			off, err := c.OffsetAt(ctx, t, when)
			if err != nil {
				return err
			}
			info.Offset = &off
		}
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, infos)
	}
	for _, i := range infos {
		if i.Offset != nil {
			fmt.Fprintf(a.stdout, "%s %d\n", i.Topic, *i.Offset)
		} else {
			fmt.Fprintf(a.stdout, "%s %d %d\n", i.Topic, i.Start, i.End)
		}
	}
	return nil
}

// trimAt drops the optional @ of a time flag.
func trimAt(s string) string {
	if len(s) > 0 && s[0] == '@' {
		return s[1:]
	}
	return s
}
