package server

import (
	"errors"
	"math"
	"net"
	"sync"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// defaultGroupFetch is the number of messages a group fetch leases when the
// request leaves it to the broker.
const defaultGroupFetch = 1000

// fetchState is what one group fetch response needs: a read result per
// leased range read, the ranges sent, the frame head. Pooled, so that a
// steady stream of fetches reuses its buffers.
type fetchState struct {
	reads  []engine.ReadResult
	nread  int
	ranges []netproto.LeasedRange
	unsent []engine.OffsetRange
	head   []byte
	bufs   net.Buffers
	vec    [][]byte
}

var fetchPool = sync.Pool{New: func() any { return new(fetchState) }}

// next returns a read result for the next read.
func (st *fetchState) next() *engine.ReadResult {
	if st.nread == len(st.reads) {
		st.reads = append(st.reads, engine.ReadResult{})
	}
	st.nread++
	return &st.reads[st.nread-1]
}

// drop gives back the last read result, unused.
func (st *fetchState) drop() {
	st.nread--
	st.reads[st.nread].Release()
}

func (st *fetchState) release() {
	for i := range st.nread {
		st.reads[i].Release()
	}
	st.nread = 0
	st.ranges, st.unsent = st.ranges[:0], st.unsent[:0]
	fetchPool.Put(st)
}

// bytes returns the batch bytes read so far.
func (st *fetchState) bytes() int64 {
	var n int64
	for i := range st.nread {
		n += st.reads[i].Bytes
	}
	return n
}

func (c *conn) groupFetch(h netproto.Header, body []byte) bool {
	var req netproto.GroupFetchRequest
	if err := req.Decode(body); err != nil {
		return c.decodeFailed(h, err)
	}
	group, topic, err := c.memberNames(req.Group, req.Topic)
	if err != nil {
		return c.replyError(h, err)
	}
	n := int(req.MaxMessages)
	if n == 0 {
		n = defaultGroupFetch
	}
	// Each leased message may be a range of its own in the response: keep
	// the ranges within half of MaxBody, the rest is for the batches.
	n = min(n, engine.MaxGroupFetch, max(1, (int(c.s.opts.MaxBody)/2-netproto.GroupFetchResponseFixedSize)/netproto.LeasedRangeSize))
	wait := min(millis(req.MaxWaitMillis), c.s.opts.MaxWait)
	m := engine.Member{ID: req.MemberID, Epoch: req.MemberEpoch}
	res, err := c.s.e.GroupFetch(c.pollCtx, topic, group, m, n, wait)
	if err != nil && !(isContextErr(err) && c.pollCtx.Err() != nil) {
		return c.replyError(h, err)
	}
	// A fetch cut short by Shutdown answers with nothing, as a consume's
	// long poll does.
	m.Epoch = res.Epoch
	if err != nil || len(res.Leases) == 0 {
		resp := netproto.GroupFetchResponse{MemberEpoch: res.Epoch}
		resp.Start, resp.End, _ = c.s.e.Offsets(topic)
		return c.respond(h, &resp, nil)
	}
	st := fetchPool.Get().(*fetchState)
	defer st.release()
	// Every leased message is sent if the response fits in MaxBody: a
	// lease sent back unread would count as a delivery. (MaxBytes is
	// advisory; the fetch is bounded by MaxMessages.)
	head := netproto.GroupFetchResponseFixedSize + netproto.LeasedRangeSize*len(res.Leases)
	limit := int64(c.s.opts.MaxBody) - int64(head)
	maxBytes := limit
	rerr := c.readLeases(topic, res.Leases, maxBytes, limit, st)
	if len(st.unsent) > 0 {
		// Leased, but not sent: out of the byte budget, removed by
		// retention, or unreadable. They go back at once for the next
		// fetch (of any member), not counted as a delivery (no member got
		// them); the lease is not left to lapse.
		if err := c.s.e.GroupReturn(c.ctx, topic, group, m, st.unsent); err != nil {
			c.s.opts.Logger.Warn("server: group fetch: releasing unsent leases", "topic", topic, "group", group, "err", err)
		}
	}
	if len(st.ranges) == 0 {
		if rerr != nil {
			return c.replyError(h, rerr)
		}
		resp := netproto.GroupFetchResponse{MemberEpoch: res.Epoch}
		resp.Start, resp.End, _ = c.s.e.Offsets(topic)
		return c.respond(h, &resp, nil)
	}
	return c.writeGroupFetch(h, res.Epoch, st)
}

// readLeases reads the batches that hold the leased offsets, in offset
// order, into st, within maxBytes (but at least one batch, if it is within
// limit). A batch that holds offsets of two leases is read once. The parts
// of leases that were read go to st.ranges, the rest to st.unsent. It
// returns the read error that stopped it, if any.
func (c *conn) readLeases(topic string, leases []engine.Lease, maxBytes, limit int64, st *fetchState) error {
	var covered uint64 // the offset after the last batch read
	var rerr error
	budget := maxBytes
	for _, l := range leases {
		from, off := l.First, max(l.First, covered)
		for rerr == nil && off < l.Next && (budget > 0 || st.nread == 0) {
			rr := st.next()
			err := c.s.e.Read(topic, off, l.Next-off, budget, rr)
			var re *engine.RangeError
			if errors.As(err, &re) && off < re.Start {
				// Retention removed these since they were leased.
				st.drop()
				st.unsent = append(st.unsent, engine.OffsetRange{First: from, Next: min(re.Start, l.Next)})
				from = min(re.Start, l.Next)
				off = max(off, from)
				continue
			}
			if err != nil || len(rr.Chunks) == 0 {
				st.drop()
				if err == nil {
					err = netproto.NewError(netproto.CodeInternal, "leased offsets past the topic's end")
				}
				rerr = err
				break
			}
			if rr.Bytes > budget && st.nread > 1 {
				st.drop() // over the budget: only the first read may be
				budget = 0
				break
			}
			if rr.Bytes > limit {
				// One stored batch larger than this server's MaxBody
				// (lowered since it was written): it cannot be sent.
				st.drop()
				rerr = &netproto.Error{Code: netproto.CodeInternal, Message: "stored batch larger than the server's MaxBody"}
				break
			}
			budget -= rr.Bytes
			covered = rr.Next()
			off = covered
		}
		sent := min(off, l.Next)
		if covered < sent {
			sent = covered // nothing read reaches here (an error or the budget stopped it)
		}
		if sent > from {
			st.ranges = appendLeased(st.ranges, from, sent, l.Deliveries)
		}
		if rest := max(sent, from); rest < l.Next {
			st.unsent = append(st.unsent, engine.OffsetRange{First: rest, Next: l.Next})
		}
	}
	return rerr
}

// appendLeased appends [first, next) as wire ranges, split where a count
// would not fit in a u32.
func appendLeased(dst []netproto.LeasedRange, first, next uint64, deliveries uint32) []netproto.LeasedRange {
	for first < next {
		n := min(next-first, math.MaxUint32)
		dst = append(dst, netproto.LeasedRange{First: first, Count: uint32(n), Deliveries: max(deliveries, 1)})
		first += n
	}
	return dst
}

// writeGroupFetch sends the response head and the batch bytes read, with
// sendfile (ConsumeSendfile) or one writev.
func (c *conn) writeGroupFetch(h netproto.Header, epoch uint64, st *fetchState) bool {
	var start, end uint64
	if st.nread > 0 {
		last := &st.reads[st.nread-1]
		start, end = last.Start, last.End
	}
	resp := netproto.GroupFetchResponse{Start: start, End: end, MemberEpoch: epoch, Ranges: st.ranges, BatchBytes: uint32(st.bytes())}
	st.head = resp.AppendHead(st.head[:0], h.RequestID)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.s.opts.ConsumeMode == ConsumeSendfile && st.reads[0].Chunks[0].File() != nil {
		if !c.writeLocked(st.head) {
			return false
		}
		for i := range st.nread {
			for _, ch := range st.reads[i].Chunks {
				if err := c.sendfile(ch.File(), ch.Range.Pos, ch.Range.Len()); err != nil {
					c.fail(err)
					return false
				}
			}
		}
		return true
	}
	st.vec = append(st.vec[:0], st.head)
	for i := range st.nread {
		for _, ch := range st.reads[i].Chunks {
			st.vec = append(st.vec, ch.Data())
		}
	}
	st.bufs = st.vec
	ok := c.writevLocked(&st.bufs)
	clear(st.vec)
	return ok
}
