package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/vfs"
)

// testOpts are the small options most tests use.
var testOpts = Options{MaxBytes: 64 << 10, MaxEntries: 1024}

// fsEnv is a file system and a directory on it for one test.
type fsEnv struct {
	name string
	fs   vfs.FS
	mem  *vfs.MemFS // nil on vfs.OSFS
	dir  string
}

func memEnv(t testing.TB) *fsEnv {
	t.Helper()
	m := vfs.NewMemFS()
	dir := "/data/topic"
	if err := m.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	// The directory stands for one that existed before the test: its
	// entries in its parents are durable.
	for _, d := range []string{"/", "/data"} {
		if err := m.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	return &fsEnv{name: "mem", fs: m, mem: m, dir: dir}
}

func osEnv(t testing.TB) *fsEnv {
	t.Helper()
	return &fsEnv{name: "os", fs: vfs.OSFS{}, dir: t.TempDir()}
}

// forEachFS runs f on a fresh MemFS and on OSFS in a temporary directory.
func forEachFS(t *testing.T, f func(t *testing.T, e *fsEnv)) {
	t.Run("mem", func(t *testing.T) { f(t, memEnv(t)) })
	t.Run("os", func(t *testing.T) { f(t, osEnv(t)) })
}

func (e *fsEnv) path(name string) string { return filepath.Join(e.dir, name) }

// mutate applies f to the bytes of file name: in place on MemFS, by
// rewriting the file on OSFS (the segment should not be open then).
func (e *fsEnv) mutate(t testing.TB, name string, f func([]byte) []byte) {
	t.Helper()
	if e.mem != nil {
		if err := e.mem.Corrupt(e.path(name), f); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(e.path(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path(name), f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSize returns the size of file name, or -1 if it does not exist.
func (e *fsEnv) fileSize(t testing.TB, name string) int64 {
	t.Helper()
	f, err := e.fs.Open(e.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *fsEnv) readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := e.fs.ReadFile(e.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// msg returns the deterministic message with the given offset, size bytes.
func msg(offset uint64, size int) []byte {
	m := []byte(fmt.Sprintf("m%08d:", offset))
	for len(m) < size {
		m = append(m, byte('a'+offset%26))
	}
	return m[:max(size, 0)]
}

// mkBatch builds a batch of count messages of size bytes, stamped with
// base and appendTime.
func mkBatch(t testing.TB, base uint64, count, size int, appendTime int64) []byte {
	t.Helper()
	msgs := make([][]byte, count)
	for i := range msgs {
		msgs[i] = msg(base+uint64(i), size)
	}
	b, err := record.AppendBatch(nil, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	record.Stamp(b, base, appendTime)
	return b
}

// model is what a test wrote and committed to one segment.
type model struct {
	base    uint64
	batches [][]byte
	pos     []int64  // log position of each batch
	first   []uint64 // base offset of each batch
	times   []int64
}

func newModel(base uint64) *model { return &model{base: base} }

func (m *model) next() uint64 {
	if len(m.batches) == 0 {
		return m.base
	}
	i := len(m.batches) - 1
	return m.first[i] + uint64(record.CountOf(m.batches[i]))
}

func (m *model) size() int64 {
	if len(m.batches) == 0 {
		return 0
	}
	i := len(m.batches) - 1
	return m.pos[i] + int64(len(m.batches[i]))
}

func (m *model) add(b []byte) {
	h, err := record.Verify(b)
	if err != nil {
		panic(err)
	}
	m.pos = append(m.pos, m.size())
	m.first = append(m.first, h.BaseOffset)
	m.times = append(m.times, h.AppendTime)
	m.batches = append(m.batches, b)
}

// truncated returns a copy of m holding its first n batches.
func (m *model) truncated(n int) *model {
	return &model{base: m.base, batches: m.batches[:n:n], pos: m.pos[:n:n], first: m.first[:n:n], times: m.times[:n:n]}
}

// batchOf returns the index of the batch holding offset.
func (m *model) batchOf(offset uint64) int {
	for i := range m.batches {
		if offset < m.first[i]+uint64(record.CountOf(m.batches[i])) {
			return i
		}
	}
	return -1
}

// want returns the range Find should return.
func (m *model) want(offset, limit uint64, maxBytes int64) Range {
	i := m.batchOf(offset)
	j := i + 1 // batches [i, j)
	target := offset + limit
	if target < offset {
		target = ^uint64(0)
	}
	for j < len(m.batches) && m.first[j] < target &&
		m.pos[j]+int64(len(m.batches[j]))-m.pos[i] <= maxBytes {
		j++
	}
	end := m.pos[j-1] + int64(len(m.batches[j-1]))
	return Range{Pos: m.pos[i], End: end, First: m.first[i], Next: m.first[j-1] + uint64(record.CountOf(m.batches[j-1]))}
}

func (m *model) bytes(r Range) []byte {
	var out []byte
	for i := range m.batches {
		if m.pos[i] >= r.Pos && m.pos[i] < r.End {
			out = append(out, m.batches[i]...)
		}
	}
	return out
}

// appendBatches writes, syncs and commits batches in one call each group,
// failing the test on any error.
func appendBatches(t testing.TB, s *Segment, m *model, batches ...[]byte) {
	t.Helper()
	if err := s.Write(batches); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	s.Commit()
	for _, b := range batches {
		m.add(b)
	}
}

// fill appends n batches of 1..3 messages of varying sizes, one to three
// batches per write, with append times 1000 ns apart.
func fill(t testing.TB, s *Segment, m *model, n int) {
	t.Helper()
	for i := 0; i < n; {
		k := min(1+i%3, n-i)
		group := make([][]byte, k)
		next := m.next()
		for j := range group {
			count := 1 + (i+j)%3
			group[j] = mkBatch(t, next, count, 10+(i+j)*7%90, int64(1_000_000+1000*(len(m.batches)+j)))
			next += uint64(count)
		}
		appendBatches(t, s, m, group...)
		i += k
	}
}

func mustCreate(t testing.TB, e *fsEnv, base uint64, opts Options) *Segment {
	t.Helper()
	s, err := Create(e.fs, e.dir, base, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s
}

func mustOpen(t testing.TB, e *fsEnv, base uint64, opts Options, clean, last bool) (*Segment, Report) {
	t.Helper()
	s, rep, err := Open(e.fs, e.dir, base, opts, clean, last)
	if err != nil {
		t.Fatalf("Open: %v (report %+v)", err, rep)
	}
	return s, rep
}

// checkSegment checks that s holds exactly what m says: state, every
// offset through Find and Bytes, out-of-range offsets, and Verify.
func checkSegment(t testing.TB, s *Segment, m *model) {
	t.Helper()
	if !s.Acquire() {
		t.Fatal("Acquire failed")
	}
	defer s.Release()
	if got, want := s.Next(), m.next(); got != want {
		t.Fatalf("Next = %d, want %d", got, want)
	}
	if got, want := s.Size(), m.size(); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	if got, want := s.Entries(), int64(len(m.batches)); got != want {
		t.Fatalf("Entries = %d, want %d", got, want)
	}
	if len(m.times) > 0 && s.LastTime() != m.times[len(m.times)-1] {
		t.Fatalf("LastTime = %d, want %d", s.LastTime(), m.times[len(m.times)-1])
	}
	for off := m.base; off < m.next(); off++ {
		r, err := s.Find(off, 1, 0)
		if err != nil {
			t.Fatalf("Find(%d): %v", off, err)
		}
		if want := m.want(off, 1, 0); r != want {
			t.Fatalf("Find(%d) = %+v, want %+v", off, r, want)
		}
		if !bytes.Equal(s.Bytes(r), m.bytes(r)) {
			t.Fatalf("Bytes(Find(%d)) differ from what was written", off)
		}
	}
	for _, off := range []uint64{m.next(), m.next() + 1, m.base - 1, ^uint64(0)} {
		if off >= m.base && off < m.next() {
			continue
		}
		if _, err := s.Find(off, 1, 1<<20); !errors.Is(err, ErrOffset) {
			t.Fatalf("Find(%d) = %v, want ErrOffset", off, err)
		}
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// flip returns a corrupt func that flips bit of byte at.
func flip(at int64, bit uint) func([]byte) []byte {
	return func(b []byte) []byte { b[at] ^= 1 << bit; return b }
}

func asCorrupt(t testing.TB, err error) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want a *CorruptError matching ErrCorrupt", err)
	}
	return ce
}
