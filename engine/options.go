package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

// FsyncPolicy says what an acknowledged append means.
type FsyncPolicy int

const (
	// FsyncAlways (the default) acknowledges an append only after its bytes
	// were written and fdatasync'd. Concurrent appends to a topic share one
	// write and one fdatasync (group commit).
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval acknowledges after the write; the topic's writer
	// fdatasyncs at most FsyncInterval later. A power loss may lose the
	// acknowledged appends of that window; a process crash loses nothing.
	FsyncInterval
	// FsyncNever acknowledges after the write and leaves syncing to the
	// operating system (segments are still synced when sealed and at a
	// clean shutdown). A power loss may lose any unsynced appends.
	FsyncNever
)

func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("fsync(%d)", int(p))
}

// ParseFsyncPolicy parses "always", "interval" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch s {
	case "always", "":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("engine: unknown fsync policy %q (want always, interval or never)", s)
}

// Options configures an Engine. The zero value works except that Dir or
// Volumes must name a data directory.
type Options struct {
	// Dir is a data directory. Alone it is the one volume; with Volumes
	// set too it is the first volume, before those (the volumes are Dir
	// followed by Volumes). One of Dir and Volumes must be set.
	Dir string
	// Volumes are data directories, each holding a full mirror of every
	// topic (put them on different disks). Reads come from the last healthy
	// one.
	Volumes []string
	// InitVolumes adopts a missing (created) or empty volume directory as
	// a new volume although other volumes are initialised already; without
	// it only a new data set (no volume has an identity yet) is created,
	// and a missing or empty volume is fenced (it may be an unmounted
	// disk) unless it holds a NEW-VOLUME marker file. An empty directory
	// is adopted while running on the same terms.
	InitVolumes bool
	// MinVolumes is how many healthy volumes an append needs (default 1).
	// Below it appends fail with ErrStorage (retriable) and nothing is
	// acknowledged.
	MinVolumes int
	// HealthInterval is how often volumes are checked: a healthy volume
	// whose identity file vanished is fenced; a fenced volume that is
	// writable again is rebuilt and rejoins (default 1s).
	HealthInterval time.Duration
	// ScrubBytesPerSec bounds the scrubber, which re-verifies sealed
	// segments on every volume and repairs bad copies (default 32 MiB/s;
	// negative: off).
	ScrubBytesPerSec int64
	// CheckpointInterval is how often the synced offsets are recorded
	// (default 1s); see checkpoint.go.
	CheckpointInterval time.Duration
	// MaxOpenSegments caps the sealed segments kept open (a descriptor
	// and two mappings each) after reads; past it the least recently
	// opened idle ones are closed (default 1024).
	MaxOpenSegments int
	// MaxOpenFiles caps the descriptors that segments hold open (one per
	// topic being written or read); past it the least recently written
	// topics' files are let go (default: three quarters of the process's
	// descriptor limit, RLIMIT_NOFILE, at Open).
	MaxOpenFiles int
	// MaxMappings caps the memory mappings that segments hold (one per
	// topic being written, two per sealed segment being read); default:
	// three quarters of vm.max_map_count (65,530 if unknown).
	MaxMappings int
	// IdleRelease closes the active segments of a topic that had no append
	// for this long (default 10s), so idle topics hold no descriptors.
	IdleRelease time.Duration
	// ScrubInterval is the pause between scrub passes (default 1 minute).
	ScrubInterval time.Duration
	// FS is the file system; nil means the operating system's.
	FS vfs.FS
	// Fsync is the durability policy; see FsyncPolicy.
	Fsync FsyncPolicy
	// FsyncInterval is, under Fsync: FsyncInterval, how long after the
	// first unsynced append the topic's writer fdatasyncs (default 50ms);
	// the writer syncs between groups of appends, so a busy one may sync a
	// little later. Other policies ignore it.
	FsyncInterval time.Duration
	// ZeroAhead is, under Fsync: FsyncAlways, the most zero bytes a small
	// append (at most 4 KiB) that grows the active segment's log writes
	// after itself (256 times its size, at least 64 KiB), so that the
	// appends after it overwrite space the file already has and their
	// fdatasync commits no new file size (DESIGN.md "Zeros ahead"). 0
	// means segment.MaxZeroAhead (1 MiB), negative none; at most
	// segment.MaxZeroAhead. Other policies write none.
	ZeroAhead int64
	// SegmentBytes is the size at which a segment rolls (default 1 GiB).
	SegmentBytes int64
	// SegmentEntries is the number of batches at which a segment rolls
	// (default segment.DefaultMaxEntries).
	SegmentEntries int64
	// SegmentAge rolls a segment whose first batch is older (0: never).
	SegmentAge time.Duration
	// RetentionAge deletes sealed segments whose newest batch is older (0: keep).
	RetentionAge time.Duration
	// RetentionBytes deletes the oldest sealed segments while a topic holds
	// more bytes (0: no limit).
	RetentionBytes int64
	// RetentionInterval is how often retention runs (default 1 minute).
	RetentionInterval time.Duration
	// MaxBatchBytes caps an appended batch (default 64 MiB); it must not
	// exceed SegmentBytes.
	MaxBatchBytes int
	// QueueLen bounds the appends waiting for a topic's writer (default 1024).
	QueueLen int
	// SkipReadVerify turns off the checksum check of every batch a read
	// returns. Leave it off unless something downstream verifies.
	SkipReadVerify bool
	// MaxGroups caps the consumer groups per topic (default 256).
	MaxGroups int
	// GroupRecords, when set, takes every group-state record batch
	// instead of the local state log: package cluster replicates it and
	// appends it with AppendGroupRecords on every replica
	// (group_replica.go).
	GroupRecords GroupRecordsFunc
	// DeadLetterAppend, when set, appends a dead-lettered message's copy
	// to the group's dead-letter topic instead of this engine's Append,
	// and returns once the copy is stored (package cluster: through the
	// dead-letter topic's Raft group). The dead-letter ack record follows
	// only after it returned.
	DeadLetterAppend func(ctx context.Context, topic string, batch []byte) (uint64, error)
	// MaxGroupMembers caps the members per group (default 1,024).
	MaxGroupMembers int
	// MaxGroupInFlight caps the messages leased to one member (default
	// 100,000).
	MaxGroupInFlight int
	// MaxAckedRanges caps the acked ranges a group holds above its
	// committed offset (default 65,536): past it, acks that would add
	// one fail until the committed offset catches up.
	MaxAckedRanges int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives recovery and error reports (default slog.Default()).
	Logger *slog.Logger
	// Observer, if set, receives the write path's timings (metrics).
	Observer Observer

	onLoad func(*segment.Segment) // set by Open: the open-segment tracker
	usage  *segment.Usage         // set by Open: what segments hold
	limits FileLimits             // read at Open (reading them needs a descriptor)
}

// Observer receives timings from topic writers, for metrics. Its methods
// run on the write path: they must be quick, safe for concurrent use, and
// must not block or call the engine.
type Observer interface {
	// ObserveSync reports one fdatasync of a segment's log on the write
	// path (per mirror; under FsyncAlways per group, under FsyncInterval
	// per interval) and how long it took.
	ObserveSync(d time.Duration)
	// ObserveGroup reports one group commit: the batches, and their bytes,
	// written to every mirror with one write (and one sync).
	ObserveGroup(batches, bytes int)
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir != "" {
		o.Volumes = append([]string{o.Dir}, o.Volumes...)
	}
	if len(o.Volumes) == 0 {
		return o, fmt.Errorf("engine: no data directory: set Options.Dir or Options.Volumes")
	}
	seen := map[string]bool{}
	for _, v := range o.Volumes {
		c := filepath.Clean(v)
		if seen[c] {
			return o, fmt.Errorf("engine: volume %s given twice", v)
		}
		seen[c] = true
	}
	if o.MinVolumes <= 0 {
		o.MinVolumes = 1
	}
	if o.MinVolumes > len(o.Volumes) {
		return o, fmt.Errorf("engine: MinVolumes %d above the %d volumes given", o.MinVolumes, len(o.Volumes))
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = time.Second
	}
	if o.ScrubBytesPerSec == 0 {
		o.ScrubBytesPerSec = 32 << 20
	}
	if o.MaxOpenSegments <= 0 {
		o.MaxOpenSegments = 1024
	}
	lim := ReadFileLimits()
	o.limits = lim
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = 1 << 20
		if lim.Files > 0 {
			o.MaxOpenFiles = max(lim.Files*3/4, 1)
		}
	}
	if o.MaxMappings <= 0 {
		o.MaxMappings = 65530 * 3 / 4
		if lim.Mappings > 0 {
			o.MaxMappings = max(lim.Mappings*3/4, 2)
		}
	}
	// Sealed segments kept open after reads take at most a quarter of
	// either budget (each holds a descriptor and two mappings).
	o.MaxOpenSegments = max(min(o.MaxOpenSegments, o.MaxOpenFiles/4, o.MaxMappings/8), 1)
	if o.IdleRelease <= 0 {
		o.IdleRelease = 10 * time.Second
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Second
	}
	if o.ScrubInterval <= 0 {
		o.ScrubInterval = time.Minute
	}
	if o.FS == nil {
		o.FS = vfs.OSFS{}
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = 50 * time.Millisecond
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = segment.DefaultMaxBytes
	}
	if o.SegmentBytes > segment.MaxSegmentBytes {
		return o, fmt.Errorf("engine: SegmentBytes %d above %d", o.SegmentBytes, int64(segment.MaxSegmentBytes))
	}
	if o.SegmentEntries <= 0 {
		o.SegmentEntries = segment.DefaultMaxEntries
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = time.Minute
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = min(64<<20, int(o.SegmentBytes))
	}
	if o.MaxBatchBytes > record.MaxBatchSize {
		o.MaxBatchBytes = record.MaxBatchSize
	}
	if int64(o.MaxBatchBytes) > o.SegmentBytes {
		return o, fmt.Errorf("engine: MaxBatchBytes %d above SegmentBytes %d", o.MaxBatchBytes, o.SegmentBytes)
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 1024
	}
	if o.MaxGroups <= 0 {
		o.MaxGroups = 256
	}
	if o.MaxGroupMembers <= 0 {
		o.MaxGroupMembers = 1024
	}
	if o.MaxGroupInFlight <= 0 {
		o.MaxGroupInFlight = 100000
	}
	if o.MaxAckedRanges <= 0 {
		o.MaxAckedRanges = 65536
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

func (o *Options) segmentOptions() segment.Options {
	so := segment.Options{MaxBytes: o.SegmentBytes, MaxEntries: o.SegmentEntries, OnLoad: o.onLoad, Usage: o.usage}
	if o.Fsync == FsyncAlways && o.ZeroAhead >= 0 {
		// Every acknowledgement waits for an fdatasync: small appends
		// overwrite zeros written ahead instead of growing the file, so
		// that their sync commits no new file size (segment.Options).
		so.ZeroAhead = segment.MaxZeroAhead
		if o.ZeroAhead > 0 {
			so.ZeroAhead = min(o.ZeroAhead, segment.MaxZeroAhead)
		}
	}
	return so
}
