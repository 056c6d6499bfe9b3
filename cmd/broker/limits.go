package main

import (
	"fmt"
	"log/slog"

	"github.com/haraqa/haraqa/engine"
)

// Every topic being written holds one descriptor and one memory mapping
// (its active segment's log); the engine keeps three quarters of the
// process's limits for segments and lets go of the least recently written
// topics' files past that. These checks make the limits visible at start.

// limitWarnings says what is too low for topics written at once: the
// descriptor limit files and vm.max_map_count maps (0: unknown).
func limitWarnings(topics, files, maps int) []string {
	var out []string
	if files > 0 && topics > files*3/4 {
		out = append(out, fmt.Sprintf("the descriptor limit %d lets at most %d topics hold their files at once, and %d topics are on disk: "+
			"past that the least recently written topics' files are closed and reopened as they are written (slower); "+
			"raise it to at least %d (systemd: LimitNOFILE=; shell: ulimit -n)", files, files*3/4, topics, suggest(topics)))
	}
	if maps > 0 && topics > maps*3/4 {
		out = append(out, fmt.Sprintf("vm.max_map_count %d lets at most %d topics hold their mappings at once, and %d topics are on disk: "+
			"raise it to at least %d (sysctl -w vm.max_map_count=%d, and in /etc/sysctl.d/)", maps, maps*3/4, topics, suggest(topics), suggest(topics)))
	}
	return out
}

// suggest is a limit that fits topics at three quarters, plus room for
// connections and sealed segments being read.
func suggest(topics int) int { return (topics*4/3 + 4096 + 1023) / 1024 * 1024 }

// raiseLimits runs before the engine opens, so that its budget sees the
// raised limit.
func raiseLimits(log *slog.Logger) {
	soft, hard, err := raiseFileLimit()
	if err != nil {
		log.Warn("could not raise the descriptor limit to its hard limit", "soft", soft, "hard", hard, "err", err)
	} else {
		log.Debug("descriptor limit", "soft", soft, "hard", hard)
	}
}

// checkLimits logs the limits in force and the engine's budget, and warns
// when they are too low for the topics on disk.
func checkLimits(log *slog.Logger, e *engine.Engine) {
	lim := engine.ReadFileLimits()
	files, maps := e.FileBudget()
	topics := len(e.Topics(""))
	log.Info("file limits", "descriptors", lim.Files, "vm.max_map_count", lim.Mappings,
		"segment_descriptors", files, "segment_mappings", maps, "topics", topics)
	for _, w := range limitWarnings(topics, lim.Files, lim.Mappings) {
		log.Warn(w)
	}
}
