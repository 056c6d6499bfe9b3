package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/haraqa/haraqa/internal/retry"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// The Producer's side of idempotent produce: the producer id, the
// sequence numbers, and resending in order.
//
// Order. The broker stores the produces of one connection in the order
// they arrive and refuses a batch whose sequence skips ahead (a gap).
// When a batch fails retriably, the acker pauses the sender (no new batch
// is written while paused) and resends that batch, then every batch that
// was in flight behind it, one at a time in order; a batch behind it that
// the broker refused as a gap is resent too (once). When nothing written
// before the pause is left in flight, the sender resumes. The broker
// answers a batch it already stored with its original offsets.

// start writes b's produce request: it makes sure of a producer id, waits
// while the acker resends, stamps the id and the next sequence and writes
// the request. A connection that is down is redialled (with the Client's
// backoff) until the request is written or the Producer gives up (Close's
// context ended).
func (p *MultiProducer) start(b *pbatch) {
	if b.err != nil {
		return
	}
	for {
		if p.idem {
			if b.err = p.ensurePID(); b.err != nil {
				return
			}
		}
		p.smu.Lock()
		if !p.paused && (p.pid == 0 || p.dropPID.Load() != p.pid) {
			break // smu held: a pause waits for this write
		}
		if !p.paused {
			p.smu.Unlock()
			continue // the id was dropped meanwhile: ask again
		}
		ch := p.resumed
		p.smu.Unlock()
		select {
		case <-ch:
		case <-p.ctx.Done():
			b.err = p.ctx.Err()
			return
		}
	}
	defer p.smu.Unlock()
	if p.pid != 0 {
		b.pid, b.seq = p.pid, p.seqs[b.topic]
		p.seqs[b.topic] = b.seq + 1
		record.SetProducer(b.out, b.pid, b.seq)
	}
	b.sent = true
	p.inflight++
	b.sentAt = time.Now()
	b.cl = getCall(netproto.OpProduce)
	req := netproto.ProduceRequest{Topic: b.topicB}
	b.cl.head = req.AppendTo(b.cl.head)
	for {
		b.cn, b.err = p.c.connFor(p.ctx, b.topic)
		if b.err == nil {
			b.err = b.cn.send(b.cl, b.out)
		}
		if b.err == nil || !errors.Is(b.err, ErrDisconnected) || !p.c.cfg.reconnect || p.ctx.Err() != nil {
			break
		}
	}
	if b.err != nil && b.pid != 0 {
		// Not written (send fails only before writing; a failed write
		// reaches the acker through wait): the broker never saw the
		// sequence, so the next batch takes it.
		p.seqs[b.topic] = b.seq
		b.pid = 0
	}
}

// ensurePID asks the broker for a producer id when the Producer has none
// (or the acker dropped it), retrying retriable failures with backoff. A
// broker that does not know InitProducer makes the Producer not
// idempotent.
func (p *MultiProducer) ensurePID() error {
	if p.pid != 0 && p.dropPID.Load() != p.pid {
		return nil
	}
	p.pid = 0
	for failures := 0; ; {
		id, err := p.c.InitProducer(p.ctx)
		switch {
		case err == nil:
			p.pid = id
			clear(p.seqs)
			return nil
		case errors.Is(err, ErrUnknownOpcode):
			p.idem = false
			p.c.cfg.logger.Info("haraqa client: the broker has no idempotent producers; producing without")
			return nil
		case !p.retriable(err):
			return err
		}
		failures++
		if !retry.Sleep(p.ctx, p.c.backoff(failures)) {
			return err
		}
	}
}

// retriable reports whether resending may succeed: IsRetriable, while the
// Producer has not given up, and a dropped connection only when the Client
// reconnects.
func (p *MultiProducer) retriable(err error) bool {
	return IsRetriable(err) && p.ctx.Err() == nil &&
		(p.c.cfg.reconnect || !errors.Is(err, ErrDisconnected))
}

// await waits for b's ack and, for a batch with a producer id, resends it
// after retriable failures until it is acked or the Producer gives up.
func (p *MultiProducer) await(b *pbatch) {
	if b.err == nil {
		b.err = p.wait(b)
	}
	if b.pid == 0 {
		return
	}
	gapResent, reported, storageFails := false, false, 0
	for failures := 0; b.err != nil; {
		retriable := p.retriable(b.err)
		if !retriable && !gapResent && p.isPaused() && errors.Is(b.err, ErrBatchInvalid) {
			// Refused behind a batch being resent (a sequence gap).
			retriable, gapResent = true, true
		}
		if !retriable {
			return
		}
		p.retrying(b.err)
		if storageFails++; !errors.Is(b.err, ErrStorage) {
			storageFails = 0
		}
		if storageFails >= storageReportAfter && !reported {
			// The broker cannot store (a full disk): say so while
			// resending, rather than only once Close gives up.
			reported = true
			p.reportMessages(b, fmt.Errorf("%w: %w", ErrRetrying, b.err))
			if b.pid != 0 {
				// Finishing the builder to read the messages rewrote
				// the header that an uncompressed b.out shares: stamp
				// the id and sequence again before the resend.
				record.SetProducer(b.out, b.pid, b.seq)
			}
		}
		p.pause()
		failures++
		if !retry.Sleep(p.ctx, p.c.backoff(failures)) {
			return // b.err stays: Close gave up
		}
		p.resend(b)
	}
}

// storageReportAfter is how many attempts in a row a batch must fail with
// a storage error before ProducerOnError hears of it (with ErrRetrying): a
// single refusal (a volume being fenced) passes with the resend; a full
// disk does not.
const storageReportAfter = 3

// retrying notes the error a batch is being resent after, for Flush's
// error should its context end first.
func (p *MultiProducer) retrying(err error) {
	p.mu.Lock()
	p.retryErr = err
	p.mu.Unlock()
}

// resend writes b's batch again, unchanged, and waits for the ack.
func (p *MultiProducer) resend(b *pbatch) {
	if b.cl != nil {
		putCall(b.cl)
	}
	b.cl = getCall(netproto.OpProduce)
	req := netproto.ProduceRequest{Topic: b.topicB}
	b.cl.head = req.AppendTo(b.cl.head)
	b.cn, b.err = p.c.connFor(p.ctx, b.topic)
	if b.err == nil {
		b.err = b.cn.send(b.cl, b.out)
	}
	if b.err == nil {
		b.err = p.wait(b)
	}
}

// pause stops the sender from writing new batches until the batches in
// flight are through the acker.
func (p *MultiProducer) pause() {
	p.smu.Lock()
	defer p.smu.Unlock()
	if !p.paused {
		p.paused = true
		p.resumed = make(chan struct{})
	}
}

func (p *MultiProducer) isPaused() bool {
	p.smu.Lock()
	defer p.smu.Unlock()
	return p.paused
}
