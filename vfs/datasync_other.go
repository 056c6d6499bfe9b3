//go:build !darwin

package vfs

import "os"

// syncCall names the call datasync makes.
const syncCall = "fsync"

// datasync flushes f to stable storage (fsync; FlushFileBuffers on
// Windows). The Linux write path uses fdatasync instead (osfile_linux.go).
func datasync(f *os.File) error { return f.Sync() }
