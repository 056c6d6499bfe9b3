package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/vfs"
)

// Promise: the engine never holds more descriptors for segments than its
// budget (MaxOpenFiles), however many topics are written: past it, the
// least recently written topics' files are let go, and every message of
// every topic is still stored and reads back.
func TestPressureKeepsWithinBudget(t *testing.T) {
	const topics, rounds, budget = 120, 4, 24
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	o.MaxOpenFiles = budget
	e := openEngine(t, o)
	models := make([]*model, topics)
	peakFiles, peakMaps := int64(0), 0
	for r := range rounds {
		for i := range topics {
			if r == 0 {
				mustCreate(t, e, topicName(i))
				models[i] = newModel()
			}
			models[i].appendBatch(t, e, topicName(i), genMsgs(uint64(r*1000+i), 2, 40))
			peakFiles = max(peakFiles, e.Stats().OpenFiles)
			_, maps := fs.OpenFiles()
			peakMaps = max(peakMaps, maps)
		}
	}
	for i := range topics {
		models[i].check(t, e, topicName(i), 0)
	}
	st := e.Stats()
	t.Logf("%d topics, budget %d: peak %d segment descriptors, %d mappings; %d released under pressure", topics, budget, peakFiles, peakMaps, st.PressureReleases)
	// One over while a write has just opened its files, before it lets
	// others go.
	if peakFiles > budget+1 || peakMaps > budget+1 || st.PressureReleases == 0 {
		t.Fatalf("peak %d descriptors, %d mappings for a budget of %d (%d releases)", peakFiles, peakMaps, budget, st.PressureReleases)
	}
	if st.ResourceErrors != 0 {
		t.Fatalf("%d resource errors", st.ResourceErrors)
	}
}

// Promise: when opening a segment fails for lack of descriptors (EMFILE,
// here a limit below the engine's budget), the engine lets go of the least
// recently written topics' files and the append succeeds; nothing fails
// while other topics' files can be let go.
func TestPressureReliefOnEMFILE(t *testing.T) {
	const topics, rounds, limit = 100, 3, 25
	fs := vfs.NewMemFS()
	o := memOpts(fs)
	o.MaxOpenFiles = 10000 // the budget would allow it; the "system" does not
	e := openEngine(t, o)
	fs.SetFault(func(op vfs.Op, name string) error {
		if (op == vfs.OpOpen || op == vfs.OpCreate) && e.press.usage.Files.Load() >= limit {
			return syscall.EMFILE
		}
		return nil
	})
	models := make([]*model, topics)
	for r := range rounds {
		for i := range topics {
			if r == 0 {
				if err := e.CreateTopic(topicName(i)); err != nil {
					t.Fatalf("create %s: %v", topicName(i), err)
				}
				models[i] = newModel()
			}
			msgs := genMsgs(uint64(r*1000+i), 2, 40)
			off, err := e.Append(context.Background(), topicName(i), batchOf(t, msgs...))
			if err != nil {
				t.Fatalf("round %d, %s: %v", r, topicName(i), err)
			}
			if off != models[i].next {
				t.Fatalf("%s: offset %d, want %d", topicName(i), off, models[i].next)
			}
			for j, msg := range msgs {
				models[i].msgs[off+uint64(j)] = msg
			}
			models[i].next = off + uint64(len(msgs))
		}
	}
	fs.SetFault(nil)
	for i := range topics {
		models[i].check(t, e, topicName(i), 0)
	}
	if st := e.Stats(); st.ResourceErrors != 0 || st.PressureReleases == 0 {
		t.Fatalf("resource errors %d, releases %d", st.ResourceErrors, st.PressureReleases)
	}
}

// Promise: creating a topic never stalls the rest of the broker — appends
// to other topics and other creates go on while one create waits for its
// disk (directory syncs take milliseconds; twenty thousand creates in a
// row would stall every producer for a minute).
func TestCreateDoesNotBlockOthers(t *testing.T) {
	fs := &blockFS{MemFS: vfs.NewMemFS(), stuck: make(chan struct{}), release: make(chan struct{})}
	o := memOpts(fs.MemFS)
	o.FS = fs
	e := openEngine(t, o)
	mustCreate(t, e, "busy")
	created := make(chan error, 1)
	go func() { created <- e.CreateTopic("slow") }()
	<-fs.stuck
	done := make(chan error, 1)
	go func() {
		if err := e.CreateTopic("other"); err != nil {
			done <- err
			return
		}
		_, err := e.Append(context.Background(), "busy", batchOf(t, genMsgs(1, 2, 10)...))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(fs.release)
		t.Fatal("a create and an append waited for another topic's create")
	}
	close(fs.release)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if err := e.CreateTopic("slow"); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
}

// blockFS holds the first directory sync of topic "slow" until release.
type blockFS struct {
	*vfs.MemFS
	once           sync.Once
	stuck, release chan struct{}
}

func (b *blockFS) SyncDir(dir string) error {
	if strings.HasSuffix(dir, "/slow") {
		b.once.Do(func() {
			close(b.stuck)
			<-b.release
		})
	}
	return b.MemFS.SyncDir(dir)
}
