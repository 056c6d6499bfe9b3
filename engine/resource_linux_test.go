package engine

import "testing"

// Promise: a topic being written costs the broker at most one descriptor
// and one memory mapping (its active segment's log), so that as many
// topics as the descriptor limit allows can be written at once. Measured
// on the operating system's own counts (/proc/self/fd, /proc/self/maps).
func TestActiveTopicCostsOneFileOneMap(t *testing.T) {
	const topics = 200
	e := openEngine(t, Options{Dir: t.TempDir(), Logger: (&logRecorder{}).logger()})
	files0, maps0 := ProcessFiles()
	for i := range topics {
		mustCreate(t, e, topicName(i))
		mustAppend(t, e, topicName(i), batchOf(t, genMsgs(uint64(i), 3, 50)...))
	}
	var res ReadResult
	for i := range topics {
		if err := e.Read(topicName(i), 0, 3, 1<<20, &res); err != nil || len(res.Chunks) != 1 {
			t.Fatalf("read %s: %v (%d chunks)", topicName(i), err, len(res.Chunks))
		}
	}
	res.Release()
	files1, maps1 := ProcessFiles()
	df, dm := files1-files0, maps1-maps0
	t.Logf("%d active topics, written and read: %+d descriptors, %+d mappings", topics, df, dm)
	// A little slack for the runtime's own (heap arenas, timers).
	if df > topics+10 || dm > topics+20 {
		t.Fatalf("%d active topics hold %d more descriptors and %d more mappings; want at most one of each per topic", topics, df, dm)
	}
}
