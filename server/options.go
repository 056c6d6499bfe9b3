package server

import (
	"log/slog"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/netproto"
)

// ConsumeMode selects how batch bytes leave the broker.
type ConsumeMode int

const (
	// ConsumeWritev (the default) writes the response header and the
	// memory-mapped batch bytes with one writev: the kernel copies straight
	// from the page cache mapping into the socket, no user-space copy.
	ConsumeWritev ConsumeMode = iota
	// ConsumeSendfile writes the header, then sendfile(2)s the batch bytes
	// from the segment file. It falls back to writev on a fake file system.
	ConsumeSendfile
)

// Options configures a Server. The zero value works.
type Options struct {
	// MaxBody caps a request frame's body (default netproto.DefaultMaxBody).
	MaxBody uint32
	// MaxConns caps open connections (default 10,000); past it a new
	// connection gets one TooBusy error frame and is closed.
	MaxConns int
	// MaxInFlight caps requests being handled per connection (default 64);
	// the connection is not read further until one finishes (backpressure).
	MaxInFlight int
	// MaxWatches caps Watch requests per connection (default 16).
	MaxWatches int
	// MaxWatchedTopics caps the topics all the watches of one connection
	// watch together (default 1,024); a Watch past it gets TooBusy naming
	// the limit. Each watched topic costs the broker a goroutine.
	MaxWatchedTopics int
	// MaxInFlightBytes caps the request bodies held by all connections
	// together (default 512 MiB, at least MaxBody): a request whose body
	// does not fit waits up to InFlightBytesWait for room, then is
	// answered TooBusy without its body being kept (the connection goes on).
	MaxInFlightBytes int64
	// InFlightBytesWait is how long a request waits for room under
	// MaxInFlightBytes (default 1 second).
	InFlightBytesWait time.Duration
	// HelloTimeout bounds the time from accepting a connection to its
	// Hello request read whole (default 10 seconds): a connection that
	// never says Hello gives its MaxConns slot back soon.
	HelloTimeout time.Duration
	// IdleTimeout closes a connection that starts no frame for this long
	// (default 5 minutes).
	IdleTimeout time.Duration
	// ReadTimeout bounds reading the rest of a frame once its first byte
	// arrived (default 30 seconds): half a header then silence is cut off.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response (default 30 seconds).
	WriteTimeout time.Duration
	// MaxWait caps a consume's long-poll wait (default 30 seconds).
	MaxWait time.Duration
	// MaxConsumeBytes caps the batch bytes of one consume response
	// (default 16 MiB; at least one batch is always sent).
	MaxConsumeBytes uint32
	// Token, when set, must be presented in Hello. Hello comes first on
	// every connection, token or not.
	Token string
	// Auth, if set, identifies each client at Hello (by token, else by TLS
	// client certificate) and checks each request against its permissions
	// (auth.go); Token is then not consulted (auth.Load takes it).
	Auth *auth.Authorizer
	// AutoCreateTopics creates a topic on its first produce.
	AutoCreateTopics bool
	// ConsumeMode picks writev or sendfile for consume responses.
	ConsumeMode ConsumeMode
	// ServerID is sent in Hello responses.
	ServerID string
	// Logger receives connection errors (default slog.Default()).
	Logger *slog.Logger
	// Observer, if set, receives every request's duration (metrics).
	Observer RequestObserver
}

// RequestObserver receives the duration of each request but Hello and
// Watch: from its frame read whole to its response written (a consume's
// long-poll wait included). It is called on connection goroutines: it
// must be quick, safe for concurrent use and must not block.
type RequestObserver interface {
	ObserveRequest(op netproto.Opcode, d time.Duration)
}

func (o Options) withDefaults() Options {
	if o.MaxBody == 0 {
		o.MaxBody = netproto.DefaultMaxBody
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.MaxWatches <= 0 {
		o.MaxWatches = 16
	}
	if o.MaxWatchedTopics <= 0 {
		o.MaxWatchedTopics = 1024
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = 512 << 20
	}
	o.MaxInFlightBytes = max(o.MaxInFlightBytes, int64(o.MaxBody))
	if o.InFlightBytesWait <= 0 {
		o.InFlightBytesWait = time.Second
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
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
	if o.MaxConsumeBytes == 0 {
		o.MaxConsumeBytes = 16 << 20
	}
	if o.ServerID == "" {
		o.ServerID = "haraqa"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
