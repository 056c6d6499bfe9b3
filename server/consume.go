package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

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
	head := resp.AppendHead(st.head[:0], h.RequestID)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.s.opts.ConsumeMode == ConsumeSendfile && len(res.Chunks) > 0 && res.Chunks[0].File() != nil {
		if !c.writeLocked(append(st.bufs[:0], head)) {
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
	st.bufs = st.vec
	ok := c.writeLocked(st.bufs)
	clear(st.vec)
	return ok
}

var errTruncated = errors.New("server: segment file shorter than its committed length")

// sendfile sends n bytes of f from pos to the connection, looping on short
// writes and waiting for the socket through its SyscallConn. wmu is held.
func (c *conn) sendfile(f *os.File, pos, n int64) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("server: connection has no file descriptor for sendfile")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	frc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := frc.Control(func(ffd uintptr) {
		serr = rc.Write(func(fd uintptr) bool {
			for n > 0 {
				w, err := unix.Sendfile(int(fd), int(ffd), &pos, int(min(n, 1<<30)))
				if w > 0 {
					n -= int64(w)
				}
				switch {
				case err == unix.EAGAIN:
					return false // wait until the socket is writable
				case err == unix.EINTR:
					continue
				case err != nil:
					serr = err
					return true
				case w == 0:
					serr = errTruncated
					return true
				}
			}
			return true
		})
	})
	if cerr != nil {
		return cerr
	}
	if serr != nil && serr != io.EOF {
		return serr
	}
	return nil
}
