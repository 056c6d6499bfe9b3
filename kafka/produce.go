package kafka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A produceBuf holds what one Kafka batch becomes until the engine
// stored it: the builder's buffers back the haraqa batch, so it goes back
// to the pool only after Pending.Wait.
type produceBuf struct {
	bld  record.Builder
	raw  []byte
	hdrs []record.MessageHeader
	kb   kmsg.RecordBatch
}

var produceBufs = sync.Pool{New: func() any { return new(produceBuf) }}

// queued is one partition's appends waiting for their acknowledgement.
type queued struct {
	rp      *kmsg.ProduceResponseTopicPartition
	topic   string
	pending []engine.Pending
	bufs    []*produceBuf
}

// handleProduce converts and enqueues every batch in the reader's
// goroutine, so that a connection's produces are appended in the order
// sent; the acknowledgements are awaited in a goroutine of their own.
// acks=0 gets no answer (Kafka's rule); acks=1 and acks=-1 both answer
// once the batches are stored per the broker's fsync policy.
func handleProduce(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.ProduceRequest)
	resp := kmsg.NewPtrProduceResponse()
	timeout := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	ctx, cancel := context.WithTimeout(c.ctx, max(timeout, time.Second))
	var waits []*queued
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		allowed := c.may(auth.Produce, t.Topic)
		var topicErr error
		if allowed {
			topicErr = c.s.exists(t.Topic, true)
		}
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			rp.Default()
			rp.Partition = p.Partition
			rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = -1, -1, -1
			switch {
			case req.TransactionID != nil:
				rp.ErrorCode = errTransactionalIDAuth
			case !allowed:
				rp.ErrorCode = errTopicAuthorization
			case topicErr != nil:
				rp.ErrorCode = codeOf(topicErr)
			case p.Partition != partition:
				rp.ErrorCode = errUnknownTopicOrPartition
			default:
				q := &queued{rp: rp, topic: t.Topic}
				c.enqueue(ctx, q, p.Records)
				waits = append(waits, q)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	go func() {
		defer cancel()
		for _, q := range waits {
			q.await(c.s)
		}
		if req.Acks == 0 {
			close(sl.done)
			return
		}
		c.finish(sl, h, resp)
	}()
}

// enqueue converts the partition's batches and queues them; a failure
// sets the partition's error and stops there.
func (c *conn) enqueue(ctx context.Context, q *queued, recs []byte) {
	if len(recs) == 0 {
		q.rp.ErrorCode = errInvalidRecord
		return
	}
	for len(recs) > 0 {
		pb := produceBufs.Get().(*produceBuf)
		batch, rest, err := c.convert(pb, recs)
		if err == nil {
			var p engine.Pending
			if p, err = c.s.svc.Enqueue(ctx, q.topic, batch); err == nil {
				q.pending = append(q.pending, p)
				q.bufs = append(q.bufs, pb)
				recs = rest
				continue
			}
		}
		produceBufs.Put(pb)
		q.rp.ErrorCode = produceCode(err)
		q.rp.ErrorMessage = kmsg.StringPtr(err.Error())
		return
	}
}

// convert turns the first Kafka batch of recs into a haraqa batch.
func (c *conn) convert(pb *produceBuf, recs []byte) (batch, rest []byte, err error) {
	rest, err = nextBatch(recs, &pb.kb)
	if err != nil {
		return nil, nil, err
	}
	raw := pb.kb.Records
	codec := int(pb.kb.Attributes & attrCodecMask)
	if codec != codecNone {
		if pb.raw, err = c.s.dec.decode(codec, raw, pb.raw[:0]); err != nil {
			return nil, nil, err
		}
		raw = pb.raw
	} else if len(raw) > c.s.opts.MaxBatchBytes {
		return nil, nil, errTooLarge
	}
	if pb.hdrs, err = toHaraqa(&pb.kb, raw, &pb.bld, pb.hdrs); err != nil {
		return nil, nil, err
	}
	if codec != codecNone {
		// The producer compressed: store compressed too (s2 is cheap).
		batch, err = pb.bld.FinishCodec(record.CodecS2)
	} else {
		batch, err = pb.bld.Finish()
	}
	if err != nil {
		return nil, nil, err
	}
	if kb := &pb.kb; kb.ProducerID >= 0 && kb.FirstSequence >= 0 {
		record.SetProducer(batch, haraqaProducer(kb.ProducerID, kb.ProducerEpoch), uint32(kb.FirstSequence))
	}
	return batch, rest, nil
}

// await waits for the partition's appends and fills in its answer.
func (q *queued) await(s *Server) {
	for i, p := range q.pending {
		base, err := p.Wait()
		produceBufs.Put(q.bufs[i])
		if q.rp.ErrorCode != errNone {
			continue
		}
		if err != nil {
			q.rp.ErrorCode = produceCode(err)
			q.rp.ErrorMessage = kmsg.StringPtr(err.Error())
			q.rp.BaseOffset = -1
			continue
		}
		if i == 0 {
			q.rp.BaseOffset = int64(base)
		}
	}
	if q.rp.ErrorCode == errNone {
		if start, _, err := s.svc.Offsets(q.topic); err == nil {
			q.rp.LogStartOffset = int64(start)
		}
	}
}

// produceCode maps a produce failure onto a Kafka error code.
func produceCode(err error) int16 {
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, errBatchTooLarge), errors.Is(err, record.ErrTooLarge):
		return errMessageTooLarge
	case errors.Is(err, errBatchType):
		return errInvalidRecord
	case errors.Is(err, errBadBatch):
		return errCorruptMessage
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errKafkaStorage // timed out queueing; nothing was appended
	}
	if code := codeOf(err); code != errUnknownServer {
		return code
	}
	return errCorruptMessage // a decompression failure
}
