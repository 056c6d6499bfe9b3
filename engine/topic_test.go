package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// Promise (a topic name is never a path that leaves the volume): a name that is not
// a single safe path element is refused with ErrBadTopicName by every
// call that takes a topic, and nothing is created or deleted outside the
// data directory (nor inside it).
func TestBadTopicNames(t *testing.T) {
	root := t.TempDir()
	opts := osOpts(t)
	opts.Dir = filepath.Join(root, "vol")
	e := openEngine(t, opts)
	mustCreate(t, e, "ok")
	if err := os.WriteFile(filepath.Join(root, "x"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []string{"..", ".", "/", "a/b", "", strings.Repeat("a", 300), "a\x00b", "../x",
		"../vol", "../../etc", "/etc", "a\\b", " ", "a b", "é", "ok/..", "x\n"}
	batch := batchOf(t, []byte("m"))
	ctx := context.Background()
	for _, name := range bad {
		var res ReadResult
		_, appendErr := e.Append(ctx, name, batch)
		_, offErr := e.OffsetAt(name, time.Now())
		_, truncErr := e.TruncateBefore(ctx, name, 0)
		_, descErr := e.Describe(name)
		_, _, rangeErr := e.Offsets(name)
		for call, err := range map[string]error{
			"CreateTopic":    e.CreateTopic(name),
			"Append":         appendErr,
			"Read":           e.Read(name, 0, 1, 1, &res),
			"Wait":           e.Wait(ctx, name, 0),
			"DeleteTopic":    e.DeleteTopic(name),
			"OffsetAt":       offErr,
			"TruncateBefore": truncErr,
			"Describe":       descErr,
			"Offsets":        rangeErr,
		} {
			if !errors.Is(err, ErrBadTopicName) {
				t.Errorf("%s(%q) = %v, want ErrBadTopicName", call, name, err)
			}
		}
	}
	want := map[string][]string{
		root:                                     {"vol", "x"},
		opts.Dir:                                 {lockName, volumeName, topicsDir},
		filepath.Join(opts.Dir, topicsDir):       {"ok"},
		filepath.Join(opts.Dir, topicsDir, "ok"): nil,
	}
	for dir, names := range want {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ent := range ents {
			got = append(got, ent.Name())
		}
		if names != nil && strings.Join(got, ",") != strings.Join(names, ",") {
			t.Errorf("%s holds %q, want %q", dir, got, names)
		}
	}
	if got := e.Topics(""); len(got) != 1 || got[0] != "ok" {
		t.Fatalf("topics %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(root, "x")); err != nil || string(b) != "outside" {
		t.Fatalf("file outside the volume: %q, %v", b, err)
	}
	// Names at the edge of the rules are accepted.
	for _, name := range []string{strings.Repeat("z", MaxTopicLen), "a.b-c_D9", "..a", "a.."} {
		mustCreate(t, e, name)
		mustAppend(t, e, name, batchOf(t, []byte("m")))
	}
}

// Promise: Wait returns as soon as an append makes data available past the
// offset; it does not wait for anything else.
func TestWaitWakesOnAppend(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	tp, _ := e.topic("t")
	mustAppend(t, e, "t", batchOf(t, []byte("a")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	woke := make(chan error, 1)
	go func() { woke <- e.Wait(ctx, "t", 1) }()
	spinUntil(t, "Wait to block", func() bool { return tp.waiters.Load() > 0 })
	select {
	case err := <-woke:
		t.Fatalf("Wait returned %v before any data arrived", err)
	default:
	}
	mustAppend(t, e, "t", batchOf(t, []byte("b")))
	if err := <-woke; err != nil {
		t.Fatalf("Wait = %v, want nil once the append lands", err)
	}
	got := readAll(t, e, "t", 1, 2)
	if string(got[0].data) != "b" {
		t.Fatalf("read %q after Wait", got[0].data)
	}
	// Data already there: Wait returns at once.
	if err := e.Wait(ctx, "t", 0); err != nil {
		t.Fatal(err)
	}
}

// Promise: Wait returns the context's error when it times out or is
// canceled, with no data arriving.
func TestWaitContext(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	mustCreate(t, e, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Wait(ctx, "t", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a timeout = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := e.Wait(ctx, "t", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a canceled context = %v", err)
	}
}

// Promise: Wait returns when its topic is deleted (ErrTopicNotFound) or the
// engine closes (ErrClosed), instead of hanging.
func TestWaitReturnsOnDeleteAndClose(t *testing.T) {
	e := openEngine(t, memOpts(vfs.NewMemFS()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, end := range []string{"delete", "close"} {
		mustCreate(t, e, "t")
		tp, _ := e.topic("t")
		errc := make(chan error, 1)
		go func() { errc <- e.Wait(ctx, "t", 0) }()
		spinUntil(t, "Wait to block", func() bool { return tp.waiters.Load() > 0 })
		want := ErrTopicNotFound
		if end == "delete" {
			if err := e.DeleteTopic("t"); err != nil {
				t.Fatal(err)
			}
		} else {
			want = ErrClosed
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-errc; !errors.Is(err, want) {
			t.Fatalf("Wait after %s = %v, want %v", end, err, want)
		}
	}
}

// Promise (seed broker: produce after delete-and-recreate went to the
// deleted file): after DeleteTopic and CreateTopic of the same name,
// appends go to the new topic with offsets from 0, reads see only new
// data, a restart agrees, and readers still holding chunks of the old
// topic read its old bytes until they release them.
func TestDeleteAndRecreate(t *testing.T) {
	for _, fsName := range []string{"os", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			opts := memOpts(vfs.NewMemFS())
			if fsName == "os" {
				opts = osOpts(t)
				opts.Fsync = FsyncNever
			}
			opts.SegmentBytes = 16 << 10
			e := openEngine(t, opts)
			mustCreate(t, e, "t")
			old := fillSegments(t, e, "t", 2)
			var held ReadResult
			if err := e.Read("t", 0, old.next, 1<<30, &held); err != nil {
				t.Fatal(err)
			}
			oldBytes := bytes.Clone(held.Chunks[0].Data())

			if err := e.DeleteTopic("t"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Append(context.Background(), "t", batchOf(t, []byte("x"))); !errors.Is(err, ErrTopicNotFound) {
				t.Fatalf("Append to a deleted topic = %v", err)
			}
			if err := e.DeleteTopic("t"); !errors.Is(err, ErrTopicNotFound) {
				t.Fatalf("second DeleteTopic = %v", err)
			}
			mustCreate(t, e, "t")
			m := newModel()
			for i := range 5 {
				m.appendBatch(t, e, "t", genMsgs(1e6+uint64(i), 2, 9)) // offsets from 0
			}
			m.check(t, e, "t", 0)
			if !bytes.Equal(held.Chunks[0].Data(), oldBytes) {
				t.Fatal("a held chunk of the deleted topic changed")
			}
			sc := record.NewScanner(held.Chunks[0].Data())
			for sc.Next() {
			}
			if sc.Err() != nil {
				t.Fatal(sc.Err())
			}
			held.Release()
			e = reopen(t, e, opts)
			m.check(t, e, "t", 0)
			if end := endOf(t, e, "t"); end != m.next {
				t.Fatalf("end %d after restart, want %d", end, m.next)
			}
		})
	}
}

// Promise: the engine's other refusals are typed: unknown topic, existing
// topic, invalid or oversized batch, a closed engine; none of them leaves
// anything visible.
func TestAppendRefusals(t *testing.T) {
	opts := memOpts(vfs.NewMemFS())
	opts.MaxBatchBytes = 4096
	opts.SegmentBytes = 64 << 10
	e := openEngine(t, opts)
	ctx := context.Background()
	if _, err := e.Append(ctx, "nope", batchOf(t, []byte("x"))); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Append to an unknown topic = %v", err)
	}
	mustCreate(t, e, "t")
	if err := e.CreateTopic("t"); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("CreateTopic twice = %v", err)
	}
	good := batchOf(t, []byte("hello"))
	for name, b := range map[string][]byte{
		"empty":       nil,
		"short":       good[:10],
		"flipped bit": func() []byte { b := bytes.Clone(good); b[70] ^= 1; return b }(),
		"trailing":    append(bytes.Clone(good), make([]byte, 8)...),
		"too large":   batchOf(t, make([]byte, 5000)),
	} {
		if _, err := e.Append(ctx, "t", b); !errors.Is(err, ErrInvalidBatch) {
			t.Errorf("Append of a %s batch = %v, want ErrInvalidBatch", name, err)
		}
	}
	if end := endOf(t, e, "t"); end != 0 {
		t.Fatalf("refused appends moved the end to %d", end)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Append(ctx2, "t", good); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	var res ReadResult
	for call, err := range map[string]error{
		"Append":      func() error { _, err := e.Append(ctx, "t", good); return err }(),
		"Read":        e.Read("t", 0, 1, 1, &res),
		"CreateTopic": e.CreateTopic("u"),
		"DeleteTopic": e.DeleteTopic("t"),
		"Close":       e.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed engine = %v, want ErrClosed", call, err)
		}
	}
}

// Promise: Topics lists by prefix, sorted, and survives a restart.
func TestTopicsList(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	for _, n := range []string{"b2", "a", "b1", "c"} {
		mustCreate(t, e, n)
	}
	e = reopen(t, e, opts)
	if got := strings.Join(e.Topics("b"), ","); got != "b1,b2" {
		t.Fatalf("Topics(b) = %s", got)
	}
	if got := strings.Join(e.Topics(""), ","); got != "a,b1,b2,c" {
		t.Fatalf("Topics() = %s", got)
	}
}

// Promise (watchers are woken, not polled): WaitChange returns as soon as
// truncation moves the start, and as soon as an append moves the end.
func TestWaitChangeWakesOnStartAndEnd(t *testing.T) {
	opts := memOpts(vfs.NewMemFS())
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	if _, err := e.Append(t.Context(), "t", batchOf(t, msgBytes(1, 10))); err != nil {
		t.Fatal(err)
	}
	start, end, _ := e.Offsets("t")
	done := make(chan error, 1)
	go func() { done <- e.WaitChange(t.Context(), "t", start, end) }()
	select {
	case err := <-done:
		t.Fatalf("WaitChange returned before any change: %v", err)
	default:
	}
	if _, err := e.TruncateBefore(t.Context(), "t", end); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitChange did not return after the start moved")
	}
	start, end, _ = e.Offsets("t")
	go func() { done <- e.WaitChange(t.Context(), "t", start, end) }()
	if _, err := e.Append(t.Context(), "t", batchOf(t, msgBytes(2, 10))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitChange did not return after an append")
	}
}
