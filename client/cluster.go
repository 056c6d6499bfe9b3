package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
)

// A broker address may be a seed list: "tcp://a:4353,b:4353,c:4353" (the
// scheme of the first applies to the rest), the nodes of a cluster
// (DESIGN.md "Replication"). Every node of a cluster takes produces and
// consumes for the topics it replicates, so the client connects to any
// node that answers: each dial (the first and every redial) tries the
// seeds from a random one on, in turn, until one connects. A node that
// dies is left at the next redial.

// seeds splits a seed list; a single address is a list of one.
func seeds(addr string) []string {
	if !strings.Contains(addr, ",") {
		return []string{addr}
	}
	parts := strings.Split(addr, ",")
	scheme := ""
	if i := strings.Index(parts[0], "://"); i >= 0 {
		scheme = parts[0][:i+3]
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if scheme != "" && !strings.Contains(p, "://") {
			p = scheme + p
		}
		out = append(out, p)
	}
	return out
}

// dialAny dials the first seed of addr that connects.
func dialAny(ctx context.Context, addr string, cfg *config) (*conn, error) {
	list := seeds(addr)
	if len(list) == 1 {
		return dialConn1(ctx, list[0], cfg)
	}
	first := rand.IntN(len(list))
	var err error
	for i := range list {
		var cn *conn
		cn, err = dialConn1(ctx, list[(first+i)%len(list)], cfg)
		if err == nil {
			return cn, nil
		}
		if errors.Is(err, ErrBadAddress) || errors.Is(err, ErrBadOption) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}
