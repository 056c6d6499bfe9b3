package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/vfs"
)

// Limits of the segment format.
const (
	// EntrySize is the size of one index entry.
	EntrySize = 16
	// MaxSegmentBytes caps a segment's log: positions are 32-bit.
	MaxSegmentBytes = 1<<32 - 1
	// MaxOffsetSpan caps the offsets a segment holds (next offset minus
	// base): relative offsets in the index are 32-bit.
	MaxOffsetSpan = 1<<32 - 1
	// DefaultMaxBytes is the default roll size of a segment's log.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxEntries is the default capacity of a segment's index
	// (10 MiB of entries).
	DefaultMaxEntries = 10 << 20 / EntrySize
)

// Options configures a segment. The zero value uses the defaults.
type Options struct {
	// MaxBytes is the log size at which the segment is full. It must be at
	// least the largest batch the engine accepts, since a full segment's
	// mapping covers exactly MaxBytes.
	MaxBytes int64
	// MaxEntries is the number of batches at which the segment is full.
	MaxEntries int64
	// Usage, if set, counts the descriptors and mappings this segment holds
	// while loaded, together with every other segment sharing it.
	Usage *Usage
	// OnLoad, if set, is called (with the segment's lock held: it must not
	// call back into any segment) each time the segment opens its files
	// and maps them, so that an owner can cap how many are open.
	OnLoad func(*Segment)
	// Synced is an offset known to have been synced (and acknowledged):
	// at Open, damage at the tail of the last segment below it is
	// corruption, never a torn write to cut off. 0: unknown.
	Synced uint64
	// SyncedWrites says each write was synced before the next one was
	// written (the engine's fsync=always), that one write spans at most
	// MaxWriteBytes bytes (0: no bound known) and that every batch of one
	// write carries the same append time. Damage past Synced is then a
	// torn tail only if every valid batch after it can belong to the
	// damaged write; a batch from a later write means the damage was
	// synced: corruption, never cut.
	SyncedWrites  bool
	MaxWriteBytes int64
	// ZeroAhead, if positive, keeps up to that many zero bytes written
	// after the log's end (at most MaxZeroAhead, and never past MaxBytes):
	// a small write (at most 4 KiB: zeroAheadWrite) that passes the zeros
	// written so far carries 256 times its size in zeros (at least 64
	// KiB, at most ZeroAhead: zerosFor) in the same vectored write. Later
	// small writes then overwrite blocks the file already has, so that
	// syncing them (fdatasync) need not also commit a new file size and
	// block allocation to the file system's journal: the engine sets it
	// under fsync=always, where that sync is on every acknowledgement's
	// path. The zeros are cut at Seal, at Close and when the segment lets
	// its files go while idle (ReleaseIdle: a Close then has nothing to
	// reopen), and read as the log's end (a zeroed header) by an Open
	// after a crash, which cuts them.
	ZeroAhead int64
	// Stop, if set, makes CopyTo give up between chunks once it is closed
	// (ErrStopped), so that a shutdown does not wait for a large copy.
	Stop <-chan struct{}
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxBytes > MaxSegmentBytes {
		o.MaxBytes = MaxSegmentBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	return o
}

// LogName, IndexName and SealName name a segment's files in its directory.
func LogName(base uint64) string   { return fmt.Sprintf("%020d.log", base) }
func IndexName(base uint64) string { return fmt.Sprintf("%020d.idx", base) }
func SealName(base uint64) string  { return fmt.Sprintf("%020d.seal", base) }

// Segment is one log file of back-to-back batches and its index.
//
// Concurrency: one writer goroutine calls Write, Sync, Commit, Rollback,
// Seal and Close. Any number of readers call the read methods between
// Acquire and Release; they see only committed state, published through
// the atomics below.
type Segment struct {
	fs   vfs.FS
	dir  string
	base uint64
	opts Options

	// mu guards opening, mapping and closing the files; readers take it only
	// to map a segment the first time (sealed segments open lazily).
	mu       sync.Mutex
	log, idx vfs.File
	logMap   []byte                   // read-only; only [0, size) may be touched
	idxMap   []byte                   // a sealed segment's mapped .idx; only [0, entries*EntrySize) may be touched
	mem      atomic.Pointer[memIndex] // an unsealed segment's index (memindex.go)
	unmap    []func() error
	loaded   atomic.Bool
	closed   bool
	removed  bool

	// Published state. Invariant: every byte of the log below size and
	// every index entry below entries was written before it was stored
	// here, and (per the engine's policy) synced.
	size      atomic.Int64
	entries   atomic.Int64
	next      atomic.Uint64
	lastTime  atomic.Int64
	sealed    atomic.Bool
	refs      atomic.Int32 // pins; the owner holds one until Remove or Close
	ownerGone atomic.Bool  // true once the owner let go: its pin was dropped (Remove, Retire or Close)

	// Writer-only state: what Write has written but Commit not published.
	// ReleaseIdle (anyone's) reads inFlight, pendSize, pendEntries and sets
	// dirty, syncedSize, syncErr, fileEnd and the index fields
	// (releaseActive), so
	// the writer touches those only while it holds a pin (pinWriter), or
	// reads them once the segment can no longer be pinned.
	pendSize    int64
	pendEntries int64
	pendNext    uint64
	pendTime    int64
	firstTime   int64
	digest      xxhash.Digest // hash of log bytes [0, pendSize)
	saved       xxhash.Digest // digest as of the last Commit
	digestReady bool
	idxBuf      []byte
	seal        Seal
	idxBufs     [1][]byte
	damaged     error       // set when Open found corruption: no writes, no cuts
	syncedSize  int64       // log bytes known durable (synced by this process, or trusted at Open)
	syncErr     error       // sticky ErrSyncLost: a failed sync may have lost committed bytes
	idxFlushed  int64       // entries the .idx file holds
	held        [2]int      // descriptors and mappings counted in opts.Usage (under mu)
	recent      atomic.Bool // written or loaded since the last TakeRecent
	idxSynced   bool        // the .idx file holds exactly the committed entries, synced
	inFlight    bool        // written since the last Commit or Rollback
	dirty       bool        // written since the last successful sync of the log
	fileEnd     int64       // the log file's length as written (≥ pendSize); bytes in [pendSize, fileEnd) are zeros written ahead (Options.ZeroAhead)
	iov         [][]byte    // Write's buffers when zeros go with the batches
}

// Create makes a new, empty segment with the given base offset in dir. It
// fails if the segment's files exist and hold anything: empty files left
// by a create that failed (a crash, or a cleanup that failed) are replaced.
// A failed Create removes the files it made.
func Create(fs vfs.FS, dir string, base uint64, opts Options) (*Segment, error) {
	s, err := create(fs, dir, base, opts)
	if errors.Is(err, os.ErrExist) && removeEmptyLeftover(fs, dir, base) {
		s, err = create(fs, dir, base, opts)
	}
	return s, err
}

func create(fs vfs.FS, dir string, base uint64, opts Options) (*Segment, error) {
	s := &Segment{fs: fs, dir: dir, base: base, opts: opts.withDefaults()}
	var err error
	if s.log, err = fs.Create(s.path(LogName(base))); err != nil {
		return nil, fmt.Errorf("segment: create: %w", err)
	}
	// fail closes and removes what was made, so that the next Create of
	// this base (the writer's next roll) does not find the files.
	idxMade := false
	fail := func(err error) (*Segment, error) {
		s.closeFiles()
		fs.Remove(s.path(LogName(base)))
		if idxMade {
			fs.Remove(s.path(IndexName(base)))
		}
		fs.SyncDir(dir)
		return nil, err
	}
	// The index file exists from the start but stays closed: the index
	// lives in memory until the segment is sealed (memindex.go).
	idx, err := fs.Create(s.path(IndexName(base)))
	if err != nil {
		return fail(fmt.Errorf("segment: create: %w", err))
	}
	idxMade = true
	if err := idx.Close(); err != nil {
		return fail(fmt.Errorf("segment: create: %w", err))
	}
	s.mem.Store(&memIndex{b: make([]byte, 16*EntrySize)})
	if err := fs.SyncDir(dir); err != nil {
		return fail(fmt.Errorf("segment: create: sync dir: %w", err))
	}
	s.next.Store(base)
	s.pendNext = base
	s.digest.Reset()
	s.saved = s.digest
	s.digestReady = true
	s.refs.Store(1)
	if err := s.mapFiles(); err != nil {
		return fail(err)
	}
	s.recent.Store(true)
	if s.opts.OnLoad != nil {
		s.opts.OnLoad(s)
	}
	return s, nil
}

// removeEmptyLeftover removes the files of segment base if they can hold
// no message: no seal, and a log that is missing or empty (an index alone
// is never read: Open starts from the logs). It reports whether it did.
func removeEmptyLeftover(fs vfs.FS, dir string, base uint64) bool {
	if _, err := fs.ReadFile(joinPath(dir, SealName(base))); !isNotExist(err) {
		return false
	}
	if f, err := fs.Open(joinPath(dir, LogName(base))); err == nil {
		n, err := f.Size()
		f.Close()
		if err != nil || n != 0 {
			return false
		}
	} else if !isNotExist(err) {
		return false
	}
	for _, name := range []string{LogName(base), IndexName(base)} {
		if err := fs.Remove(joinPath(dir, name)); err != nil && !isNotExist(err) {
			return false
		}
	}
	return true
}

func (s *Segment) path(name string) string { return filepath.Join(s.dir, name) }

// mapFiles maps the log read-only — an unsealed segment's whole capacity
// (it grows under the mapping), a sealed one's exact size — and, for a
// sealed segment, its .idx file, whose descriptor is closed at once (the
// mapping outlives it). An unsealed segment's index is in memory.
func (s *Segment) mapFiles() error {
	logLen := int(s.opts.MaxBytes)
	if s.sealed.Load() {
		logLen = int(s.size.Load())
	}
	lm, lu, err := s.log.Map(logLen)
	if err != nil {
		return fmt.Errorf("segment: map %s: %w", s.path(LogName(s.base)), err)
	}
	s.unmap = append(s.unmap[:0], lu)
	if s.sealed.Load() {
		im, iu, err := s.idx.Map(int(s.entries.Load() * EntrySize))
		if err != nil {
			lu()
			s.unmap = s.unmap[:0]
			return fmt.Errorf("segment: map %s: %w", s.path(IndexName(s.base)), err)
		}
		s.idxMap = im
		s.unmap = append(s.unmap, iu)
		s.idx.Close()
		s.idx = nil
	}
	s.logMap = lm
	s.loaded.Store(true)
	s.account(1, len(s.unmap))
	return nil
}

// Base returns the offset of the segment's first message.
func (s *Segment) Base() uint64 { return s.base }

// Next returns the offset after the segment's last committed message.
func (s *Segment) Next() uint64 { return s.next.Load() }

// Size returns the committed log size in bytes.
func (s *Segment) Size() int64 { return s.size.Load() }

// Entries returns the number of committed batches.
func (s *Segment) Entries() int64 { return s.entries.Load() }

// LastTime returns the append time of the last committed batch (0 if none).
func (s *Segment) LastTime() int64 { return s.lastTime.Load() }

// Sealed reports whether the segment is sealed (full, read-only).
func (s *Segment) Sealed() bool { return s.sealed.Load() }

// Loaded reports whether the segment holds its files open and mapped now.
func (s *Segment) Loaded() bool { return s.loaded.Load() }

// Dir returns the segment's directory.
func (s *Segment) Dir() string { return s.dir }

// Acquire pins the segment for reading: it is not unmapped or closed until
// the matching Release. It fails once the segment was removed and its last
// pin released.
func (s *Segment) Acquire() bool {
	for {
		r := s.refs.Load()
		if r <= releasing/2 {
			runtime.Gosched() // ReleaseIdle is unmapping; it restores the count
			continue
		}
		if r <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// releasing is the pin count while ReleaseIdle works: Acquire waits.
const releasing = -1 << 30

// testHookReleaseIdle, if set (by tests), runs inside ReleaseIdle while
// the pin count is held at releasing.
var testHookReleaseIdle func(*Segment)

// ReleaseIdle closes the files and unmaps a segment that only its owner
// holds (no reader pinned), so that segments not in use cost no
// descriptor and no mapping; the next read or write opens them again. It
// reports whether it released anything. Readers cannot pin the segment
// while it works, and neither can the writer (it pins the segment for
// every use of its files), so anyone may call it: an unsealed segment is
// released only between writes, after syncing what was written since its
// last sync and writing out a large in-memory index.
func (s *Segment) ReleaseIdle() bool {
	if !s.loaded.Load() || !s.refs.CompareAndSwap(1, releasing) {
		return false
	}
	// Add, not Store: a pin dropped meanwhile (the owner's, or the last
	// reader's once the owner let go) must stay dropped, and whoever
	// brings the count to zero closes the files: that Release saw a
	// nonzero count and left them open.
	defer func() {
		if s.refs.Add(1-releasing) == 0 {
			s.mu.Lock()
			s.closeFiles()
			s.mu.Unlock()
		}
	}()
	if testHookReleaseIdle != nil {
		testHookReleaseIdle(s)
	}
	if s.ownerGone.Load() {
		// The owner let go (Remove, Retire, Close): the one pin left is a
		// reader's, and its mapping must stay.
		return false
	}
	if !s.sealed.Load() && !s.releaseActive() {
		return false
	}
	s.unload()
	return true
}

// dropOwnerPin drops the owner's pin once, whichever of Remove and Close
// comes first, so calling both never over-releases a reader's pin.
func (s *Segment) dropOwnerPin() {
	if s.ownerGone.CompareAndSwap(false, true) {
		s.Release()
	}
}

// Release drops a pin taken by Acquire (or the owner's pin, by Remove and
// Close); the last one closes the files.
func (s *Segment) Release() {
	if s.refs.Add(-1) == 0 {
		s.mu.Lock()
		s.closeFiles()
		s.mu.Unlock()
	}
}

func (s *Segment) closeFiles() {
	if s.closed {
		return
	}
	s.closed = true
	s.loaded.Store(false)
	for _, u := range s.unmap {
		u()
	}
	s.unmap, s.logMap, s.idxMap = nil, nil, nil
	if s.log != nil {
		s.log.Close()
	}
	if s.idx != nil {
		s.idx.Close()
	}
	s.account(0, 0)
}

// load opens and maps a lazily opened segment. Callers hold a pin. What it
// opened is closed again when it fails, so a failed load holds nothing.
func (s *Segment) load() error {
	if s.loaded.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded.Load() {
		return nil
	}
	if s.closed || s.removed {
		// A removed segment's files are gone: a reader that pinned it
		// before it was first mapped gets ErrClosed, not an open error.
		return ErrClosed
	}
	if err := s.openFiles(); err != nil {
		if s.log != nil {
			s.log.Close()
		}
		if s.idx != nil {
			s.idx.Close()
		}
		s.log, s.idx = nil, nil
		return err
	}
	s.recent.Store(true)
	if s.opts.OnLoad != nil {
		s.opts.OnLoad(s)
	}
	return nil
}

func (s *Segment) openFiles() error {
	var err error
	if s.log == nil {
		if s.log, err = s.fs.Open(s.path(LogName(s.base))); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
	}
	// Reading a mapped page past the end of a file kills the process
	// (SIGBUS): a file cut since Open is damage, reported before mapping.
	logSize, err := s.log.Size()
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	if logSize < s.size.Load() {
		return &CorruptError{File: s.path(LogName(s.base)), Pos: logSize, Offset: s.base,
			Err: fmt.Errorf("log is %d bytes, %d committed", logSize, s.size.Load())}
	}
	if !s.sealed.Load() {
		if s.mem.Load() == nil {
			if err := s.readIndex(); err != nil {
				return err
			}
		}
		return s.mapFiles()
	}
	if s.idx == nil {
		if s.idx, err = s.fs.Open(s.path(IndexName(s.base))); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
	}
	idxSize, err := s.idx.Size()
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	if idxSize < s.entries.Load()*EntrySize {
		return &CorruptError{File: s.path(IndexName(s.base)), Pos: idxSize, Offset: s.base,
			Err: fmt.Errorf("index is %d bytes, %d entries committed", idxSize, s.entries.Load())}
	}
	return s.mapFiles()
}

// Remove unlinks the segment's files and drops the owner's pin. Readers
// holding pins keep reading: the mapping outlives the unlink.
func (s *Segment) Remove() error {
	s.mu.Lock()
	if s.removed {
		s.mu.Unlock()
		return nil
	}
	s.removed = true
	var first error
	for _, name := range []string{SealName(s.base), IndexName(s.base), LogName(s.base)} {
		if err := s.fs.Remove(s.path(name)); err != nil && first == nil && !isNotExist(err) {
			first = err
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil && first == nil {
		first = err
	}
	s.mu.Unlock()
	s.dropOwnerPin()
	return first
}

// entry decodes index entry i. Callers keep i below the committed count.
func (s *Segment) entry(i int64) (rel uint32, pos int64, t int64) {
	e := s.index()[i*EntrySize : i*EntrySize+EntrySize]
	le := binary.LittleEndian
	return le.Uint32(e), int64(le.Uint32(e[4:])), int64(le.Uint64(e[8:]))
}

func putEntry(dst []byte, rel uint32, pos uint32, t int64) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, rel)
	dst = binary.LittleEndian.AppendUint32(dst, pos)
	return binary.LittleEndian.AppendUint64(dst, uint64(t))
}

// search returns the index of the last committed entry whose relative
// offset is at most rel (the batch holding offset base+rel).
func (s *Segment) search(rel uint32, n int64) int64 {
	lo, hi := int64(0), n // invariant: entry lo-1 <= rel < entry hi
	for lo < hi {
		mid := int64(uint64(lo+hi) >> 1)
		if r, _, _ := s.entry(mid); r <= rel {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}
