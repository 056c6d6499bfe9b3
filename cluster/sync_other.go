//go:build !linux

package cluster

import (
	"net"
	"os"
)

// directWrites: elsewhere the peer goroutines write every frame.
const directWrites = false

func writevNow(net.Conn, [][]byte) (int, error) { return 0, nil }

func fdatasync(f *os.File) error { return f.Sync() }

// writeVecs writes vecs back to back at offset off.
func writeVecs(f *os.File, vecs [][]byte, off int64) error {
	for _, v := range vecs {
		if _, err := f.WriteAt(v, off); err != nil {
			return err
		}
		off += int64(len(v))
	}
	return nil
}
