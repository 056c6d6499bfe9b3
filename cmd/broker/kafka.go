package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

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
	fs.StringVar(&k.advertise, "kafka-advertise", "", "`host:port` Kafka clients are told to connect to (empty: the address they connected to)")
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
	if node != nil && opts.Auth == nil {
		// One node (the metadata group's leader) coordinates the Kafka
		// groups; the others forward the group requests to it.
		opts.GroupForward = func() kafka.GroupForwardFunc {
			if f := node.KafkaGroupForward(); f != nil {
				return f
			}
			return nil
		}
	}
	k.srv = kafka.New(svc, opts)
	if node != nil {
		node.SetKafka(k.srv.ServeForwarded)
	}
	log.Info("serving Kafka", "addr", k.ln.Addr().String(), "advertise", c.kafka.advertise,
		"sasl_plain", c.token != "" || c.sec.auth != nil, "permissions", c.sec.auth != nil)
	go func() { errc <- k.srv.Serve(k.ln) }()
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
