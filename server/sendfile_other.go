//go:build !linux || haraqa_portable

package server

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Off Linux (and on Linux built with -tags haraqa_portable) a consume in
// sendfile mode copies the range through a buffer: darwin's sendfile(2)
// does not advance the file offset as Linux's does, and Windows has none.
// Development platforms only (README.md, "Platforms").

// sendfileOp is the connection's copy buffer, guarded by wmu.
type sendfileOp struct{ buf []byte }

// sendfile sends n bytes of f from pos to the connection. wmu is held.
func (c *conn) sendfile(f *os.File, pos, n int64) error {
	if f == nil {
		return errors.New("server: segment has no file for sendfile")
	}
	if c.sf == nil {
		c.sf = &sendfileOp{buf: make([]byte, 64<<10)}
	}
	buf := c.sf.buf
	for n > 0 {
		r, err := f.ReadAt(buf[:min(n, int64(len(buf)))], pos)
		if r > 0 {
			if _, werr := c.nc.Write(buf[:r]); werr != nil {
				return werr
			}
			pos += int64(r)
			n -= int64(r)
		}
		if n > 0 && err != nil {
			if errors.Is(err, io.EOF) {
				err = errTruncated
			}
			return fmt.Errorf("server: sendfile: %w", err)
		}
	}
	return nil
}
