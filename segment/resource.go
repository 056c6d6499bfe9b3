package segment

import (
	"errors"
	"syscall"
)

// ErrResource is the class of failures to open or map a segment's files
// because the process is out of descriptors (EMFILE, ENFILE) or mappings
// (ENOMEM: vm.max_map_count or address space). It is no fault of the
// volume: the same operation succeeds once other files are let go.
var ErrResource = errors.New("segment: out of file descriptors or memory mappings")

// IsResource reports whether err is a resource failure: ErrResource, or an
// EMFILE, ENFILE or ENOMEM anywhere in its chain.
func IsResource(err error) bool {
	return err != nil && (errors.Is(err, ErrResource) || errors.Is(err, syscall.EMFILE) ||
		errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOMEM))
}
