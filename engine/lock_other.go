//go:build !linux && !darwin

package engine

import "github.com/haraqa/haraqa/vfs"

// Without flock(2) (Windows), volumes are locked within the process only:
// a second broker process on the same directory is not refused. Windows is
// not a platform the broker supports (README.md, "Platforms").

func flockVolume(dir string) (volumeLock, error) { return memLockVolume(vfs.OSFS{}, dir) }

func flockShared(string) (func() error, error) { return func() error { return nil }, nil }
