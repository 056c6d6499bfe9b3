//go:build !windows

package vfs

// syncDir fsyncs the directory, making its entries durable.
func syncDir(dir string) error { return syncDirFsync(dir) }
