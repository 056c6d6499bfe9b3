package segment

import (
	"errors"
	"sync/atomic"
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

// Usage counts the descriptors and memory mappings that loaded segments
// hold (Options.Usage): one descriptor and one mapping per loaded
// unsealed segment, one descriptor and two mappings per loaded sealed one.
// Short-lived opens (Open's recovery, an index written or read back) are
// not counted.
type Usage struct {
	Files, Maps atomic.Int64
}

// account records that the segment now holds files descriptors and maps
// mappings. Called with mu held (or before the segment is shared).
func (s *Segment) account(files, maps int) {
	if u := s.opts.Usage; u != nil {
		u.Files.Add(int64(files - s.held[0]))
		u.Maps.Add(int64(maps - s.held[1]))
	}
	s.held = [2]int{files, maps}
}

// TakeRecent reports whether the segment was written or loaded since the
// last call, and clears that mark: a clock sweep's second chance.
func (s *Segment) TakeRecent() bool { return s.recent.Swap(false) }
