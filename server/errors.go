package server

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// engineCodes maps the engine's error classes to wire codes. The first
// match wins, and the order matters: an engine error can wrap two classes.
// ErrInvalidBatch wraps the record package's ErrCorrupt (which is
// engine.ErrCorrupt) when a produced batch fails its checksum, and
// ErrReadOnly wraps the corruption that made a topic read-only; the client
// must see BatchInvalid and ReadOnly there, not Corrupt, which claims that
// stored data is damaged. So ErrCorrupt comes after every class that may
// wrap it.
var engineCodes = []struct {
	err  error
	code netproto.Code
}{
	{engine.ErrInvalidBatch, netproto.CodeBatchInvalid},
	{engine.ErrReadOnly, netproto.CodeReadOnly},
	{engine.ErrGroupNotFound, netproto.CodeGroupNotFound},
	{engine.ErrGroupExists, netproto.CodeGroupConfigMismatch},
	{engine.ErrStaleMember, netproto.CodeStaleMember},
	{engine.ErrNotLeased, netproto.CodeNotLeased},
	{engine.ErrGroupLimit, netproto.CodeGroupLimit},
	{engine.ErrBadGroupRequest, netproto.CodeMalformed},
	{engine.ErrTopicNotFound, netproto.CodeTopicNotFound},
	{engine.ErrTopicExists, netproto.CodeTopicExists},
	{engine.ErrBadTopicName, netproto.CodeBadTopicName},
	{engine.ErrOutOfRange, netproto.CodeOffsetOutOfRange},
	{engine.ErrResource, netproto.CodeResource},
	{engine.ErrStorage, netproto.CodeStorage},
	{engine.ErrClosed, netproto.CodeShuttingDown},
	{engine.ErrCorrupt, netproto.CodeCorrupt},
	{context.DeadlineExceeded, netproto.CodeTimeout},
	{context.Canceled, netproto.CodeShuttingDown},
}

// wireError turns an engine error into the error response to send. The
// message leaves out the broker's file paths (see publicText).
func wireError(err error) *netproto.Error {
	e, _ := wireErrorCut(err)
	return e
}

// wireErrorCut is wireError; cut reports that file paths were left out of
// the message, which the full error (for the log) still has.
func wireErrorCut(err error) (e *netproto.Error, cut bool) {
	var pe *netproto.Error
	if errors.As(err, &pe) {
		return pe, false
	}
	code := netproto.CodeInternal
	for _, m := range engineCodes {
		if errors.Is(err, m.err) {
			code = m.code
			break
		}
	}
	msg, cut := publicText(err)
	e = netproto.NewError(code, msg)
	var re *engine.RangeError
	if errors.As(err, &re) {
		e.Start, e.End = re.Start, re.End
	}
	var ce *engine.CorruptError
	if code == netproto.CodeCorrupt && errors.As(err, &ce) {
		e.Start, e.End = ce.First, ce.Next // the damaged offsets, to skip
	}
	return e, cut
}

// absPath matches an absolute file path at the start of a word, with the
// character before it: the text of a path that publicText could not cut
// structurally.
var absPath = regexp.MustCompile(`(^|[\s"'(=])/[^\s"'(),;:]+`)

// cutPaths removes the absolute paths from msg; a quote or parenthesis
// before a path stays.
func cutPaths(msg string) string {
	return absPath.ReplaceAllStringFunc(msg, func(m string) string {
		if m[0] == '/' || m[0] == ' ' || m[0] == '\t' || m[0] == '\n' {
			return ""
		}
		return m[:1]
	})
}

// publicText is err's text without file paths: a client learns what
// failed ("write: no space left on device"), not where the broker keeps
// its files. Paths in an *fs.PathError or *os.LinkError are cut from their
// own text; any absolute path left is cut by pattern. cut reports whether
// anything was left out.
func publicText(err error) (msg string, cut bool) {
	msg = err.Error()
	for e := err; e != nil; {
		switch x := e.(type) {
		case *fs.PathError:
			msg = strings.Replace(msg, x.Error(), x.Op+": "+errText(x.Err), 1)
		case *os.LinkError:
			msg = strings.Replace(msg, x.Error(), x.Op+": "+errText(x.Err), 1)
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, w := range u.Unwrap() {
				m, c := publicText(w)
				if c {
					msg = strings.Replace(msg, w.Error(), m, 1)
				}
			}
			break
		}
		e = errors.Unwrap(e)
	}
	msg = cutPaths(msg)
	return msg, msg != err.Error()
}

func errText(err error) string {
	if err == nil {
		return "error"
	}
	return err.Error()
}

// cutDirs replaces the volume directories in msg (relative ones, which
// absPath does not catch) with "<volume>".
func cutDirs(msg string, dirs []string) (string, bool) {
	cut := false
	for _, d := range dirs {
		if d != "" && d != "." && d != "/" && strings.Contains(msg, d) {
			msg, cut = strings.ReplaceAll(msg, d, "<volume>"), true
		}
	}
	return msg, cut
}

// volumeLister is a log service that says where its volumes are.
type volumeLister interface {
	Volumes() []engine.VolumeInfo
}

// volumeDirs lists e's volume directories as given and cleaned, longest
// first, for cutDirs and volumeOf.
func volumeDirs(e volumeLister) []string {
	var out []string
	for _, v := range e.Volumes() {
		out = append(out, v.Dir)
		if c := filepath.Clean(v.Dir); c != v.Dir {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
