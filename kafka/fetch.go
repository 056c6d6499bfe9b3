package kafka

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const errFetchSessionIDNotFound int16 = 70

// handleFetch answers Fetch in a goroutine of its own: it reads what the
// partitions hold, and while that is below MinBytes it waits (up to
// MaxWait) for any of them to grow. Fetch sessions (KIP-227) are not
// kept: every answer has session id 0, which tells the client to send
// full requests; a request naming a session gets FETCH_SESSION_ID_NOT_FOUND.
func handleFetch(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.FetchRequest)
	c.later(sl, h, func() kmsg.Response { return c.fetch(h, req) })
}

func (c *conn) fetch(h reqHeader, req *kmsg.FetchRequest) kmsg.Response {
	resp := kmsg.NewPtrFetchResponse()
	if req.SessionID != 0 {
		resp.ErrorCode = errFetchSessionIDNotFound
		return resp
	}
	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, c.s.opts.MaxWait)
	deadline := time.Now().Add(wait)
	maxBytes := c.s.opts.MaxFetchBytes
	if h.version >= 3 && req.MaxBytes > 0 {
		maxBytes = min(maxBytes, req.MaxBytes)
	}
	var res engine.ReadResult
	defer res.Release()
	var scratch []byte
	for {
		resp.Topics = resp.Topics[:0]
		total := int32(0)
		for _, t := range req.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = p.Partition
				rp.RecordBatches = []byte{} // empty, not null: clients refuse a null record set
				budget := min(maxBytes-total, max(p.PartitionMaxBytes, 0))
				scratch = c.fetchPartition(&rp, t.Topic, p.FetchOffset, budget, total == 0, &res, scratch)
				total += int32(len(rp.RecordBatches))
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if total >= req.MinBytes || total > 0 && req.MinBytes <= 0 || !time.Now().Before(deadline) {
			return resp
		}
		if !c.waitAny(resp, deadline) {
			return resp
		}
	}
}

// fetchPartition fills rp with the batches of topic from offset, up to
// budget bytes (at least one batch when first is set, as Kafka does for
// the first partition of an answer with data).
func (c *conn) fetchPartition(rp *kmsg.FetchResponseTopicPartition, topic string, offset int64, budget int32, first bool, res *engine.ReadResult, scratch []byte) []byte {
	if !c.may(auth.Consume, topic) {
		rp.ErrorCode = errTopicAuthorization
		return scratch
	}
	if rp.Partition != partition {
		rp.ErrorCode = errUnknownTopicOrPartition
		return scratch
	}
	start, end, err := c.s.svc.Offsets(topic)
	if err == nil && offset > int64(end) {
		// Past this replica's end: perhaps acknowledged, not applied here
		// yet (a lagging replica); never answer out of range for that.
		start, end, err = logsvc.LatestOffsets(c.s.svc, topic)
	}
	if err != nil {
		rp.ErrorCode = codeOf(err)
		return scratch
	}
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = int64(end), int64(end), int64(start)
	if offset < int64(start) || offset > int64(end) {
		rp.ErrorCode = errOffsetOutOfRange
		return scratch
	}
	if offset == int64(end) || budget <= 0 && !first {
		return scratch
	}
	if err := c.s.svc.Read(topic, uint64(offset), ^uint64(0)>>1, int64(max(budget, 1)), res); err != nil {
		rp.ErrorCode = codeOf(err)
		return scratch
	}
	out := make([]byte, 0, kafkaSize(res, int(budget)))
	for _, ch := range res.Chunks {
		data := ch.Data()
		for len(data) > 0 {
			bh, err := record.ParseHeader(data)
			if err != nil || bh.Size() > len(data) {
				rp.ErrorCode = errCorruptMessage
				break
			}
			batch := data[:bh.Size()]
			data = data[bh.Size():]
			if len(out) > 0 && int32(len(out)) >= budget {
				break
			}
			raw, err := record.Decompress(scratch[:0], batch, &bh, int(c.s.opts.MaxBatchBytes))
			if err != nil {
				rp.ErrorCode = codeOf(err)
				break
			}
			if bh.Codec() != record.CodecNone {
				scratch = raw
			}
			if out, err = appendKafka(out, &bh, raw, uint64(offset)); err != nil {
				rp.ErrorCode = errCorruptMessage
				break
			}
		}
	}
	res.Release()
	if rp.ErrorCode != errNone && len(out) > 0 {
		rp.ErrorCode = errNone // hand out what is good; the next fetch meets the damage
	}
	if len(out) > 0 {
		rp.RecordBatches = out
	}
	return scratch
}

// waitAny waits until one of the answered partitions grows past the high
// watermark it was answered with, the deadline passes or the connection
// ends; it reports whether to read again.
func (c *conn) waitAny(resp *kmsg.FetchResponse, deadline time.Time) bool {
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	var wg sync.WaitGroup
	var grew atomic.Bool
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != errNone || n >= 64 {
				continue
			}
			n++
			wg.Add(1)
			go func(topic string, end uint64) {
				defer wg.Done()
				if c.s.svc.Wait(ctx, topic, end) == nil {
					grew.Store(true)
					cancel()
				}
			}(t.Topic, uint64(p.HighWatermark))
		}
	}
	wg.Wait()
	if !grew.Load() {
		<-ctx.Done() // nothing to wait on (or it went): sleep out the wait
	}
	return c.ctx.Err() == nil && time.Now().Before(deadline)
}

// kafkaSize bounds the size of the batches of res an answer of budget
// bytes takes once re-encoded (uncompressed; a few bytes per message more
// than haraqa's encoding), so that it is allocated once instead of grown
// batch by batch.
func kafkaSize(res *engine.ReadResult, budget int) int {
	n := 1024
	for _, ch := range res.Chunks {
		data := ch.Data()
		for len(data) >= record.HeaderSize && n-1024 < budget {
			h, err := record.ParseHeader(data)
			if err != nil || h.Size() > len(data) {
				break
			}
			n += int(h.RawLen) + 8*int(h.Count) + 128
			data = data[h.Size():]
		}
	}
	return n
}
