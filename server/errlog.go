package server

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/haraqa/haraqa/netproto"
)

// What the broker logs about the errors it answers. An error frame tells
// the client what failed without the broker's file paths (wireError); the
// operator gets the full error in the log, rate-limited, and a full disk
// as one line when produces start failing for lack of space and one when
// they succeed again.

// replyError answers h with err. When the frame's message had to leave
// something out (file paths), the full error is logged, at most one line
// a second.
func (c *conn) replyError(h netproto.Header, err error) bool {
	e, cut := c.s.publicError(err)
	if cut {
		c.s.logCut(h.Opcode, err)
	}
	return c.writeError(h.Opcode, h.RequestID, e)
}

// publicError is wireError with the volume directories cut too (a
// relative one is no absolute path, which wireError cuts by itself).
func (s *Server) publicError(err error) (*netproto.Error, bool) {
	e, cut := wireErrorCut(err)
	if msg, ok := cutDirs(e.Message, s.volDirs); ok {
		c := *e // e may be err itself: never change it
		c.Message = msg
		e, cut = &c, true
	}
	return e, cut
}

// logCut logs an answered error whose frame left out detail, at most one
// line a second (ratelog): a failing disk under many clients must not
// flood the log.
func (s *Server) logCut(op netproto.Opcode, err error) {
	ok, dropped := s.errLog.Allow()
	if !ok {
		return
	}
	s.opts.Logger.Warn("server: request failed", "op", op.String(), "err", err, "not logged since the last line", dropped)
}

// spaceEpisode tracks a full disk as the produces see it. The first
// produce that fails for lack of space logs one ERROR line naming its
// topic and volume; the next produce that succeeds logs that space is
// available again. In between, produces failing for lack of space log
// nothing.
type spaceEpisode struct {
	full atomic.Bool // fast path of stored: one load per produce
	mu   sync.Mutex
	vols []string // the volumes seen full in this episode
}

// isNoSpace reports a failure for lack of space (ENOSPC, or EDQUOT: a quota).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// produceFailed notes a failed produce; it reports whether err was a
// full disk, which this episode logs (once) instead of logCut.
func (s *Server) produceFailed(topic string, err error) bool {
	if !isNoSpace(err) {
		return false
	}
	vol := s.volumeOf(err)
	sp := &s.space
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, v := range sp.vols {
		if v == vol {
			return true
		}
	}
	sp.vols = append(sp.vols, vol)
	sp.full.Store(true)
	s.opts.Logger.Error("server: produce failed: no space left on the volume; produces fail (retriably) until space is freed",
		"topic", topic, "volume", vol, "err", err)
	return true
}

// stored notes a successful produce: it ends a full-disk episode.
func (s *Server) stored(topic string) {
	sp := &s.space
	if !sp.full.Load() {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.full.Load() {
		return
	}
	sp.full.Store(false)
	s.opts.Logger.Info("server: space available again: produces are stored", "topic", topic, "volumes", strings.Join(sp.vols, ","))
	sp.vols = sp.vols[:0]
}

// volumeOf names the volume whose file err is about, or "?".
func (s *Server) volumeOf(err error) string {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return "?"
	}
	p := filepath.Clean(pe.Path)
	for _, d := range s.volDirs {
		c := filepath.Clean(d)
		if p == c || strings.HasPrefix(p, c+string(filepath.Separator)) {
			return d
		}
	}
	return "?"
}
