package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
)

func (a *app) watchCommand() *cobra.Command {
	var count int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch TOPIC...",
		Short: `Print "TOPIC START END" whenever a topic's offset range changes`,
		Long: `Print each topic's current range, then a line "TOPIC START END" whenever it
changes (changes may coalesce), until interrupted (exit 0) or -n lines were
printed. A deleted topic ends the watch with exit code 4.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			return a.watch(cmd.Context(), args, count, asJSON)
		}),
	}
	cmd.Flags().IntVarP(&count, "count", "n", 0, "exit after `N` lines (0: no limit)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON objects, one per line")
	return cmd
}

func (a *app) watch(ctx context.Context, topics []string, count int, asJSON bool) error {
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	events, err := c.Watch(ctx, topics...)
	if err != nil {
		return onTopic(watchedTopic(ctx, c, topics), err)
	}
	enc := json.NewEncoder(a.stdout)
	for n := 0; count == 0 || n < count; n++ {
		ev, ok := <-events
		if !ok {
			return nil // ctx ended: the way to stop a watch
		}
		if ev.Err != nil {
			return onTopic(watchedTopic(ctx, c, topics), ev.Err)
		}
		if asJSON {
			err = enc.Encode(map[string]any{"topic": ev.Topic, "start": ev.Start, "end": ev.End})
		} else {
			_, err = fmt.Fprintf(a.stdout, "%s %d %d\n", ev.Topic, ev.Start, ev.End)
		}
		if err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
	}
	return nil
}

// watchedTopic names the first of topics that does not exist, for the
// error message of a watch that failed; "?" when it cannot tell.
func watchedTopic(ctx context.Context, c *client.Client, topics []string) string {
	if len(topics) == 1 {
		return topics[0]
	}
	for _, t := range topics {
		if _, _, err := c.Offsets(ctx, t); err != nil {
			return t
		}
	}
	return "?"
}
