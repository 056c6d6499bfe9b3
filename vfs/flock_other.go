//go:build !linux && !darwin

package vfs

import (
	"errors"
	"os"
)

// Flock reports errors.ErrUnsupported: this platform (Windows) has no
// flock(2), and the engine falls back to a lock within the process.
func Flock(*os.File, bool) error { return errors.ErrUnsupported }
