package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/cluster"
)

func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect a cluster of brokers (DESIGN.md \"Replication\")"}
	var peers string
	var asJSON bool
	status := &cobra.Command{
		Use:   "status --peers HOST:PORT,...",
		Short: "Show the nodes, each topic's leader and term, and each replica's end offset and lag",
		Long: `Ask every node given by --peers (the addresses of their cluster listeners, as in
the brokers' -peers, with or without the "ID=" prefixes) for its status and print
one line per node, then one line per topic: its leader and term, the commit index,
and per replica its end offset and its lag behind the leader's log in Raft entries
(commit index minus the replica's match index, as the leader knows it).`,
		Args: args(cobra.NoArgs),
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if peers == "" {
				return usagef("--peers is required")
			}
			return a.clusterStatus(cmd.Context(), peers, asJSON)
		}),
	}
	status.Flags().StringVar(&peers, "peers", "", "the nodes' cluster `addresses`, comma-separated (ID=HOST:PORT or HOST:PORT)")
	status.Flags().BoolVar(&asJSON, "json", false, "print every node's status as a JSON array")
	cmd.AddCommand(status)
	cmd.AddCommand(a.clusterAdminCommands()...)
	return cmd
}

// peerAddrs splits --peers: ID=HOST:PORT or HOST:PORT, comma-separated.
func peerAddrs(peers string) []string {
	var addrs []string
	for _, p := range strings.Split(peers, ",") {
		p = strings.TrimSpace(p)
		if _, addr, ok := strings.Cut(p, "="); ok {
			p = addr
		}
		if p != "" {
			addrs = append(addrs, p)
		}
	}
	return addrs
}

func joinIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

func (a *app) clusterStatus(ctx context.Context, peers string, asJSON bool) error {
	addrs := peerAddrs(peers)
	var sts []*cluster.Status
	var errs []string
	for _, addr := range addrs {
		c, cancel := context.WithTimeout(ctx, a.dialTimeout+5*time.Second)
		s, err := cluster.FetchStatus(c, addr)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", addr, err))
			continue
		}
		sts = append(sts, s)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sts); err != nil {
			return err
		}
	} else {
		printClusterStatus(a, sts, errs)
	}
	if len(sts) == 0 {
		return fmt.Errorf("no node answered: %s", strings.Join(errs, "; "))
	}
	return nil
}

func printClusterStatus(a *app, sts []*cluster.Status, errs []string) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tPEERS UP\tMETA LEADER\tTERM\tMEMBERS")
	for _, s := range sts {
		var up []string
		for id, ok := range s.PeersUp {
			if ok {
				up = append(up, fmt.Sprint(id))
			}
		}
		sort.Strings(up)
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\n", s.Node, strings.Join(up, ","), s.Meta.Leader, s.Meta.Term, joinIDs(s.Members))
	}
	for _, e := range errs {
		fmt.Fprintf(w, "?\tunreachable: %s\t\t\n", e)
	}
	w.Flush()
	// Per topic: the leader's view (highest term) plus each replica's end.
	type view struct {
		lead cluster.GroupStatus
		ends map[uint64]uint64
	}
	topics := map[string]*view{}
	for _, s := range sts {
		for _, g := range s.Topics {
			v := topics[g.Topic]
			if v == nil {
				v = &view{ends: map[uint64]uint64{}}
				topics[g.Topic] = v
			}
			if g.Role != "not a replica" {
				v.ends[s.Node] = g.End
			}
			if g.Role == "StateLeader" && g.Term >= v.lead.Term || v.lead.Group == 0 {
				v.lead = g
			}
		}
	}
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(a.stdout)
	w = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tLEADER\tTERM\tCOMMIT\tREPLICAS (NODE:END/LAG)")
	for _, n := range names {
		v := topics[n]
		var reps []string
		for _, id := range v.lead.Replicas {
			end, ok := v.ends[id]
			e := "?"
			if ok {
				e = fmt.Sprint(end)
			}
			lag := "?"
			if m, ok := v.lead.Match[id]; ok && v.lead.Commit >= m {
				lag = fmt.Sprint(v.lead.Commit - m)
			} else if ok {
				lag = "0"
			}
			reps = append(reps, fmt.Sprintf("%d:%s/%s", id, e, lag))
		}
		leader := "none"
		if v.lead.Leader != 0 {
			leader = fmt.Sprint(v.lead.Leader)
		}
		if len(v.lead.Learners) > 0 {
			reps = append(reps, "learners:"+joinIDs(v.lead.Learners))
		}
		if len(v.lead.Retiring) > 0 {
			reps = append(reps, "retiring:"+joinIDs(v.lead.Retiring))
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", n, leader, v.lead.Term, v.lead.Commit, strings.Join(reps, " "))
	}
	w.Flush()
}
