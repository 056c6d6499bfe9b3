//go:build !linux

package engine

import "github.com/haraqa/haraqa/segment"

// Without flock support here, volumes are locked within the process only.

func flockVolume(dir string) (volumeLock, error) { return memLockVolume(segment.OSFS{}, dir) }

func flockShared(string) (func() error, error) { return func() error { return nil }, nil }
