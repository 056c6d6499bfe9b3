//go:build !linux

package engine

// Off Linux (development platforms) the limits and counts are read where
// the system offers them without /proc: the descriptor limit on darwin
// (rlimit_darwin.go); vm.max_map_count and the process's mapping count are
// Linux's and stay unknown.

// ReadFileLimits reads the process's current limits.
func ReadFileLimits() FileLimits { return FileLimits{Files: fileLimit()} }

// ProcessFiles counts the descriptors and mappings the process holds now;
// off Linux both are -1 (unknown).
func ProcessFiles() (files, mappings int) { return -1, -1 }
