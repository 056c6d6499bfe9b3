package vfs

// syncDir does nothing on Windows: a directory cannot be opened there for
// FlushFileBuffers, and NTFS journals its own metadata. Windows is not a
// platform the broker supports (README.md, "Platforms").
func syncDir(string) error { return nil }
