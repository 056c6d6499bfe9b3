package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// TestRecreateDuringDeleteKeepsAcknowledged checks that a message
// acknowledged on a topic is never lost to the deletion of an earlier
// topic of the same name: a CreateTopic while the delete still removes
// files must not put the new topic's files where the delete removes them.
func TestRecreateDuringDeleteKeepsAcknowledged(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	for i := range 3 {
		mustAppend(t, e, "t", batchOf(t, genMsgs(uint64(i), 2, 40)...))
	}
	// Pause the delete once the old topic's segment files are removed
	// (at the sync of its directory), before the directory itself goes.
	paused, resume, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var pausing atomic.Bool
	dir := topicDir(e.vols[0], "t")
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpSyncDir && name == dir && pausing.CompareAndSwap(false, true) {
			close(paused)
			<-resume
		}
		return nil
	})
	e.testHookCreateWaits = func(string) { close(waiting) }
	delErr := make(chan error, 1)
	go func() { delErr <- e.DeleteTopic("t") }()
	<-paused // the old topic is gone from the engine, its files not yet
	created := make(chan error, 1)
	go func() { created <- e.CreateTopic("t") }()
	var err error
	resumed := false
	select {
	case err = <-created: // the create did not wait for the delete
	case <-waiting:
		close(resume)
		resumed = true
		err = <-created
	}
	if err != nil {
		t.Fatalf("CreateTopic during a delete: %v", err)
	}
	m := newModel()
	for i := range 3 {
		m.appendBatch(t, e, "t", genMsgs(uint64(100+i), 3, 50))
	}
	if !resumed {
		close(resume)
	}
	if err := <-delErr; err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	fs.SetFault(nil)
	m.check(t, e, "t", 0)
	c, _ := crashOpen(t, fs, opts)
	m.check(t, c, "t", 0)
	e = reopen(t, e, opts)
	m.check(t, e, "t", 0)
	if end := endOf(t, e, "t"); end != m.next {
		t.Fatalf("the recreated topic ends at %d after a restart, want %d", end, m.next)
	}
}

// TestCreateDeleteProduceStress checks, under a bounded storm of
// concurrent creates, deletes and produces on a few names, that every
// topic left at the end holds exactly what it held before a restart (no
// delete removed files of a later topic of its name), and that each call
// fails only with the errors its race allows.
func TestCreateDeleteProduceStress(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentEntries = 8 // rolls create and remove segment files too
	// Yield at directory syncs and removals, so that other calls run in
	// the middle of a create or a delete.
	fs.SetFault(func(op vfs.Op, _ string) error {
		if op == vfs.OpSyncDir || op == vfs.OpRemove {
			time.Sleep(50 * time.Microsecond)
		}
		return nil
	})
	e := openEngine(t, opts)
	names := []string{"a", "b", "c"}
	deadline := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(t)
			for i := 0; i < 400 && time.Now().Before(deadline); i++ {
				name := names[(w+i*7+rng.IntN(3))%len(names)]
				var err error
				switch rng.IntN(6) {
				case 0:
					if err = e.CreateTopic(name); errors.Is(err, ErrTopicExists) {
						err = nil
					}
				case 1:
					if err = e.DeleteTopic(name); errors.Is(err, ErrTopicNotFound) {
						err = nil
					}
				default:
					b, berr := record.AppendBatch(nil, genMsgs(uint64(i), 1+i%3, 30)...)
					if berr != nil {
						err = berr
						break
					}
					if _, err = e.Append(context.Background(), name, b); errors.Is(err, ErrTopicNotFound) {
						err = nil
					}
				}
				if err != nil {
					errc <- fmt.Errorf("worker %d step %d on %q: %w", w, i, name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	before := map[string][]readMsg{}
	for _, name := range e.Topics("") {
		before[name] = readAll(t, e, name, describe(t, e, name).Start, endOf(t, e, name))
	}
	e = reopen(t, e, opts)
	if got := e.Topics(""); len(got) != len(before) {
		t.Fatalf("topics after a restart: %v, before: %d of them", got, len(before))
	}
	for name, want := range before {
		got := readAll(t, e, name, describe(t, e, name).Start, endOf(t, e, name))
		if len(got) != len(want) {
			t.Fatalf("topic %q: %d messages after a restart, %d before", name, len(got), len(want))
		}
		for i := range got {
			if got[i].off != want[i].off || string(got[i].data) != string(want[i].data) {
				t.Fatalf("topic %q: message %d differs after a restart", name, i)
			}
		}
	}
}

// TestRebuiltVolumeDurableOnItsOwn checks that a volume rebuilt on a
// replaced disk holds every acknowledged message durably by itself once
// it is back in service: if the other disks are then lost with a power
// cut, it still has every topic (the directories the rebuild made are
// synced into their parents, not only the files in them).
func TestRebuiltVolumeDurableOnItsOwn(t *testing.T) {
	f := newMirrorFixture(t)
	e := f.e
	if err := f.fs.Remove("/v3/" + volumeName); err != nil {
		t.Fatal(err)
	}
	e.CheckVolumes()
	replaceDisk(t, f.fs, "/v3")
	// The checkpoint written after the rebuild also syncs the volume's
	// directory; fail it so that only the rebuild's own syncs count.
	f.fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasPrefix(name, "/v3/"+checkpointName) {
			return syscall.EIO
		}
		return nil
	})
	e.CheckVolumes()
	wantStates(t, e, VolumeHealthy, VolumeHealthy, VolumeHealthy)
	f.fs.SetFault(nil)
	o := f.opts
	o.FS, o.Volumes = f.fs.Crash(), []string{"/v3"}
	c := openEngine(t, o)
	f.check(t, c)
}

// TestCreateTopicFailureLeavesNothing checks that a CreateTopic that
// failed leaves no files: the name can be created once the fault clears,
// and no topic the caller was told failed appears at the next start.
func TestCreateTopicFailureLeavesNothing(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	e := openEngine(t, opts)
	var on atomic.Bool
	on.Store(true)
	fs.SetFault(failOn(&on, vfs.OpSyncDir, "/"+topicsDir, syscall.EIO))
	if err := e.CreateTopic("t"); !errors.Is(err, ErrStorage) {
		t.Fatalf("CreateTopic under a failing directory sync = %v, want ErrStorage", err)
	}
	on.Store(false)
	if names, _ := fs.List(topicDir(e.vols[0], "t")); len(names) != 0 {
		t.Fatalf("a failed create left %v", names)
	}
	e = reopen(t, e, opts)
	if got := e.Topics(""); len(got) != 0 {
		t.Fatalf("topics after a restart following a failed create: %v", got)
	}
	mustCreate(t, e, "t")
	m := newModel()
	m.appendBatch(t, e, "t", genMsgs(1, 2, 30))
	m.check(t, e, "t", 0)
}

// TestCrashDuringDeleteStaysDeleted checks that a deleted topic never
// comes back in part: a power cut while DeleteTopic removes its files
// (some segments gone, others not) leaves a topic that the next start
// finishes deleting, not one that starts in the middle of its old data.
func TestCrashDuringDeleteStaysDeleted(t *testing.T) {
	fs := vfs.NewMemFS()
	opts := memOpts(fs)
	opts.SegmentEntries = 4
	e := openEngine(t, opts)
	mustCreate(t, e, "t")
	for i := range 10 {
		mustAppend(t, e, "t", batchOf(t, genMsgs(uint64(i), 1, 40)...))
	}
	if n := describe(t, e, "t").Segments; n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	// Pause the delete once the first segment is gone (and synced).
	paused, resume := make(chan struct{}), make(chan struct{})
	var pausing atomic.Bool
	second := filepath.Join(topicDir(e.vols[0], "t"), segment.SealName(4))
	fs.SetFault(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && name == second && pausing.CompareAndSwap(false, true) {
			close(paused)
			<-resume
		}
		return nil
	})
	delErr := make(chan error, 1)
	go func() { delErr <- e.DeleteTopic("t") }()
	<-paused
	img := fs.Crash()
	close(resume)
	if err := <-delErr; err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	o := opts
	o.FS = img
	c := openEngine(t, o)
	if got := c.Topics(""); len(got) != 0 {
		t.Fatalf("topics after a power cut during a delete: %v (from %d)", got, describe(t, c, got[0]).Start)
	}
	if names, err := img.List(topicDir(c.vols[0], "t")); err == nil && len(names) > 0 {
		t.Fatalf("files of the deleted topic left after the restart: %v", names)
	}
	mustCreate(t, c, "t") // the name is free again
}
