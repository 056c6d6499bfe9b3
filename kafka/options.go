package kafka

import (
	"context"
	"crypto/tls"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/logsvc"
	"log/slog"
	"time"
)

// Options configures a Server. The zero value works.
type Options struct {
	// AdvertisedAddr is the host:port the broker names in Metadata and
	// FindCoordinator answers. Empty: the local address of the connection
	// the request came on, so a client reaches the broker the way it did.
	AdvertisedAddr string
	// NodeID is the broker's Kafka node id (default 0).
	NodeID int32
	// ClusterID is named in Metadata answers (default "haraqa").
	ClusterID string
	// MaxFrame caps a Produce request frame (default 16 MiB). A frame
	// above its limit closes the connection, as Kafka's broker does.
	MaxFrame int32
	// MaxOtherFrame caps the frame of every other request (default 1 MiB):
	// they carry names and offsets, not records.
	MaxOtherFrame int32
	// MaxBatchBytes caps a produce batch after decompression (default
	// MaxFrame). A batch above it is refused with MESSAGE_TOO_LARGE.
	MaxBatchBytes int
	// MaxInFlightBytes caps the request frames held by all connections
	// together (default 512 MiB, at least MaxFrame): a connection whose
	// next frame does not fit waits, unread, until answers free room.
	MaxInFlightBytes int64
	// MaxConns caps open connections (default 10,000); past it a new
	// connection is closed at once.
	MaxConns int
	// MaxGroupMembers caps the members the listener's consumer groups
	// hold together (default 10,000); past it a JoinGroup that would add
	// one is answered GROUP_MAX_SIZE_REACHED.
	MaxGroupMembers int
	// MaxGroupBytes caps the protocol metadata and assignments the
	// listener's consumer groups hold together (default 64 MiB): each
	// JoinGroup may carry up to MaxOtherFrame of them, and a leader's
	// SyncGroup as much again. A JoinGroup or SyncGroup that would pass it
	// is answered GROUP_MAX_SIZE_REACHED and nothing it carries is kept.
	MaxGroupBytes int
	// MaxInFlight caps requests being handled per connection (default 64);
	// the connection is not read further until one is answered.
	MaxInFlight int
	// IdleTimeout closes a connection that starts no request for this long
	// while none is in flight (default 10 minutes, Kafka's
	// connections.max.idle.ms).
	IdleTimeout time.Duration
	// ReadTimeout bounds reading the rest of a frame once its size arrived
	// (default 30 seconds).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response (default 30 seconds).
	WriteTimeout time.Duration
	// MaxWait caps a Fetch's max wait (default 30 seconds).
	MaxWait time.Duration
	// MaxFetchBytes caps the record bytes of one Fetch answer (default
	// 32 MiB; at least one batch is always sent).
	MaxFetchBytes int32
	// AutoCreateTopics creates a topic named by a Produce or Metadata
	// request (Kafka's auto.create.topics.enable).
	AutoCreateTopics bool
	// Token, when set, is the password a client must give in SASL/PLAIN
	// before any request but ApiVersions (auth.go).
	Token string
	// Auth, when set, identifies each client by its SASL/PLAIN password
	// (a token the file lists) or its TLS client certificate, and checks
	// each request against its permissions (auth.go); Token is then not
	// consulted (auth.Load takes it).
	Auth *auth.Authorizer
	// TLS, when set, serves TLS on every accepted connection.
	TLS *tls.Config
	// Groups, when set, serves the consumer-group calls in place of the
	// log service's own (a cluster node's ForwardingGroups, which runs a
	// topic's group calls on its leader).
	Groups logsvc.Groups
	// GroupForward, when set (a cluster node), returns how to reach the
	// listener that coordinates the Kafka groups, nil when it is this one:
	// the group requests are forwarded there (forward.go). With Auth they
	// go with the client's key, and the coordinating listener applies
	// that client's permissions from its own auth file (every node must
	// load the same one).
	GroupForward func() GroupForwardFunc
	// Cluster, when set (a cluster node), returns the cluster's view:
	// Metadata answers then name the other live nodes with a Kafka
	// listener as brokers and each topic's leader and replicas, so
	// clients send each topic's requests to its leader (cluster.go).
	// NodeID must then be the node's cluster id.
	Cluster func(context.Context) (ClusterView, error)
	// Logger receives connection errors (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ClusterID == "" {
		o.ClusterID = "haraqa"
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 16 << 20
	}
	if o.MaxOtherFrame <= 0 {
		o.MaxOtherFrame = 1 << 20
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = 512 << 20
	}
	o.MaxInFlightBytes = max(o.MaxInFlightBytes, int64(o.MaxFrame))
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = int(o.MaxFrame)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	if o.MaxGroupMembers <= 0 {
		o.MaxGroupMembers = 10000
	}
	if o.MaxGroupBytes <= 0 {
		o.MaxGroupBytes = 64 << 20
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.MaxFetchBytes <= 0 {
		o.MaxFetchBytes = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
