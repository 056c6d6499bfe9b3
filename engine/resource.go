package engine

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/haraqa/haraqa/segment"
)

// Resources: every open segment costs descriptors and memory mappings, both
// capped by the system (RLIMIT_NOFILE, vm.max_map_count). Running out is
// not a fault of a volume: it must never fence one, trigger a repair, or
// reach a client as anything but ErrResource (retriable).

// resourceEpisode tracks one run of resource failures, so that the first is
// logged with the numbers and the end is logged once.
type resourceEpisode struct {
	active   atomic.Bool
	errors   atomic.Int64 // failures in the current episode
	lastFail atomic.Int64 // unix ns of the last failure
}

// episodeQuiet is how long an episode must go without a failure before a
// success ends it: failures spread over a busy minute are one episode.
const episodeQuiet = 10 * time.Second

// FileLimits are the process's limits on descriptors and mappings, read
// by ReadFileLimits (resource_linux.go, resource_other.go).
type FileLimits struct {
	Files    int // RLIMIT_NOFILE, soft (what open(2) enforces); 0 unknown
	Mappings int // vm.max_map_count; 0 unknown
}

// resourceError turns a resource failure of what (an operation on a topic)
// into ErrResource: counted, and logged once per episode with the numbers.
func (e *Engine) resourceError(what string, err error) error {
	e.stats.resourceErrors.Add(1)
	e.resource.errors.Add(1)
	e.resource.lastFail.Store(time.Now().UnixNano())
	lim := e.opts.limits
	if e.resource.active.CompareAndSwap(false, true) {
		files, maps := ProcessFiles()
		e.opts.Logger.Warn("engine: out of file descriptors or memory mappings; requests that need more get a resource error until files are let go",
			"what", what, "err", err, "open_files", files, "file_limit", lim.Files,
			"mappings", maps, "max_map_count", lim.Mappings,
			"segment_files", e.press.usage.Files.Load(), "segment_mappings", e.press.usage.Maps.Load())
	}
	return fmt.Errorf("%w: %s (descriptor limit %d, vm.max_map_count %d): %w", ErrResource, what, lim.Files, lim.Mappings, err)
}

// resourceRecovered ends an episode after a request that needed files
// succeeded again.
func (e *Engine) resourceRecovered() {
	if e.resource.active.Load() && time.Now().UnixNano()-e.resource.lastFail.Load() > int64(episodeQuiet) &&
		e.resource.active.CompareAndSwap(true, false) {
		e.opts.Logger.Info("engine: file descriptors and mappings available again",
			"failures", e.resource.errors.Swap(0))
	}
}

func isResource(err error) bool { return segment.IsResource(err) }

// FileBudget returns the descriptors and mappings the engine lets its
// segments hold (Options.MaxOpenFiles, MaxMappings after defaults).
func (e *Engine) FileBudget() (files, maps int) { return e.opts.MaxOpenFiles, e.opts.MaxMappings }
