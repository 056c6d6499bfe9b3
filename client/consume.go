package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// ConsumeBuffer receives what Consume reads: the record batches exactly as
// the broker sent them (the connection's reader goroutine reads them
// straight into it, no intermediate copy), the decompressed payloads of
// compressed batches and an index of the messages in them. Reuse one
// buffer across calls: once it has grown to the working size, Consume
// allocates nothing. The zero value is ready to use.
//
// A buffer belongs to one Consume at a time. Each Consume overwrites what
// the last one returned: message values, keys and header values alias the
// buffer and stay valid only until the next Consume with it. Copy what
// must outlive that.
type ConsumeBuffer struct {
	raw  []byte
	dec  [][]byte // decompressed payloads, one per compressed batch read
	msgs Messages
	keys map[string]string // header keys seen, interned: no allocation per header

	plain []byte   // values opened by a Transformer
	spans [][2]int // where each message's opened value lies in plain
}

// Messages is the result of one Consume: the messages [offset, Next()) of
// a topic, trimmed from the whole batches the broker returned, every batch
// checksum verified. It lives in its ConsumeBuffer and is overwritten by
// the next Consume with that buffer.
type Messages struct {
	// Start and End are the topic's valid offset range [Start, End) when
	// the broker served the read.
	Start, End uint64

	topic   string
	first   uint64
	refs    []msgRef   // one per message: 16 bytes, no pointers
	batches []batchRef // one per batch indexed
	ext     []extRef   // messages with a key, timestamp, headers or a transformed value
	hdrs    []Header   // the headers of every message, extRef.hlo..hhi
	limit   uint64     // the read's message limit, for Client.walk
}

// msgRef locates one message. A message of a plain batch (value only) is
// batches[b].p[off:off+n]; one with more (x > 0) is described by
// ext[x-1]. Keeping it small and free of pointers makes indexing a
// message a 16-byte store: no write barriers, nothing to clear.
type msgRef struct {
	off, n uint32
	b      uint32
	x      int32
}

// batchRef is one indexed batch: its raw payload and append time.
type batchRef struct {
	p    []byte    // aliases ConsumeBuffer.raw or .dec
	time time.Time // the batch's append time
}

// extRef is a message that is more than a value.
type extRef struct {
	value, key []byte // alias ConsumeBuffer.raw, .dec or .plain
	ts         int64  // the producer's timestamp, unix nanoseconds; 0: none
	hlo, hhi   int32  // headers: Messages.hdrs[hlo:hhi]
	err        error  // the Transformer refused it: value is nil
}

// Message is one message of a topic.
type Message struct {
	// Topic is the message's topic: where MultiProducer.SendMessage sends
	// it, and where a consumed message was read from.
	Topic string
	// Offset is the message's offset (set by the broker; ignored by
	// ProduceMessages).
	Offset uint64
	// Time is when the broker appended the message's batch (ignored by
	// ProduceMessages).
	Time time.Time
	// Timestamp is the producer's time for the message, zero when it gave
	// none. Messages produced with Produce or Producer.Send have none.
	Timestamp time.Time
	// Key is the message's key, nil when it has none (an empty key is
	// none).
	Key []byte
	// Value is the message's content.
	Value []byte
	// Headers are the message's headers, in the order they were given;
	// keys may repeat.
	Headers []Header
}

// In a consumed Message, Value, Key, the Headers slice and the header
// values alias a buffer (the ConsumeBuffer, or the Consumer's) and are
// valid until that buffer's next read; header keys are strings of their
// own. Copy what must live longer.

// Len returns the number of messages.
func (m *Messages) Len() int { return len(m.refs) }

// At returns message i, 0 <= i < Len(); its offset is Next()-Len()+i.
func (m *Messages) At(i int) Message {
	r := &m.refs[i]
	b := &m.batches[r.b]
	if r.x == 0 {
		end := r.off + r.n
		return Message{Topic: m.topic, Offset: m.first + uint64(i), Time: b.time, Value: b.p[r.off:end:end]}
	}
	x := &m.ext[r.x-1]
	msg := Message{Topic: m.topic, Offset: m.first + uint64(i), Time: b.time, Key: x.key, Value: x.value}
	if x.ts != 0 {
		msg.Timestamp = time.Unix(0, x.ts)
	}
	if x.hhi > x.hlo {
		msg.Headers = m.hdrs[x.hlo:x.hhi:x.hhi]
	}
	return msg
}

// Err returns why message i could not be read, nil when it could: with
// WithTransformer, a *TransformError for a value the Transformer could not
// open (the message's Value is then nil).
func (m *Messages) Err(i int) error {
	if x := m.refs[i].x; x > 0 {
		return m.ext[x-1].err
	}
	return nil
}

// toExt returns message i's extRef, making one for a plain message.
func (m *Messages) toExt(i int) *extRef {
	r := &m.refs[i]
	if r.x == 0 {
		end := r.off + r.n
		m.ext = append(m.ext, extRef{value: m.batches[r.b].p[r.off:end:end]})
		r.x = int32(len(m.ext))
	}
	return &m.ext[r.x-1]
}

// Next returns the offset to consume next: after the last message, or the
// requested offset when there is none (the long poll expired).
func (m *Messages) Next() uint64 { return m.first + uint64(len(m.refs)) }

// All iterates over the messages in offset order.
func (m *Messages) All() iter.Seq[Message] {
	return func(yield func(Message) bool) {
		for i := range m.refs {
			if !yield(m.At(i)) {
				return
			}
		}
	}
}

// Consume reads up to limit messages of topic starting at offset (limit <=
// 0: as many as the byte limit allows) into buf, which may be nil for a
// one-off read. The broker returns whole batches; Consume verifies each
// one's checksums (a batch that fails gives ErrCorrupt) and trims the
// messages to [offset, offset+limit). Reading at the end offset returns no
// messages, at once or, with ConsumeWait, as soon as data arrives. An
// offset outside [start, end] fails with ErrOffsetOutOfRange; the *Error
// carries the valid range in Start and End.
//
// The result lives in buf: see ConsumeBuffer for how long it stays valid.
// If ctx ends first Consume returns ctx.Err() and buf's contents are
// undefined.
func (c *Client) Consume(ctx context.Context, topic string, offset uint64, limit int, buf *ConsumeBuffer, opts ...ConsumeOption) (*Messages, error) {
	var cfg consumeConfig
	if len(opts) > 0 {
		cfg = applyConsumeOptions(opts) // the options' pointer escapes; keep it off this frame
	}
	if buf == nil {
		buf = new(ConsumeBuffer)
	}
	return c.consume(ctx, topic, offset, limit, buf, &cfg)
}

func applyConsumeOptions(opts []ConsumeOption) consumeConfig {
	var cfg consumeConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func (c *Client) consume(ctx context.Context, topic string, offset uint64, limit int, buf *ConsumeBuffer, cfg *consumeConfig) (*Messages, error) {
	r, err := c.consumeSend(ctx, topic, offset, limit, buf, cfg, false)
	if err != nil {
		return nil, err
	}
	return c.consumeRecv(ctx, &r, nil, false)
}

// consumeReq is a consume request sent and not yet received.
type consumeReq struct {
	cn        *conn
	cl        *call
	buf       *ConsumeBuffer
	topic     string
	offset    uint64
	wireLimit uint32
	// tail: sent by a Consumer at the topic's end ahead of its turn (a
	// long poll, or a ConsumeNext behind one): a failure is not yielded,
	// the Consumer reads again in the ordinary way. next: a ConsumeNext,
	// whose offset is known once the answer it follows is in.
	tail, next bool
}

// consumeSend sends a consume request whose response is read into buf.
// With ahead, the connection's background reader reads the response as
// soon as it comes, while the caller does something else (Consumer's
// read-ahead).
func (c *Client) consumeSend(ctx context.Context, topic string, offset uint64, limit int, buf *ConsumeBuffer, cfg *consumeConfig, ahead bool) (consumeReq, error) {
	m := &buf.msgs
	m.Start, m.End, m.first, m.topic = 0, 0, offset, topic
	m.reset()
	if err := checkTopic(topic); err != nil {
		return consumeReq{}, err
	}
	wireLimit, waitMS := consumeLimits(limit, cfg)
	cl := getCall(netproto.OpConsume)
	req := netproto.ConsumeRequest{Topic: []byte(topic), Offset: offset, Limit: wireLimit, MaxBytes: cfg.maxBytes, MaxWaitMillis: waitMS}
	cl.head = req.AppendTo(cl.head)
	cl.cons = buf
	// On the topic's leader, as its produces (route.go): a follower may
	// not have applied yet what the leader acknowledged a moment ago.
	cn, err := c.connFor(ctx, topic)
	if err == nil {
		cl.ahead = ahead
		err = cn.send(cl, nil)
	}
	if err != nil {
		putCall(cl)
		return consumeReq{}, err
	}
	return consumeReq{cn: cn, cl: cl, buf: buf, topic: topic, offset: offset, wireLimit: wireLimit}, nil
}

// consumeLimits returns a consume's limit and wait as sent.
func consumeLimits(limit int, cfg *consumeConfig) (wireLimit, waitMS uint32) {
	if limit > 0 {
		wireLimit = uint32(min(uint64(limit), math.MaxUint32))
	}
	return wireLimit, uint32(min((cfg.wait+time.Millisecond-1)/time.Millisecond, math.MaxUint32))
}

// consumeSendNext sends, on prev's connection, a ConsumeNext that reads
// on from where the broker's answer to prev ends, into buf. Its offset is
// set (resolveNext) once prev's answer is in. Nobody reads its answer until
// its caller waits for it (it is not a read-ahead for the background
// reader).
func (c *Client) consumeSendNext(prev *consumeReq, limit int, buf *ConsumeBuffer, cfg *consumeConfig) (consumeReq, error) {
	m := &buf.msgs
	m.Start, m.End, m.first, m.topic = 0, 0, 0, prev.topic
	m.reset()
	wireLimit, waitMS := consumeLimits(limit, cfg)
	cl := getCall(netproto.OpConsumeNext)
	req := netproto.ConsumeNextRequest{Topic: []byte(prev.topic), After: prev.cl.id, Limit: wireLimit, MaxBytes: cfg.maxBytes, MaxWaitMillis: waitMS}
	cl.head = req.AppendTo(cl.head)
	cl.cons = buf
	if err := prev.cn.send(cl, nil); err != nil {
		putCall(cl)
		return consumeReq{}, err
	}
	return consumeReq{cn: prev.cn, cl: cl, buf: buf, topic: prev.topic, wireLimit: wireLimit, tail: true, next: true}, nil
}

// resolveNext sets a ConsumeNext's offset: where the answer it follows
// ended (serverNext of consumeRecv's arrived callback).
func (r *consumeReq) resolveNext(offset uint64) {
	r.offset, r.buf.msgs.first = offset, offset
}

// drop gives up a consume request sent with consumeSend: its response, if
// it comes, is discarded. It returns once no reader uses its buffer.
func (r *consumeReq) drop() {
	r.cn.drop(r.cl)
	putCall(r.cl)
	r.cl = nil
}

// consumeRecv waits for the response to r and indexes it. If arrived is
// not nil, it is called once the response is in and before it is
// verified and indexed, with the offset the next read would start at as
// far as the batch headers tell (unverified), and the offset the broker
// starts a ConsumeNext that follows r at (the same unless this client's
// decompression budget stops the read early): the Consumer sends its
// read-ahead from there, so that the broker reads, verifies and sends the
// next response while this one is checked and iterated.
//
// With walk, the response is neither verified nor indexed here: the
// caller walks it (Client.walk), which verifies each batch before it
// yields its messages.
func (c *Client) consumeRecv(ctx context.Context, r *consumeReq, arrived func(m *Messages, next, brokerNext uint64), walk bool) (*Messages, error) {
	cl, buf, topic, offset := r.cl, r.buf, r.topic, r.offset
	defer putCall(cl)
	r.cl = nil
	m := &buf.msgs
	if err := r.cn.wait(ctx, cl); err != nil {
		return nil, err
	}
	m.Start, m.End = cl.fixed.Start, cl.fixed.End
	trim := uint64(math.MaxUint64)
	if r.wireLimit > 0 {
		trim = uint64(r.wireLimit)
	}
	if arrived != nil {
		arrived(m, predictNext(buf.raw, offset, trim, int(c.cfg.maxBody)), predictNext(buf.raw, offset, trim, math.MaxInt))
	}
	if walk {
		m.limit = trim
		return m, nil
	}
	ix := indexer{buf: buf, topic: topic, maxRaw: int(c.cfg.maxBody)}
	if err := ix.index(offset, trim); err != nil {
		m.reset()
		return nil, err
	}
	if c.cfg.transformer != nil {
		buf.open(c.cfg.transformer)
	}
	if hs := c.cfg.hooks.consumed; len(hs) > 0 && len(m.refs) > 0 {
		d := time.Since(cl.sentAt)
		for _, h := range hs {
			h.OnMessagesConsumed(topic, m, d)
		}
	}
	return m, nil
}

// open replaces each message's value with what t opens it to, kept in
// b.plain; a message t refuses gets a nil value and the error.
func (b *ConsumeBuffer) open(t Transformer) {
	m := &b.msgs
	b.plain = b.plain[:0]
	spans := b.spans[:0]
	for i := range m.refs {
		msg := m.At(i)
		lo := len(b.plain)
		var err error
		b.plain, err = t.Open(b.plain, m.topic, &msg)
		if err != nil {
			x := m.toExt(i)
			x.value, x.err = nil, &TransformError{Topic: m.topic, Offset: msg.Offset, Err: err}
			b.plain = b.plain[:lo]
		}
		spans = append(spans, [2]int{lo, len(b.plain)})
	}
	for i, s := range spans {
		if x := m.toExt(i); x.err == nil {
			x.value = b.plain[s[0]:s[1]:s[1]]
		}
	}
	b.spans = spans
}

// reset drops the messages and their aliases.
func (m *Messages) reset() {
	m.refs = m.refs[:0] // no pointers: nothing to clear
	clear(m.batches)
	m.batches = m.batches[:0]
	clear(m.ext)
	m.ext = m.ext[:0]
	clear(m.hdrs)
	m.hdrs = m.hdrs[:0]
}

// indexer verifies, decompresses and indexes the batches of one Consume.
type indexer struct {
	buf     *ConsumeBuffer
	topic   string
	maxRaw  int // largest raw payload decompressed, and the budget per Consume
	ndec    int // compressed batches decompressed so far
	decoded int
}

// index verifies the batches in buf.raw and records the messages in
// [offset, offset+limit). The batches must follow each other densely and
// the first must hold offset. Compressed batches are decompressed after
// their checksums are verified, each bounded by maxRaw; once maxRaw bytes
// were decompressed the read stops early at a batch boundary (Next tells
// where), so one Consume holds at most about twice the frame limit.
func (ix *indexer) index(offset, limit uint64) error {
	stop := offset + limit
	if stop < offset {
		stop = math.MaxUint64
	}
	sc := record.NewScanner(ix.buf.raw)
	var next uint64
	for first := true; sc.Next(); first = false {
		h := sc.Header()
		switch {
		case first && (h.BaseOffset > offset || h.NextOffset() <= offset):
			return corrupt(ix.topic, offset, fmt.Errorf("first batch holds offsets %d..%d", h.BaseOffset, h.LastOffset()))
		case !first && h.BaseOffset != next:
			return corrupt(ix.topic, offset, fmt.Errorf("batch at offset %d follows one that ends at %d", h.BaseOffset, next))
		}
		if !first && h.Codec() != record.CodecNone && ix.decoded+int(h.RawLen) > ix.maxRaw {
			break // enough for one read; the next read starts here
		}
		next = h.NextOffset()
		raw, err := ix.payload(sc.Batch(), h)
		if err != nil {
			return err
		}
		if err := ix.add(raw, h, offset, stop); err != nil {
			return err
		}
		if next >= stop {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return corrupt(ix.topic, offset, err)
	}
	return nil
}

// walk verifies the batches of a response received with walk (see
// consumeRecv) one at a time and yields the messages of each in [first,
// first+limit) as soon as its batch is verified: a plain batch is decoded
// as it is yielded, without an index; another (compressed, or with keys,
// timestamps or headers) is indexed alone first. It checks what index
// checks and stops where index stops (so the read-ahead sent from
// predictNext is at the right offset). It sets *next past each message
// before yielding it. It returns false when yield did; err is why the walk
// ended early: a batch that failed verification, whose messages and those
// after it are not yielded.
func (c *Client) walk(buf *ConsumeBuffer, next *uint64, yield func(Message, error) bool) (bool, error) {
	m := &buf.msgs
	offset, limit := m.first, m.limit
	stop := offset + limit
	if stop < offset {
		stop = math.MaxUint64
	}
	ix := indexer{buf: buf, topic: m.topic, maxRaw: int(c.cfg.maxBody)}
	sc := record.NewScanner(buf.raw)
	var end uint64
	for first := true; sc.Next(); first = false {
		h := sc.Header()
		switch {
		case first && (h.BaseOffset > offset || h.NextOffset() <= offset):
			return true, corrupt(ix.topic, offset, fmt.Errorf("first batch holds offsets %d..%d", h.BaseOffset, h.LastOffset()))
		case !first && h.BaseOffset != end:
			return true, corrupt(ix.topic, offset, fmt.Errorf("batch at offset %d follows one that ends at %d", h.BaseOffset, end))
		}
		if !first && h.Codec() != record.CodecNone && ix.decoded+int(h.RawLen) > ix.maxRaw {
			break // where index stops
		}
		end = h.NextOffset()
		var more bool
		var err error
		if h.Codec() == record.CodecNone && !h.Extended() {
			more, err = walkPlain(sc.Batch()[record.HeaderSize:record.HeaderSize+int(h.PayloadLen)], h, m.topic, offset, stop, next, yield)
		} else {
			more, err = ix.walkIndexed(sc.Batch(), h, offset, stop, next, yield)
		}
		if !more || err != nil {
			return more, err
		}
		if end >= stop {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return true, corrupt(ix.topic, offset, err)
	}
	return true, nil
}

// walkPlain yields the messages of a verified plain payload (each a
// uvarint length and the value) that lie in [offset, stop), checking the
// encoding as addPlain does.
func walkPlain(raw []byte, h *record.Header, topic string, offset, stop uint64, next *uint64, yield func(Message, error) bool) (bool, error) {
	msg := Message{Topic: topic, Offset: h.BaseOffset, Time: time.Unix(0, h.AppendTime)}
	pos := 0
	for left := h.Count; left > 0 && msg.Offset < stop; left-- {
		var n uint64
		var k int
		if pos < len(raw) && raw[pos] < 0x80 {
			n, k = uint64(raw[pos]), 1 // lengths below 128: one byte
		} else {
			n, k = binary.Uvarint(raw[pos:])
		}
		if k <= 0 || n > uint64(len(raw)-pos-k) {
			return true, corrupt(topic, h.BaseOffset, fmt.Errorf("%w: message length runs past the payload (%d messages left)", record.ErrCorrupt, left))
		}
		end := pos + k + int(n)
		if left == 1 && end != len(raw) {
			return true, corrupt(topic, h.BaseOffset, fmt.Errorf("%w: %d bytes after the last message", record.ErrCorrupt, len(raw)-end))
		}
		if msg.Offset >= offset {
			msg.Value = raw[pos+k : end : end]
			*next = msg.Offset + 1
			if !yield(msg, nil) {
				return false, nil
			}
		}
		pos = end
		msg.Offset++
	}
	return true, nil
}

// walkIndexed indexes one verified batch alone (decompressing it first)
// and yields its messages in [offset, stop).
func (ix *indexer) walkIndexed(batch []byte, h *record.Header, offset, stop uint64, next *uint64, yield func(Message, error) bool) (bool, error) {
	raw, err := ix.payload(batch, h)
	if err != nil {
		return true, err
	}
	m := &ix.buf.msgs
	m.reset()
	m.first = max(offset, h.BaseOffset)
	if err := ix.add(raw, h, offset, stop); err != nil {
		return true, err
	}
	for i := range m.Len() {
		msg := m.At(i)
		*next = msg.Offset + 1
		if !yield(msg, m.Err(i)) {
			return false, nil
		}
	}
	return true, nil
}

// predictNext returns where indexing raw for a read from offset, trimmed
// to limit messages, will end (Messages.Next), from the batch headers
// alone: it walks them as index does, without verifying the payloads. If
// the headers lie, index fails or ends elsewhere; whoever acted on the
// prediction must check it against Next.
func predictNext(raw []byte, offset, limit uint64, maxRaw int) uint64 {
	stop := offset + limit
	if stop < offset {
		stop = math.MaxUint64
	}
	next, decoded := offset, 0
	for pos, first := 0, true; pos < len(raw); first = false {
		h, err := record.ParseHeader(raw[pos:])
		if err != nil {
			break
		}
		if h.Codec() != record.CodecNone {
			if !first && decoded+int(h.RawLen) > maxRaw {
				break
			}
			decoded += int(h.RawLen)
		}
		next = h.NextOffset()
		if next >= stop {
			return stop
		}
		pos += h.Size()
	}
	return next
}

// payload returns the raw payload of a verified batch, decompressing it
// into the buffer's next reusable slot.
func (ix *indexer) payload(batch []byte, h *record.Header) ([]byte, error) {
	if h.Codec() == record.CodecNone {
		return record.Decompress(nil, batch, h, 0)
	}
	b := ix.buf
	if ix.ndec == len(b.dec) {
		b.dec = append(b.dec, nil)
	}
	raw, err := record.Decompress(b.dec[ix.ndec][:0], batch, h, ix.maxRaw)
	switch {
	case errors.Is(err, record.ErrTooLarge):
		return nil, fmt.Errorf("client: topic %q offsets %d..%d: %w: %w", ix.topic, h.BaseOffset, h.LastOffset(), ErrMessageTooLarge, err)
	case err != nil:
		return nil, corrupt(ix.topic, h.BaseOffset, err)
	}
	if cap(b.dec[ix.ndec]) < len(raw) {
		b.dec[ix.ndec] = raw // Decompress allocated; keep it for the next read
	}
	ix.ndec++
	ix.decoded += len(raw)
	return raw, nil
}

// add records the messages of one raw payload that lie in [offset, stop).
func (ix *indexer) add(raw []byte, h *record.Header, offset, stop uint64) error {
	m := &ix.buf.msgs
	if len(raw) > math.MaxUint32 {
		return corrupt(ix.topic, h.BaseOffset, fmt.Errorf("raw payload of %d bytes", len(raw)))
	}
	bi := uint32(len(m.batches))
	m.batches = append(m.batches, batchRef{p: raw, time: time.Unix(0, h.AppendTime)})
	if !h.Extended() {
		return ix.addPlain(raw, h, bi, offset, stop)
	}
	var it record.Iter
	it.ResetPayload(raw, h)
	off := h.BaseOffset
	for msg, ok := it.NextMessage(); ok && off < stop; msg, ok = it.NextMessage() {
		if off >= offset {
			x := extRef{value: msg.Value, key: msg.Key, ts: msg.Timestamp}
			if msg.NumHeaders() > 0 {
				x.hlo = int32(len(m.hdrs))
				hi := msg.Headers()
				for k, v, ok := hi.Next(); ok; k, v, ok = hi.Next() {
					m.hdrs = append(m.hdrs, Header{Key: ix.buf.intern(k), Value: v})
				}
				x.hhi = int32(len(m.hdrs))
			}
			m.ext = append(m.ext, x)
			m.refs = append(m.refs, msgRef{b: bi, x: int32(len(m.ext))})
		}
		off++
	}
	if err := it.Err(); err != nil {
		return corrupt(ix.topic, h.BaseOffset, err)
	}
	return nil
}

// addPlain records the messages of a plain payload (each a uvarint length
// and the value) that lie in [offset, stop), checking the encoding as
// record.Iter does: count messages that end exactly at the payload's end.
func (ix *indexer) addPlain(raw []byte, h *record.Header, bi uint32, offset, stop uint64) error {
	m := &ix.buf.msgs
	refs := m.refs
	pos, off := 0, h.BaseOffset
	for left := h.Count; left > 0 && off < stop; left-- {
		var n uint64
		var k int
		if pos < len(raw) && raw[pos] < 0x80 {
			n, k = uint64(raw[pos]), 1 // lengths below 128: one byte
		} else {
			n, k = binary.Uvarint(raw[pos:])
		}
		if k <= 0 || n > uint64(len(raw)-pos-k) {
			m.refs = refs
			return corrupt(ix.topic, h.BaseOffset, fmt.Errorf("%w: message length runs past the payload (%d messages left)", record.ErrCorrupt, left))
		}
		if off >= offset {
			refs = append(refs, msgRef{off: uint32(pos + k), n: uint32(n), b: bi})
		}
		pos += k + int(n)
		off++
		if left == 1 && pos != len(raw) {
			m.refs = refs
			return corrupt(ix.topic, h.BaseOffset, fmt.Errorf("%w: %d bytes after the last message", record.ErrCorrupt, len(raw)-pos))
		}
	}
	m.refs = refs
	return nil
}

// maxInterned bounds the header keys a ConsumeBuffer remembers.
const maxInterned = 1024

// intern returns k as a string, without allocating for a key seen before.
func (b *ConsumeBuffer) intern(k []byte) string {
	if s, ok := b.keys[string(k)]; ok { // no allocation for the lookup
		return s
	}
	s := string(k)
	if b.keys == nil {
		b.keys = make(map[string]string)
	}
	if len(b.keys) < maxInterned {
		b.keys[s] = s
	}
	return s
}
