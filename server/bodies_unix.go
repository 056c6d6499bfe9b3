//go:build linux || darwin

package server

import "golang.org/x/sys/unix"

// mapBody maps n bytes of anonymous memory for a large body: unmapped, it
// goes back to the system at once instead of waiting for the collector.
func mapBody(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

func unmapBody(b []byte) { unix.Munmap(b) }
