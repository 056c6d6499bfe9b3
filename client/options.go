package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// Option configures a Client's connection (Dial).
type Option func(*config)

type config struct {
	// nextRefused: a broker of this Client refused ConsumeNext (an older
	// broker): its Consumers read the ordinary way. Shared by the
	// connections and a seed list's sub-clients.
	nextRefused  *atomic.Bool
	token        string
	dialTimeout  time.Duration
	writeTimeout time.Duration
	maxBody      uint32
	minBackoff   time.Duration
	maxBackoff   time.Duration
	reconnect    bool
	logger       *slog.Logger
	codec        record.Codec
	hooks        hooks
	transformer  Transformer
	tls          *tls.Config // WithTLSConfig (tls.go)
	errs         []error     // bad option values, for Dial
}

// badf records a bad option value: Dial fails with it, naming the option.
func (c *config) badf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w %s", ErrBadOption, fmt.Sprintf(format, args...)))
}

func newConfig(opts []Option) config {
	cfg := config{
		dialTimeout:  10 * time.Second,
		writeTimeout: 30 * time.Second,
		maxBody:      netproto.DefaultMaxBody,
		minBackoff:   50 * time.Millisecond,
		maxBackoff:   5 * time.Second,
		reconnect:    true,
		logger:       slog.New(slog.DiscardHandler),
		nextRefused:  new(atomic.Bool),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// WithToken sets the authentication token sent in Hello (at most 65,535
// bytes).
func WithToken(token string) Option {
	return func(c *config) {
		if len(token) > 1<<16-1 {
			c.badf("WithToken: token of %d bytes, the limit is 65535", len(token))
			return
		}
		c.token = token
	}
}

// WithDialTimeout bounds each connection attempt, Hello included (default
// 10 seconds). The context of the call that dials bounds it too.
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.badf("WithDialTimeout(%v): want a positive duration", d)
			return
		}
		c.dialTimeout = d
	}
}

// WithWriteTimeout bounds writing one request to the socket (default 30
// seconds). A write that times out closes the connection: a frame cut
// short cannot be taken back.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.badf("WithWriteTimeout(%v): want a positive duration", d)
			return
		}
		c.writeTimeout = d
	}
}

// WithMaxBody caps frame bodies in both directions (default
// netproto.DefaultMaxBody, 64 MiB + 64 KiB): the client sends no frame
// larger than this or than the broker's own limit, and refuses (closing
// the connection) a response larger than this. It bounds the memory one
// response can take; keep it at least the broker's limit, or a consume of a
// large batch fails.
func WithMaxBody(n uint32) Option {
	return func(c *config) {
		if n < 1<<10 {
			c.badf("WithMaxBody(%d): want at least 1024 bytes", n)
			return
		}
		c.maxBody = n
	}
}

// WithReconnect sets the backoff between connection attempts after the
// connection dropped. Reconnecting is on by default (min 50ms, max 5s):
// calls in flight when the connection drops fail with ErrDisconnected (a
// retriable error), and the next call redials, shared by every call
// waiting for it. The first redial after a drop is immediate; after each
// failed attempt the next waits an exponentially growing, jittered delay
// from first up to limit (the calling context bounds the wait). A first
// below zero turns reconnecting off: after a drop every call fails with
// ErrDisconnected. Keep it on for a long-lived Client: the broker closes a
// connection that sends nothing for a while (5 minutes by default). A first
// of zero or a limit below first is an error of Dial.
func WithReconnect(first, limit time.Duration) Option {
	return func(c *config) {
		if first < 0 {
			c.reconnect = false
			return
		}
		if first == 0 || limit < first {
			c.badf("WithReconnect(%v, %v): want 0 < first <= limit (first < 0 turns reconnecting off)", first, limit)
			return
		}
		c.reconnect = true
		c.minBackoff = max(first, time.Millisecond)
		c.maxBackoff = max(limit, c.minBackoff)
	}
}

// WithLogger sets where connection events (drops, redials) are logged.
// The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.badf("WithLogger(nil): want a logger (slog.New(slog.DiscardHandler) discards)")
			return
		}
		c.logger = l
	}
}

// WithCompression sets the codec that Produce, ProduceMessages and the
// Client's Producers (unless ProducerCompression says otherwise) compress
// batches with: record.CodecNone (the default), record.CodecS2 (about as
// fast as none; 3.6x on the JSON access-log lines of the benchmarks) or
// record.CodecZstd (slower to produce; 5.6x on those lines); see
// bench/COMPRESSION.md.
// Batches are stored and sent compressed; the broker never decompresses
// them and Consume decompresses them transparently, whatever codec each
// batch used. A batch that compression would not make smaller is sent
// uncompressed. ProduceBatch sends its batch as it is. An unknown codec is
// an error of Dial.
func WithCompression(c record.Codec) Option {
	return func(cfg *config) {
		if c > record.CodecZstd {
			cfg.badf("WithCompression(%v): want record.CodecNone, CodecS2 or CodecZstd", c)
			return
		}
		cfg.codec = c
	}
}

func max2(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// ConsumeOption configures a Consume call or a Consumer.
type ConsumeOption func(*consumeConfig)

type consumeConfig struct {
	maxBytes uint32
	wait     time.Duration
	limit    int
	from     time.Time // Consumer: start at the first message appended at or after it
	skip     bool      // Consumer: read on past damaged offsets the broker names
	reset    ResetPolicy
	onReset  func(topic string, from, to uint64)
	discover time.Duration // MultiConsumer: how often to look for new topics
}

// ResetPolicy says what a Consumer does when its position is no longer in
// its topic's range: below the start (retention or TruncateBefore removed
// the messages) or past the end (the topic was recreated).
type ResetPolicy int

const (
	// ResetFail yields ErrOffsetOutOfRange (the *Error carries the
	// range) and ends the iteration: the default.
	ResetFail ResetPolicy = iota
	// ResetEarliest goes on at the topic's start.
	ResetEarliest
	// ResetLatest goes on at the topic's end: only new messages.
	ResetLatest
)

// ConsumeReset sets what a Consumer or MultiConsumer does when its position
// fell out of its topic's range (see ResetPolicy). With ResetEarliest and
// ResetLatest it goes on without yielding an error; the offsets it jumped
// over are counted (Consumer.Skipped) and reported to ConsumeOnReset.
// Consume ignores this option.
func ConsumeReset(p ResetPolicy) ConsumeOption {
	return func(c *consumeConfig) { c.reset = p }
}

// ConsumeOnReset calls fn each time a Consumer or MultiConsumer moves its
// position of topic from from to to under ConsumeReset: when to > from,
// the to-from messages between were skipped (no longer stored).
func ConsumeOnReset(fn func(topic string, from, to uint64)) ConsumeOption {
	return func(c *consumeConfig) { c.onReset = fn }
}

// ConsumeDiscoverEvery sets how often a MultiConsumer over a pattern (or a
// list naming topics that do not exist yet) looks for new topics (default
// 250ms). Consume and Consumer ignore it.
func ConsumeDiscoverEvery(d time.Duration) ConsumeOption {
	return func(c *consumeConfig) {
		if d > 0 {
			c.discover = d
		}
	}
}

// resetTo applies the reset policy to err, the failure of a read of topic
// at next: it returns where to go on, or false to treat err as an error.
func (c *consumeConfig) resetTo(err error, topic string, next uint64) (uint64, bool) {
	var e *Error
	if c.reset == ResetFail || !errors.As(err, &e) || e.Code != netproto.CodeOffsetOutOfRange || (next >= e.Start && next <= e.End) {
		return 0, false
	}
	to := e.Start
	if c.reset == ResetLatest {
		to = e.End
	}
	if c.onReset != nil {
		c.onReset(topic, next, to)
	}
	return to, true
}

// ConsumeMaxBytes asks the broker for at most about n bytes of batches
// (default: the broker's limit, 16 MiB unless configured). The broker
// always sends at least the batch holding the requested offset.
func ConsumeMaxBytes(n int) ConsumeOption {
	return func(c *consumeConfig) {
		if n > 0 {
			c.maxBytes = uint32(min(n, 1<<31))
		}
	}
}

// ConsumeWait makes a consume at the end of the topic a long poll: the
// broker answers as soon as data arrives, or with no messages after d
// (rounded to milliseconds; the broker caps it, 30 seconds by default).
// Zero answers at once.
func ConsumeWait(d time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.wait = max2(d, 0) }
}

// ConsumeLimit caps the messages of each consume a Consumer makes
// (default: no cap but the byte limit). Consume takes its limit as an
// argument and ignores this option.
func ConsumeLimit(n int) ConsumeOption {
	return func(c *consumeConfig) { c.limit = max(n, 0) }
}

// ConsumeFrom makes a Consumer start at the first message the broker
// appended at or after t (OffsetAt, resolved when Messages first runs; a
// time after the last message starts at the end), instead of at the offset
// given to NewConsumer. Messages share their batch's append time, so the
// start is a batch boundary. Consume takes its offset as an argument and
// ignores this option.
func ConsumeFrom(t time.Time) ConsumeOption {
	return func(c *consumeConfig) { c.from = t }
}

// ConsumeSkipCorrupt makes a Consumer read on past stored damage. When the
// broker reports offsets that no copy can serve (ErrCorrupt, with the
// damaged offsets [Start, End) in the *Error), Messages still yields that
// error — so the caller sees what is skipped — and then, if the loop goes
// on, continues at End instead of ending. A corruption error that names no
// offsets ends the iteration as before. Without this option any
// corruption ends it. Consume ignores this option.
func ConsumeSkipCorrupt() ConsumeOption {
	return func(c *consumeConfig) { c.skip = true }
}

// ProducerOption configures a Producer. A bad value (a size, count or
// in-flight limit below 1, a negative linger) does not stop NewProducer,
// which returns no error: every Send, Flush and Close of that Producer
// fails with ErrBadOption naming the option.
type ProducerOption func(*producerConfig)

type producerConfig struct {
	maxBytes    int
	maxMessages int
	linger      time.Duration
	bufferBytes int
	inFlight    int
	onError     func(msg []byte, err error)
	onAck       func(baseOffset uint64, count int)
	onTopicAck  func(topic string, baseOffset uint64, count int)
	codec       record.Codec
	codecSet    bool // codec overrides the Client's WithCompression
	idempotent  bool
	errs        []error // bad option values: every Send, Flush and Close fails with them
}

// badf records a bad option value, naming the option.
func (c *producerConfig) badf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w %s", ErrBadOption, fmt.Sprintf(format, args...)))
}

func newProducerConfig(opts []ProducerOption) producerConfig {
	cfg := producerConfig{
		maxBytes:    1 << 20,
		maxMessages: 10000,
		linger:      5 * time.Millisecond,
		bufferBytes: 16 << 20,
		inFlight:    1,
		idempotent:  true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.bufferBytes = max(cfg.bufferBytes, cfg.maxBytes)
	if cfg.idempotent {
		cfg.inFlight = min(cfg.inFlight, maxIdempotentInFlight)
	}
	return cfg
}

// maxIdempotentInFlight caps the batches an idempotent Producer has in
// flight: the broker remembers the last 8 sequences of a producer per
// topic, so a batch resent behind more than that could not be matched.
const maxIdempotentInFlight = 8

// ProducerMaxBytes sends a batch once it holds about n bytes (default 1
// MiB). A single message larger than n goes in a batch of its own; one that
// cannot fit the broker's frame limit fails with ErrMessageTooLarge.
func ProducerMaxBytes(n int) ProducerOption {
	return func(c *producerConfig) {
		if n <= 0 {
			c.badf("ProducerMaxBytes(%d): want a positive size", n)
			return
		}
		c.maxBytes = n
	}
}

// ProducerMaxMessages sends a batch once it holds n messages (default
// 10,000).
func ProducerMaxMessages(n int) ProducerOption {
	return func(c *producerConfig) {
		if n <= 0 {
			c.badf("ProducerMaxMessages(%d): want a positive count", n)
			return
		}
		c.maxMessages = n
	}
}

// ProducerLinger sends a batch at the latest d after its first message
// (default 5ms). Zero sends each batch as soon as the connection is free.
func ProducerLinger(d time.Duration) ProducerOption {
	return func(c *producerConfig) {
		if d < 0 {
			c.badf("ProducerLinger(%v): want zero or a positive duration", d)
			return
		}
		c.linger = d
	}
}

// ProducerBufferBytes bounds the message bytes buffered and in flight
// (default 16 MiB, at least ProducerMaxBytes); Send blocks while it is full.
func ProducerBufferBytes(n int) ProducerOption {
	return func(c *producerConfig) {
		if n <= 0 {
			c.badf("ProducerBufferBytes(%d): want a positive size", n)
			return
		}
		c.bufferBytes = n
	}
}

// ProducerMaxInFlight sets how many batches may await their ack at once
// (default 1; at most 8 for an idempotent Producer, see
// ProducerIdempotent). More keeps the pipe full on a slow link. The broker stores
// the produces of one connection in the order they arrive, and an
// idempotent Producer resends the batches in flight in order after a
// failure, so order is kept. A Producer that is not idempotent does not
// resend: a batch that fails is lost while the ones after it may be
// stored.
func ProducerMaxInFlight(n int) ProducerOption {
	return func(c *producerConfig) {
		if n <= 0 {
			c.badf("ProducerMaxInFlight(%d): want a positive count", n)
			return
		}
		c.inFlight = n
	}
}

// ProducerOnError calls fn for every message of a batch that failed, in
// order, from the Producer's goroutine; for a message sent with
// SendMessage, msg is its Value. msg aliases the Producer's buffer: copy
// it to keep it. Flush and Close also report the first failure. An
// idempotent Producer reports a batch once it gave up resending it, and
// also, once, while it keeps resending a batch the broker refused with a
// storage error several times in a row (a full disk): err then wraps
// ErrRetrying and the broker's error, and the message may still be stored.
func ProducerOnError(fn func(msg []byte, err error)) ProducerOption {
	return func(c *producerConfig) { c.onError = fn }
}

// ProducerCompression sets the codec of this Producer's batches,
// overriding the Client's WithCompression (see there).
func ProducerCompression(c record.Codec) ProducerOption {
	return func(cfg *producerConfig) { cfg.codec, cfg.codecSet = c, true }
}

// ProducerIdempotent turns idempotent produce on (the default) or off.
// An idempotent Producer asks the broker for a producer id once
// (InitProducer) and numbers its batches; after a retriable failure (the
// connection dropped, the broker answered Storage, ShuttingDown, TooBusy,
// ...) it resends the same batch, unchanged, with backoff until it is
// acknowledged or Close's context ends, and the broker answers a batch it
// already stored with the original offsets instead of storing it twice.
// The broker remembers the last 8 batches of each producer per topic, so
// an idempotent Producer keeps at most 8 batches in flight. Against a
// broker that does not know InitProducer (it answers UnknownOpcode) the
// Producer falls back to not idempotent, as with off: a batch that fails
// after it was written is reported, not resent.
func ProducerIdempotent(on bool) ProducerOption {
	return func(cfg *producerConfig) { cfg.idempotent = on }
}

// ProducerOnAck calls fn for every acknowledged batch, in the order the
// batches were sent, from the Producer's goroutine: the batch's count
// messages got the offsets baseOffset, baseOffset+1, ... For a
// MultiProducer see ProducerOnTopicAck, which names the batch's topic.
func ProducerOnAck(fn func(baseOffset uint64, count int)) ProducerOption {
	return func(c *producerConfig) { c.onAck = fn }
}

// ProducerOnTopicAck is ProducerOnAck with the batch's topic.
func ProducerOnTopicAck(fn func(topic string, baseOffset uint64, count int)) ProducerOption {
	return func(c *producerConfig) { c.onTopicAck = fn }
}
