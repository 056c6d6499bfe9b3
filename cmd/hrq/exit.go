package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/topicname"
)

// Exit codes; doc.go and README.md list them.
const (
	exitOK          = 0
	exitError       = 1   // anything not below
	exitUsage       = 2   // bad command line: flags, arguments, a bad topic name
	exitConn        = 3   // cannot reach the broker, lost it, or it refused the token
	exitNotFound    = 4   // the topic or the offset does not exist
	exitData        = 5   // bad input, a message too large, corrupt data
	exitStorage     = 6   // the broker cannot store: a full disk, too few healthy volumes
	exitInterrupted = 130 // SIGINT or SIGTERM (128 + SIGINT, as shells report it)
)

// runError marks an error returned by a command's action, as opposed to
// one from cobra's own parsing (which is a usage error).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// usageError is a command line that cannot be run.
type usageError struct {
	err error
	cmd string // the command path, for the --help hint
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{err: fmt.Errorf(format, a...)} }

// dialError is a failure to connect to the broker at addr.
type dialError struct {
	addr string
	err  error
}

func (e dialError) Error() string { return e.err.Error() }
func (e dialError) Unwrap() error { return e.err }

// topicError names the topic a broker error is about.
type topicError struct {
	topic string
	err   error
}

func (e topicError) Error() string { return fmt.Sprintf("topic %q: %v", e.topic, e.err) }
func (e topicError) Unwrap() error { return e.err }

// onTopic wraps err, if any, with the topic it is about.
func onTopic(topic string, err error) error {
	if err == nil {
		return nil
	}
	return topicError{topic: topic, err: err}
}

// dataError is input hrq cannot send or output it cannot write.
type dataError struct{ err error }

func (e dataError) Error() string { return e.err.Error() }
func (e dataError) Unwrap() error { return e.err }

func dataErrorf(format string, a ...any) error { return dataError{fmt.Errorf(format, a...)} }

// reportedError ends a run whose error lines are printed already.
type reportedError struct{ code int }

func (e reportedError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// describe returns the exit code for err and the line to print (without
// the "hrq: " prefix).
func (a *app) describe(err error) (int, string) {
	var run runError
	if !errors.As(err, &run) {
		return cobraUsage(err)
	}
	var (
		ue usageError
		de dialError
		te topicError
		pe *client.Error
		se stalledError
	)
	topic := "?"
	if errors.As(err, &te) {
		topic = te.topic
	}
	var re reportedError
	switch {
	case errors.As(err, &re):
		return re.code, ""
	case errors.As(err, &ue):
		return exitUsage, withHelp(ue.Error(), ue.cmd)
	case errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted"
	case errors.Is(err, client.ErrUnauthorized):
		return exitConn, fmt.Sprintf("the broker at %s refused the token (set --token or HARAQA_TOKEN)", a.address())
	case errors.As(err, &de):
		return exitConn, fmt.Sprintf("cannot connect to %s: %s (is the broker running? set --addr or HARAQA_ADDR)", de.addr, cause(de.err))
	case errors.Is(err, client.ErrStorage):
		return exitStorage, fmt.Sprintf("the broker at %s cannot store messages: %s", a.address(), storageCause(err))
	case errors.As(err, &se):
		return exitConn, fmt.Sprintf("the broker at %s: %v", a.address(), se)
	case errors.Is(err, client.ErrDisconnected):
		return exitConn, fmt.Sprintf("lost the connection to %s: %s", a.address(), cause(err))
	case errors.Is(err, client.ErrGroupNotFound):
		return exitNotFound, err.Error()
	case errors.Is(err, client.ErrTopicNotFound):
		return exitNotFound, fmt.Sprintf("topic %q not found (hrq topics list shows the topics)", topic)
	case errors.Is(err, client.ErrOffsetOutOfRange) && errors.As(err, &pe):
		what := "offset"
		if m := offsetRE.FindString(pe.Message); m != "" {
			what = m
		}
		return exitNotFound, fmt.Sprintf("topic %q: %s out of range: the topic holds offsets [%d, %d)", topic, what, pe.Start, pe.End)
	case errors.Is(err, client.ErrBadTopicName):
		return exitUsage, fmt.Sprintf("bad topic name %q: use %s", topic, topicname.Rule)
	case errors.Is(err, client.ErrTopicExists):
		return exitError, fmt.Sprintf("topic %q already exists (--if-not-exists ignores that)", topic)
	case errors.Is(err, client.ErrBatchInvalid) && errors.Is(err, record.ErrTooLarge):
		return exitData, err.Error() + " (send smaller batches: --batch-bytes)"
	case isDataError(err):
		return exitData, err.Error()
	case client.IsRetriable(err):
		return exitError, err.Error() + " (temporary: try again)"
	}
	return exitError, err.Error()
}

// storageCause is the broker's storage complaint in err and, for a
// produce that gave up, how long it waited.
func storageCause(err error) string {
	var pe *client.Error
	msg := err.Error()
	if errors.As(err, &pe) {
		msg = pe.Message
	}
	var ss storageStall
	if errors.As(err, &ss) {
		msg += "; " + ss.stall.Error()
	}
	return msg
}

// offsetRE finds the offset in a broker's out-of-range message.
var offsetRE = regexp.MustCompile(`offset \d+`)

// isDataError reports an error about the messages themselves.
func isDataError(err error) bool {
	var de dataError
	return errors.As(err, &de) ||
		errors.Is(err, client.ErrMessageTooLarge) || errors.Is(err, client.ErrFrameTooLarge) ||
		errors.Is(err, client.ErrCorrupt) || errors.Is(err, client.ErrBatchInvalid) ||
		errors.Is(err, record.ErrCorrupt) || errors.Is(err, record.ErrTooLarge) || errors.Is(err, record.ErrCodec)
}

// cobraUsage describes an error of cobra's own parsing: an unknown
// command or flag, a missing argument.
func cobraUsage(err error) (int, string) {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage, withHelp(ue.Error(), ue.cmd)
	}
	// cobra adds "Run 'hrq --help' for usage." and, for an unknown
	// command, "Did you mean this?" with one suggestion per tabbed line.
	lines := strings.Split(err.Error(), "\n")
	var suggestions []string
	for _, l := range lines[1:] {
		if s, ok := strings.CutPrefix(l, "\t"); ok && s != "" {
			suggestions = append(suggestions, s)
		}
	}
	return exitUsage, withHelp(lines[0]+didYouMean(suggestions), "hrq")
}

// didYouMean reads " (did you mean consume?)", or "" without suggestions.
func didYouMean(suggestions []string) string {
	if len(suggestions) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(suggestions, " or ") + "?)"
}

// withHelp points to cmd's help; without cmd the message says enough.
func withHelp(msg, cmd string) string {
	if cmd == "" {
		return msg
	}
	return fmt.Sprintf("%s (see %s --help)", msg, cmd)
}

// cause returns the innermost useful text of a connection error: the
// system call's complaint rather than the chain of wrappers.
func cause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return strings.TrimPrefix(op.Err.Error(), "connect: ")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, client.ErrDisconnected.Error()+": "); ok {
		return after
	}
	return msg
}

// oneLine folds msg onto one line.
func oneLine(msg string) string {
	return strings.Join(strings.Fields(msg), " ")
}
