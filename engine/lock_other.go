//go:build !linux

package engine

import (
	"github.com/haraqa/haraqa/segment"

	"github.com/haraqa/haraqa/vfs"
)

// Without flock support here, volumes are locked within the process only.

func flockVolume(dir string) (volumeLock, error) { return memLockVolume(vfs.OSFS{}, dir) }

func flockShared(string) (func() error, error) { return func() error { return nil }, nil }
