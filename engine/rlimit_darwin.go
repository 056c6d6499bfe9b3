package engine

import "golang.org/x/sys/unix"

// fileLimit is the soft RLIMIT_NOFILE, or 0 if unknown.
func fileLimit() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1<<31 {
		return int(rl.Cur)
	}
	return 0
}
