package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/cluster"
)

// clusterAdminCommands are the membership commands (README "Cluster":
// adding, replacing and removing brokers).
func (a *app) clusterAdminCommands() []*cobra.Command {
	var peers string
	send := func(cmd *cobra.Command, req *cluster.AdminRequest) error {
		if peers == "" {
			return usagef("--peers is required")
		}
		if err := a.clusterAdmin(cmd.Context(), peers, req); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s: done; the Raft groups follow (hrq cluster status shows learners and retiring replicas until they do)\n", req.Op)
		return nil
	}
	id := func(s string) (uint64, error) {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v == 0 {
			return 0, usagef("node id %q: want 1, 2, ...", s)
		}
		return v, nil
	}
	add := &cobra.Command{
		Use:   "add-node ID=HOST:PORT --peers HOST:PORT,...",
		Short: "Add a node to the cluster (then start it with -join)",
		Long: `Add node ID, whose cluster listener is at HOST:PORT, to the cluster's members: it
joins the metadata group (as a learner until it caught up, then as a voter) and new
topics may be placed on it. Start the new broker with -node-id ID -join and -peers
naming itself and the running nodes. Move replicas to it with move-replica.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: action(func(cmd *cobra.Command, argv []string) error {
			ids, addr, ok := strings.Cut(argv[0], "=")
			if !ok || addr == "" {
				return usagef("want ID=HOST:PORT, got %q", argv[0])
			}
			n, err := id(ids)
			if err != nil {
				return err
			}
			return send(cmd, &cluster.AdminRequest{Op: "add-node", Node: n, Addr: addr})
		}),
	}
	remove := &cobra.Command{
		Use:   "remove-node ID --peers HOST:PORT,...",
		Short: "Remove a node that holds no replica from the cluster",
		Long: `Remove node ID from the cluster's members and its metadata group. It must hold no
replica: move them away with move-replica first (the command names the topics it
still holds). Stop the broker afterwards.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: action(func(cmd *cobra.Command, argv []string) error {
			n, err := id(argv[0])
			if err != nil {
				return err
			}
			return send(cmd, &cluster.AdminRequest{Op: "remove-node", Node: n})
		}),
	}
	move := &cobra.Command{
		Use:   "move-replica TOPIC FROM TO --peers HOST:PORT,...",
		Short: "Move a topic's replica from node FROM to node TO",
		Long: `Move TOPIC's replica from node FROM to node TO (a member that does not hold it):
TO joins the topic's Raft group as a learner and catches up, then one configuration
change makes it a voter and removes FROM, which then deletes its copy. FROM may be
down (replacing a dead broker): the others are a majority of both configurations.`,
		Args: args(cobra.ExactArgs(3)),
		RunE: action(func(cmd *cobra.Command, argv []string) error {
			from, err := id(argv[1])
			if err != nil {
				return err
			}
			to, err := id(argv[2])
			if err != nil {
				return err
			}
			return send(cmd, &cluster.AdminRequest{Op: "move-replica", Topic: argv[0], From: from, To: to})
		}),
	}
	for _, c := range []*cobra.Command{add, remove, move} {
		c.Flags().StringVar(&peers, "peers", "", "cluster `addresses` of running nodes, comma-separated (ID=HOST:PORT or HOST:PORT): the first that answers runs the command")
	}
	return []*cobra.Command{add, remove, move}
}

// clusterAdmin sends req to the first node of peers that answers. A
// refusal (the command's error) is final; an unreachable node is skipped.
func (a *app) clusterAdmin(ctx context.Context, peers string, req *cluster.AdminRequest) error {
	var errs []error
	for _, addr := range peerAddrs(peers) {
		c, cancel := context.WithTimeout(ctx, a.dialTimeout+40*time.Second)
		err := cluster.SendAdmin(c, addr, req)
		cancel()
		if err == nil {
			return nil
		}
		var refused *cluster.AdminError
		if errors.As(err, &refused) {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("no node answered: %w", errors.Join(errs...))
}
