// Package vfs is the file-system seam under the segment and engine
// packages; it imports nothing of the project.
//
// FS and File are the operations a log needs: exclusive create, open,
// remove, rename, directory create, list and sync, vectored WriteAt, Sync,
// Truncate and a read-only Map. OSFS is the operating system's; MemFS is an
// in-memory one for tests that models what survives a power loss (a file's
// bytes up to its last Sync, a directory's entries up to its last SyncDir,
// so a directory whose own entry was never synced is lost with everything
// in it), can run out of space (SetCapacity) and can fail or pause any
// operation (SetFault). WriteFileAtomic replaces a small file whole.
//
// The OS write path is per platform. On Linux (osfile_linux.go) WriteAt is
// one pwritev and Sync is fdatasync. Elsewhere (osfile_portable.go) WriteAt
// is a pwrite per buffer and Sync is F_FULLFSYNC on darwin, fsync on other
// systems. Building with -tags haraqa_portable selects the portable path on
// Linux too, so that its tests run there; WritePath names the one built.
//
// Example:
//
//	var fs vfs.FS = vfs.OSFS{}
//	if err := vfs.WriteFileAtomic(fs, "/data/VOLUME", b); err != nil { ... }
package vfs
