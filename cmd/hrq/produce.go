package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/netproto"
	"github.com/haraqa/haraqa/record"
)

// maxMessage is the longest message read from the input: the default
// frame limit of broker and client.
const maxMessage = int(netproto.DefaultMaxBody)

// closeGrace is how long an interrupted produce still waits for the
// messages it has read to be stored.
const closeGrace = 5 * time.Second

type produceFlags struct {
	delim       string
	delimSet    bool // -D was given
	nul         bool
	files       []string
	key         string
	keySep      string
	headers     []string
	compression string
	inFlight    int
	batchBytes  int
	linger      time.Duration
	timeout     time.Duration
	verbose     bool
}

func (a *app) produceCommand() *cobra.Command {
	var f produceFlags
	cmd := &cobra.Command{
		Use:   "produce TOPIC [MESSAGE...]",
		Short: "Send messages: the arguments, whole files, or stdin one line at a time",
		Long: `Send messages to TOPIC. With MESSAGE arguments each argument is one message and
stdin is never read; with --file each file is one message ("-" is all of stdin);
otherwise stdin is read and split at newlines (-D for another delimiter, -0 for
NUL). Messages are batched: a batch goes out at --batch-bytes (1 MiB), 10,000
messages or after --linger (5ms). hrq exits once every message is stored (0) or with the error of the
first batch that failed.`,
		Example: `  seq 1 100000 | hrq produce numbers
  hrq produce greetings hello 'hello world'
  hrq produce events --key user-42 -H source=shell -H trace=abc '{"type":"login"}'
  find . -print0 | hrq produce files -0
  hrq produce blobs --file image.png --compression zstd`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: action(func(cmd *cobra.Command, args []string) error {
			f.delimSet = cmd.Flags().Changed("delimiter")
			return a.produce(cmd.Context(), args[0], args[1:], &f)
		}),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.delim, "delimiter", "D", "\n", "message delimiter on stdin (escapes: \\n \\t \\r \\0 \\\\ \\xHH)")
	fl.BoolVarP(&f.nul, "null", "0", false, "messages on stdin end with NUL (as find -print0 writes them)")
	fl.StringArrayVar(&f.files, "file", nil, "send the whole `FILE` as one message (repeatable; - for stdin)")
	fl.StringVarP(&f.key, "key", "k", "", "key of every message")
	fl.StringVarP(&f.keySep, "key-delimiter", "K", "", "split each message at the first `SEP`: the key before, the value after")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "header `key=value` of every message (repeatable)")
	fl.StringVarP(&f.compression, "compression", "z", "none", "batch compression: none, s2 or zstd")
	fl.IntVar(&f.inFlight, "in-flight", 4, "batches awaiting their ack at once")
	fl.DurationVar(&f.linger, "linger", 5*time.Millisecond, "longest a batch waits for more messages")
	fl.IntVar(&f.batchBytes, "batch-bytes", 1<<20, "send a batch once it holds this many bytes")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "give up when messages wait this long with no acknowledgement (0: never)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "report the messages and offsets stored on stderr")
	return cmd
}

// messageShape is what produce adds to each value: a key or the
// delimiter that splits one off, and headers.
type messageShape struct {
	key     []byte
	keySep  []byte
	headers []client.Header
}

func (s *messageShape) plain() bool {
	return s.key == nil && s.keySep == nil && len(s.headers) == 0
}

// message shapes value into a Message.
func (s *messageShape) message(value []byte) client.Message {
	m := client.Message{Key: s.key, Value: value, Headers: s.headers}
	if s.keySep != nil {
		if k, v, ok := bytes.Cut(value, s.keySep); ok {
			m.Key, m.Value = k, v
		}
	}
	return m
}

// parseShape checks the produce flags that shape messages.
func parseShape(f *produceFlags) (messageShape, error) {
	var s messageShape
	if f.key != "" && f.keySep != "" {
		return s, usagef("--key and --key-delimiter exclude each other")
	}
	if f.key != "" {
		s.key = []byte(f.key)
	}
	if f.keySep != "" {
		s.keySep = []byte(unescape(f.keySep))
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return s, usagef("header %q: want key=value", h)
		}
		s.headers = append(s.headers, client.Header{Key: k, Value: []byte(v)})
	}
	return s, nil
}

// parseCodec maps a --compression value to its codec.
func parseCodec(name string) (record.Codec, error) {
	switch strings.ToLower(name) {
	case "", "none":
		return record.CodecNone, nil
	case "s2":
		return record.CodecS2, nil
	case "zstd":
		return record.CodecZstd, nil
	}
	return 0, usagef("--compression %q: want none, s2 or zstd", name)
}

// produceSource checks which input the flags select and returns the
// function that feeds it, message by message, to send.
func (a *app) produceSource(cmd []string, f *produceFlags) (func(send func([]byte) error) error, error) {
	delimSet := f.delimSet
	switch {
	case f.nul && delimSet:
		return nil, usagef("-0 and -D exclude each other")
	case len(cmd) > 0 && len(f.files) > 0:
		return nil, usagef("give messages as arguments or with --file, not both")
	case (len(cmd) > 0 || len(f.files) > 0) && (f.nul || delimSet):
		return nil, usagef("-D and -0 split stdin; they do not apply to arguments or --file")
	case len(cmd) > 0:
		return func(send func([]byte) error) error {
			for _, m := range cmd {
				if err := send([]byte(m)); err != nil {
					return err
				}
			}
			return nil
		}, nil
	case len(f.files) > 0:
		for _, name := range f.files {
			if name == "-" {
				continue
			}
			if fi, err := os.Stat(name); err != nil {
				return nil, usagef("--file %v", err)
			} else if fi.IsDir() {
				return nil, usagef("--file %s: a directory, not a file", name)
			}
		}
		return func(send func([]byte) error) error { return a.sendFiles(f.files, send) }, nil
	}
	delim := []byte(unescape(f.delim))
	if f.nul {
		delim = []byte{0}
	}
	if len(delim) == 0 {
		return nil, usagef("-D: the delimiter is empty (use --file to send stdin as one message)")
	}
	if in, ok := a.stdin.(*os.File); ok && isTerminal(in) {
		fmt.Fprintln(a.stderr, "hrq: reading messages from the terminal, one per line; Ctrl-D ends")
	}
	return func(send func([]byte) error) error { return splitInput(a.stdin, delim, send) }, nil
}

// sendFiles sends each file whole as one message.
func (a *app) sendFiles(files []string, send func([]byte) error) error {
	for _, name := range files {
		var b []byte
		var err error
		if name == "-" {
			b, err = io.ReadAll(io.LimitReader(a.stdin, int64(maxMessage)+1))
		} else {
			b, err = readFileCapped(name)
		}
		if err != nil {
			return dataError{err}
		}
		if len(b) > maxMessage {
			return dataErrorf("--file %s: larger than the %d byte message limit", name, maxMessage)
		}
		if err := send(b); err != nil {
			return err
		}
	}
	return nil
}

func readFileCapped(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, int64(maxMessage)+1))
}

// splitInput sends every delim-terminated message of r; a last message
// without its delimiter counts too, an empty rest does not.
func splitInput(r io.Reader, delim []byte, send func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxMessage+len(delim))
	sc.Split(splitAt(delim))
	n := 0
	for sc.Scan() {
		n++
		if err := send(sc.Bytes()); err != nil {
			return err
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return dataErrorf("message %d of the input is longer than the %d byte limit (no delimiter found)", n+1, maxMessage)
	case err != nil:
		return fmt.Errorf("reading stdin: %w", err)
	}
	return nil
}

// splitAt is a bufio.SplitFunc that cuts at delim.
func splitAt(delim []byte) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (int, []byte, error) {
		var i int
		if len(delim) == 1 {
			i = bytes.IndexByte(data, delim[0])
		} else {
			i = bytes.Index(data, delim)
		}
		switch {
		case i >= 0:
			return i + len(delim), data[:i], nil
		case atEOF && len(data) > 0:
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}

func (a *app) produce(ctx context.Context, topic string, msgs []string, f *produceFlags) error {
	shape, err := parseShape(f)
	if err != nil {
		return err
	}
	codec, err := parseCodec(f.compression)
	if err != nil {
		return err
	}
	feed, err := a.produceSource(msgs, f)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, client.WithCompression(codec))
	if err != nil {
		return err
	}
	var stored storedRange
	var storage storageWatch
	pctx, guard := guardStalls(ctx, f.timeout)
	defer guard.close()
	p := client.NewProducer(c, topic, client.ProducerMaxInFlight(max(f.inFlight, 1)), client.ProducerLinger(f.linger),
		client.ProducerMaxBytes(f.batchBytes),
		client.ProducerOnAck(func(base uint64, n int) {
			stored.add(base, n)
			guard.finished(n)
		}),
		client.ProducerOnError(func(_ []byte, err error) {
			if errors.Is(err, client.ErrRetrying) {
				storage.note(a, err) // not stored yet: still resent
				return
			}
			guard.finished(1)
		}))
	send := func(v []byte) error {
		guard.sending()
		if shape.plain() {
			return p.Send(pctx, v)
		}
		return p.SendMessage(pctx, shape.message(v))
	}
	done := make(chan error, 1)
	go func() { done <- feed(send) }() // stdin may block: an interrupt must not wait for it
	select {
	case err = <-done:
	case <-pctx.Done():
		err = pctx.Err()
	}
	err = storage.explain(closeProducer(ctx, pctx, p, err))
	if f.verbose {
		fmt.Fprintf(a.stderr, "hrq: stored %s in %q\n", &stored, topic)
	}
	return onTopic(topic, err)
}

// closeProducer closes p once sending ended with err: after an interrupt
// (ctx ended) it still gives the messages read so far closeGrace to be
// stored. pctx is the stall guard's context; its verdict wins.
func closeProducer(ctx, pctx context.Context, p *client.Producer, err error) error {
	cctx := pctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), closeGrace)
		defer cancel()
	}
	if cerr := p.Close(cctx); err == nil || errors.Is(err, client.ErrClosed) {
		err = cerr
	}
	if serr := stalled(pctx); serr != nil {
		err = serr
	}
	return err
}

// storageWatch remembers that the broker refused to store messages (a
// full disk) while the Producer resends them: hrq says so at once, on
// stderr, and a produce that then gives up exits with the storage code.
type storageWatch struct {
	mu  sync.Mutex
	err error // the first storage error reported, or nil
}

func (w *storageWatch) note(a *app, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		fmt.Fprintf(a.stderr, "hrq: the broker cannot store messages, retrying (--timeout sets how long): %s\n", storageCause(err))
	}
}

// explain turns a stall into a storage failure when storage was the
// reason seen.
func (w *storageWatch) explain(err error) error {
	var se stalledError
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil && errors.As(err, &se) {
		return storageStall{err: w.err, stall: se}
	}
	return err
}

// storageStall is a produce that gave up while the broker could not
// store its messages.
type storageStall struct {
	err   error // the broker's storage error
	stall stalledError
}

func (e storageStall) Error() string { return e.err.Error() + "; " + e.stall.Error() }
func (e storageStall) Unwrap() error { return e.err }

// storedRange tracks the messages a Producer got acknowledged; acks come
// in offset order, from the Producer's goroutine.
type storedRange struct {
	n, first, last atomic.Uint64
}

func (s *storedRange) add(base uint64, n int) {
	if s.n.Load() == 0 {
		s.first.Store(base)
	}
	s.last.Store(base + uint64(n) - 1)
	s.n.Add(uint64(n))
}

// String reads "3 messages at offsets 7..9".
func (s *storedRange) String() string {
	if s.n.Load() == 0 {
		return "no messages"
	}
	return fmt.Sprintf("%d messages at offsets %d..%d", s.n.Load(), s.first.Load(), s.last.Load())
}
