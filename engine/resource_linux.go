package engine

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadFileLimits reads the process's current limits.
func ReadFileLimits() FileLimits {
	var l FileLimits
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1<<31 {
		l.Files = int(rl.Cur)
	}
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		l.Mappings, _ = strconv.Atoi(string(bytes.TrimSpace(b)))
	}
	return l
}

// ProcessFiles counts the descriptors and mappings the process holds now,
// from /proc (-1 where it cannot tell: reading /proc takes a descriptor).
func ProcessFiles() (files, mappings int) {
	files, mappings = -1, -1
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		files = len(ents) - 1 // less the one ReadDir held
	}
	if b, err := os.ReadFile("/proc/self/maps"); err == nil {
		mappings = bytes.Count(b, []byte{'\n'})
	}
	return files, mappings
}
