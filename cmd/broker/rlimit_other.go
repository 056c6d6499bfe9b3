//go:build !linux && !darwin

package main

import "errors"

// raiseFileLimit reports that there is no descriptor limit to raise
// (Windows, where the broker is not supported: README.md, "Platforms").
func raiseFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.New("no descriptor limit on this platform")
}
