package server

import (
	"errors"
	"net"
	"sync"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

var statePool = sync.Pool{New: func() any { return new(consumeState) }}

// consumeState is what one consume response needs, pooled so that a
// steady stream of consumes allocates nothing.
type consumeState struct {
	res  engine.ReadResult
	head [netproto.HeaderSize + netproto.ConsumeResponseFixedSize]byte
	bufs net.Buffers
	vec  [][]byte
}

func getState() *consumeState { return statePool.Get().(*consumeState) }

func putState(st *consumeState) {
	st.res.Release()
	statePool.Put(st)
}

func countOf(batch []byte) uint32 {
	if len(batch) < record.HeaderSize {
		return 0
	}
	return record.CountOf(batch)
}

// writeConsume sends the response header and the batch bytes of res, with
// one writev (ConsumeWritev) or header then sendfile (ConsumeSendfile).
func (c *conn) writeConsume(h netproto.Header, st *consumeState) bool {
	res := &st.res
	resp := netproto.ConsumeResponse{Start: res.Start, End: res.End, BatchBytes: uint32(res.Bytes)}
	head := resp.AppendHeadOp(st.head[:0], h.Opcode, h.RequestID)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.s.opts.ConsumeMode == ConsumeSendfile && len(res.Chunks) > 0 && res.Chunks[0].File() != nil {
		if !c.writeLocked(head) {
			return false
		}
		for _, ch := range res.Chunks {
			if err := c.sendfile(ch.File(), ch.Range.Pos, ch.Range.Len()); err != nil {
				c.fail(err)
				return false
			}
		}
		return true
	}
	st.vec = append(st.vec[:0], head)
	for _, ch := range res.Chunks {
		st.vec = append(st.vec, ch.Data())
	}
	// WriteTo consumes the slice it is given: hand it a copy of vec's
	// header so that vec keeps its capacity for the next response.
	st.bufs = st.vec
	ok := c.writevLocked(&st.bufs)
	clear(st.vec)
	return ok
}

var errTruncated = errors.New("server: segment file shorter than its committed length")
