package kafka

import (
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/logsvc"
	"github.com/haraqa/haraqa/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	latestTs        = -1
	earliestTs      = -2
	maxTimestampTs  = -3 // v7+: the record with the largest timestamp
	earliestLocalTs = -4 // v8+
	latestTieredTs  = -5 // v9+
)

// handleListOffsets answers earliest, latest and by-time lookups. A time
// is looked up by the broker's append time (the index haraqa keeps), the
// first batch stored at or after it; with producer timestamps close to
// the broker's clock that is the record Kafka would find.
func handleListOffsets(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.ListOffsetsRequest)
	resp := kmsg.NewPtrListOffsetsResponse()
	var res engine.ReadResult
	defer res.Release()
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.Offset, rp.Timestamp = -1, -1
			if !c.may(auth.Consume, t.Topic) {
				rp.ErrorCode = errTopicAuthorization
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if p.Partition != partition {
				rp.ErrorCode = errUnknownTopicOrPartition
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			start, end, err := logsvc.LatestOffsets(c.s.svc, t.Topic)
			switch {
			case err != nil:
				rp.ErrorCode = codeOf(err)
			case p.Timestamp == latestTs:
				rp.Offset = int64(end)
			case p.Timestamp == earliestTs, p.Timestamp == earliestLocalTs:
				rp.Offset = int64(start)
			case p.Timestamp == latestTieredTs:
				// No tiered storage: no tiered offset (-1).
			case p.Timestamp == maxTimestampTs:
				if end > start {
					rp.Offset = int64(end - 1)
					rp.Timestamp = c.timeOf(t.Topic, end-1, &res)
				}
			case p.Timestamp < 0:
				rp.ErrorCode = errInvalidRequest
			default:
				off, err := c.s.svc.OffsetAt(t.Topic, time.UnixMilli(p.Timestamp))
				switch {
				case err != nil:
					rp.ErrorCode = codeOf(err)
				case off < end:
					rp.Offset = int64(max(off, start))
					rp.Timestamp = c.timeOf(t.Topic, uint64(rp.Offset), &res)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.finish(sl, h, resp)
}

// timeOf returns the append time in milliseconds of the batch holding
// offset, or -1.
func (c *conn) timeOf(topic string, offset uint64, res *engine.ReadResult) int64 {
	defer res.Release()
	if err := c.s.svc.Read(topic, offset, 1, 1, res); err != nil || len(res.Chunks) == 0 {
		return -1
	}
	h, err := record.ParseHeader(res.Chunks[0].Data())
	if err != nil {
		return -1
	}
	return h.AppendTime / 1e6
}
