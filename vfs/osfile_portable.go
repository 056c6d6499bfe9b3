//go:build !linux || haraqa_portable

package vfs

// The portable write path, for every platform but Linux (and for Linux
// built with -tags haraqa_portable, so that CI runs the crash and fault
// suites through it): one pwrite per buffer through os.File.WriteAt, which
// loops on short writes, and a full-file sync (datasync_*.go).

// WritePath names the write and sync calls this build uses.
const WritePath = "pwrite+" + syncCall

// writeState is empty: os.File.WriteAt keeps nothing between calls.
type writeState struct{}

// Sync makes the file's data durable: F_FULLFSYNC on darwin (its fsync
// leaves the data in the drive's cache), fsync elsewhere.
func (f *osFile) Sync() error { return datasync(f.f) }

// WriteAt writes bufs back to back at off, one pwrite each.
func (f *osFile) WriteAt(bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		n, err := f.f.WriteAt(b, off)
		total += n
		if err != nil {
			return total, err
		}
		off += int64(n)
	}
	return total, nil
}
