package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"

	"github.com/haraqa/haraqa/cluster"
	"github.com/haraqa/haraqa/kafka"
	"github.com/haraqa/haraqa/logsvc"
)

// kafkaConfig is the Kafka listener's part of the configuration.
type kafkaConfig struct {
	addr      string // -kafka-addr: empty, no Kafka listener
	advertise string // -kafka-advertise: host:port named in Metadata
}

func kafkaFlags(fs *flag.FlagSet, k *kafkaConfig) {
	fs.StringVar(&k.addr, "kafka-addr", "", "TCP `address` to serve the Kafka protocol on, e.g. 127.0.0.1:9092 (empty: none); TLS as -addr")
	fs.StringVar(&k.advertise, "kafka-advertise", "", "`host:port` Kafka clients are told to connect to (empty: the address they connected to; in a cluster the other nodes name the -kafka-addr address, its host from -peers when it binds every interface)")
}

// kafkaFront is the running Kafka listener, if any.
type kafkaFront struct {
	ln  net.Listener
	srv *kafka.Server
}

// listenKafka binds -kafka-addr (before the engine opens, as the other
// listeners are), with the TCP listener's TLS.
func listenKafka(c *config) (*kafkaFront, error) {
	if c.kafka.addr == "" {
		return nil, nil
	}
	if c.kafka.advertise != "" {
		if _, _, err := net.SplitHostPort(c.kafka.advertise); err != nil {
			return nil, fmt.Errorf("-kafka-advertise %s: %w", c.kafka.advertise, err)
		}
	}
	l, err := net.Listen("tcp", c.kafka.addr)
	if err != nil {
		return nil, fmt.Errorf("-kafka-addr %s: %w", c.kafka.addr, err)
	}
	if t := c.sec.nativeTLS(); t != nil {
		l = tls.NewListener(l, t)
	}
	return &kafkaFront{ln: l}, nil
}

// serve starts serving the Kafka protocol on svc; errors go to errc.
func (k *kafkaFront) serve(c *config, svc logsvc.Service, log *slog.Logger, errc chan<- error) {
	if k == nil {
		return
	}
	opts := kafka.Options{AdvertisedAddr: c.kafka.advertise, MaxConns: c.maxConns, MaxInFlight: c.maxInFlight,
		IdleTimeout: c.idleTimeout, MaxWait: c.maxWait, AutoCreateTopics: c.autoCreate, Logger: log,
		MaxInFlightBytes: c.maxInFlightBytes,
		Token:            c.token, Auth: c.sec.auth}
	if fg, ok := svc.(interface{ ForwardingGroups() logsvc.Groups }); ok {
		// A cluster node: a Kafka group's commits run on each topic's
		// leader, whichever node the client talks to.
		opts.Groups = fg.ForwardingGroups()
	}
	node, _ := svc.(*cluster.Node)
	if node != nil {
		// One node (the metadata group's leader) coordinates the Kafka
		// groups; the others forward the group requests to it, with the
		// client's key under -auth-file (the coordinator applies its
		// permissions).
		opts.GroupForward = func() kafka.GroupForwardFunc {
			if f := node.KafkaGroupForward(); f != nil {
				return f
			}
			return nil
		}
	}
	if node != nil && c.cluster.nodeID <= math.MaxInt32 {
		// Metadata names every live node with a Kafka listener and each
		// topic's leader (kafkameta.go); node ids are the cluster's.
		opts.NodeID = int32(c.cluster.nodeID)
		opts.Cluster = func(ctx context.Context) (kafka.ClusterView, error) {
			v, err := node.KafkaView(ctx)
			return kafkaView(v), err
		}
	}
	k.srv = kafka.New(svc, opts)
	if node != nil {
		node.SetKafka(k.srv.ServeForwarded)
		if opts.Cluster != nil {
			node.AnnounceKafka(k.advertiseAddr(c))
		}
	}
	log.Info("serving Kafka", "addr", k.ln.Addr().String(), "advertise", c.kafka.advertise,
		"sasl_plain", c.token != "" || c.sec.auth != nil, "permissions", c.sec.auth != nil)
	go func() { errc <- k.srv.Serve(k.ln) }()
}

// advertiseAddr is the Kafka address this node tells the cluster:
// -kafka-advertise, else the listener's address, its host taken from this
// node's -peers address when the listener binds every interface.
func (k *kafkaFront) advertiseAddr(c *config) string {
	if c.kafka.advertise != "" {
		return c.kafka.advertise
	}
	a, ok := k.ln.Addr().(*net.TCPAddr)
	if !ok || !a.IP.IsUnspecified() {
		return k.ln.Addr().String()
	}
	host, _, err := net.SplitHostPort(c.cluster.peerMap[c.cluster.nodeID])
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// kafkaView maps the cluster's view onto Kafka's: node ids above 2^31-1
// (Kafka's are int32) and nodes down or without a Kafka listener are not
// named as brokers; a topic's in-sync replicas are those not down.
func kafkaView(v cluster.KafkaView) kafka.ClusterView {
	var kv kafka.ClusterView
	down := map[uint64]bool{}
	for _, n := range v.Nodes {
		down[n.ID] = n.Down
		if n.ID != v.Self && n.ID <= math.MaxInt32 && n.Addr != "" && !n.Down {
			kv.Brokers = append(kv.Brokers, kafka.ClusterBroker{ID: int32(n.ID), Addr: n.Addr})
		}
	}
	kv.Partitions = make(map[string]kafka.ClusterPartition, len(v.Topics))
	for name, t := range v.Topics {
		p := kafka.ClusterPartition{Leader: -1}
		if t.Leader != 0 && t.Leader <= math.MaxInt32 && !down[t.Leader] {
			p.Leader = int32(t.Leader)
		}
		for _, r := range t.Replicas {
			if r > math.MaxInt32 {
				continue
			}
			p.Replicas = append(p.Replicas, int32(r))
			if down[r] {
				p.Offline = append(p.Offline, int32(r))
			} else {
				p.ISR = append(p.ISR, int32(r))
			}
		}
		kv.Partitions[name] = p
	}
	return kv
}

func (k *kafkaFront) shutdown(ctx context.Context, log *slog.Logger) {
	if k == nil {
		return
	}
	if k.srv == nil {
		k.ln.Close()
		return
	}
	if err := k.srv.Shutdown(ctx); err != nil {
		log.Warn("Kafka shutdown cut short: connections closed with requests unanswered", "err", err)
	}
}

func isKafkaClosed(err error) bool { return errors.Is(err, kafka.ErrServerClosed) }
