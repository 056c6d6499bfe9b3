package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/haraqa/haraqa/segment"
)

// counters are the engine's event counts, exported through Stats.
type counters struct {
	corruptions      atomic.Int64
	repairs          atomic.Int64
	bytesRepaired    atomic.Int64
	tornBytes        atomic.Int64
	scrubPasses      atomic.Int64
	scrubBytes       atomic.Int64
	readFailovers    atomic.Int64
	fenced           atomic.Int64
	resourceErrors   atomic.Int64
	pressureReleases atomic.Int64
	duplicates       atomic.Int64
}

// Stats is a snapshot of the engine's counters and volume states.
type Stats struct {
	CorruptionsFound int64 // damaged segments or batches found (open, scrub, read)
	SegmentsRepaired int64 // segment copies rebuilt from a mirror
	BytesRepaired    int64
	TornBytes        int64 // bytes cut from torn tails at open
	ScrubPasses      int64 // completed scrub passes
	ScrubBytes       int64 // bytes verified by the scrubber
	ReadFailovers    int64 // reads served from another mirror after a bad batch
	VolumesFenced    int64 // times a volume was taken out of service
	ResourceErrors   int64 // requests refused with ErrResource (out of descriptors or mappings)
	PressureReleases int64 // active segments let go to stay within MaxOpenFiles / MaxMappings
	Duplicates       int64 // idempotent producers' resent batches answered with their first offset, not stored again
	OpenFiles        int64 // descriptors segments hold now
	OpenMappings     int64 // mappings segments hold now
	Volumes          []VolumeInfo
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{
		CorruptionsFound: c.corruptions.Load(), SegmentsRepaired: c.repairs.Load(),
		BytesRepaired: c.bytesRepaired.Load(), TornBytes: c.tornBytes.Load(),
		ScrubPasses: c.scrubPasses.Load(), ScrubBytes: c.scrubBytes.Load(),
		ReadFailovers: c.readFailovers.Load(), VolumesFenced: c.fenced.Load(),
		ResourceErrors: c.resourceErrors.Load(), PressureReleases: c.pressureReleases.Load(),
		Duplicates: c.duplicates.Load(),
		OpenFiles:  e.press.usage.Files.Load(), OpenMappings: e.press.usage.Maps.Load(),
		Volumes: e.Volumes(),
	}
}

// fenceVolume takes a volume out of service after an error, loudly.
func (e *Engine) fenceVolume(v *Volume, reason error) {
	if v.fence(reason) {
		e.stats.fenced.Add(1)
		e.opts.Logger.Error("engine: volume fenced", "volume", v.dir, "err", reason)
	}
}

// fenceStale is fenceVolume for the failure of work begun while v was in
// service (a repair of a segment on it): if v was fenced since, or is
// being rebuilt, the failure is the rebuild's business, not a new fault.
func (e *Engine) fenceStale(v *Volume, reason error) {
	if v.fenceHealthy(reason) {
		e.stats.fenced.Add(1)
		e.opts.Logger.Error("engine: volume fenced", "volume", v.dir, "err", reason)
	}
}

func (e *Engine) snapshotTopics() []*Topic {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil
	}
	ts := make([]*Topic, 0, len(e.topics))
	for _, t := range e.topics {
		ts = append(ts, t)
	}
	return ts
}

// CheckVolumes runs one health check: a healthy volume whose identity file
// is gone or changed is fenced; a fenced volume whose directory is there
// and writable again (empty, or holding this broker's identity) is rebuilt
// from the healthy volumes, topic by topic, and rejoins. It runs every
// HealthInterval on its own.
func (e *Engine) CheckVolumes() {
	e.checkMu.Lock()
	defer e.checkMu.Unlock()
	if e.isClosed() {
		return // the volumes' locks may be released
	}
	for _, v := range e.vols {
		if v.healthy() {
			id, ok, err := readIdentity(e.fs, v.dir)
			switch {
			case err != nil && transientErr(err):
				// Out of descriptors or memory is the process's trouble,
				// not the disk's.
				e.opts.Logger.Warn("engine: cannot read volume identity (transient); not fenced", "volume", v.dir, "err", err)
			case err != nil && e.lastInService(v):
				// Fencing the last volume stops every write, and the fault
				// may clear: writes and syncs still fence it if it failed.
				e.opts.Logger.Error("engine: cannot read the identity of the last volume in service; not fenced", "volume", v.dir, "err", err)
			case err != nil:
				e.fenceVolume(v, err)
			case !ok:
				e.fenceVolume(v, fmt.Errorf("%w: %s: identity file gone (volume deleted or unmounted?)", ErrVolume, v.dir))
			case id != v.id:
				e.fenceVolume(v, fmt.Errorf("%w: %s: identity changed to volume %s", ErrVolume, v.dir, id.Volume))
			}
			continue
		}
		if !v.fenced() {
			continue
		}
		if err := e.revive(v); err != nil {
			e.opts.Logger.Debug("engine: volume still out of service", "volume", v.dir, "err", err)
		}
	}
}

// knownIdentity checks that id is v's identity or, for a volume whose id
// was never known (fenced since open), one of this broker's volumes that
// no other volume is; it then becomes v's.
func (e *Engine) knownIdentity(v *Volume, id identity) error {
	if v.id.Volume != "" {
		if id != v.id {
			return fmt.Errorf("%w: %s holds volume %s of broker %s", ErrVolume, v.dir, id.Volume, id.Broker)
		}
		return nil
	}
	if id.Broker != v.id.Broker {
		return fmt.Errorf("%w: %s belongs to broker %s, the other volumes to broker %s", ErrVolume, v.dir, id.Broker, v.id.Broker)
	}
	for _, o := range e.vols {
		if o != v && o.volumeID() == id.Volume {
			return fmt.Errorf("%w: %s and %s are the same volume (id %s)", ErrVolume, o.dir, v.dir, id.Volume)
		}
	}
	v.setID(id.Volume)
	return nil
}

// transientErr reports an error that says nothing about the disk: the
// process ran out of descriptors or memory, or a call was interrupted.
func transientErr(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EINTR, syscall.EAGAIN, syscall.ENOMEM} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// lastInService reports whether v is the only healthy volume.
func (e *Engine) lastInService(v *Volume) bool {
	for _, o := range e.healthyVolumes() {
		if o != v {
			return false
		}
	}
	return true
}

// revive rebuilds a fenced volume. It never creates the volume directory
// itself (an unmounted disk's mount point must not fill the root disk), and
// adopts an empty one only as DESIGN.md says (a NEW-VOLUME marker or
// InitVolumes). It locks the volume again if its directory was replaced.
func (e *Engine) revive(v *Volume) error {
	if v.lock == nil || !v.lock.current() {
		if v.lock != nil {
			v.lock.release()
			v.lock = nil
		}
		l, err := lockVolume(e.fs, v.dir)
		if err != nil {
			return err
		}
		v.lock = l
	}
	p := probeDir(e.fs, v.dir)
	switch p.kind {
	case dirMissing:
		return fmt.Errorf("%w: %s is missing", ErrVolume, v.dir)
	case dirBad:
		return p.err
	case dirForeign:
		return fmt.Errorf("%w: %s has files but no identity", ErrVolume, v.dir)
	case dirEmpty:
		if !p.marker && !e.opts.InitVolumes {
			return fmt.Errorf("%w: %s is empty (an unmounted disk?); to rebuild it as a new volume, create %s in it", ErrVolume, v.dir, newVolumeName)
		}
		if v.id.Volume == "" {
			v.setID(newID())
		}
		if err := adopt(e.fs, v); err != nil {
			return err
		}
	case dirVolume:
		if err := e.knownIdentity(v, p.id); err != nil {
			return err
		}
		// Writing the identity is also the probe that the volume takes writes.
		if err := writeIdentity(e.fs, v.dir, v.id); err != nil {
			return err
		}
	}
	if err := mkdirDurable(e.fs, v.path(topicsDir)); err != nil {
		return err
	}
	if !v.transition(VolumeFenced, VolumeRepairing) {
		return fmt.Errorf("%w: %s: not fenced", ErrVolume, v.dir)
	}
	// Every topic gets its mirror rebuilt on its writer; the writes that
	// follow go to the new mirror too. A write error on the volume meanwhile
	// fences it again, and the rebuild stops.
	if err := e.rejoinAll(v); err != nil {
		return err
	}
	for _, name := range e.strayTopics(v) {
		removeTopicDir(e.fs, v, name)
	}
	if !v.transition(VolumeRepairing, VolumeHealthy) {
		return fmt.Errorf("%w: %s: fenced again during its rebuild", ErrVolume, v.dir)
	}
	// Topics created during the rebuild were created without this volume.
	if err := e.rejoinAll(v); err != nil {
		return err
	}
	// Its SYNCED may be stale (the loop writes only when offsets change):
	// bring it up to date, so the next open does not take an old value.
	e.ckptMu.Lock()
	if err := e.WriteCheckpoint(); err != nil {
		e.opts.Logger.Warn("engine: checkpoint after rebuild", "volume", v.dir, "err", err)
	}
	e.ckptMu.Unlock()
	e.opts.Logger.Warn("engine: volume rebuilt and back in service", "volume", v.dir)
	return nil
}

// rejoinAll has every topic's writer rebuild vol's mirror of the topic.
func (e *Engine) rejoinAll(v *Volume) error {
	if e.isClosed() {
		v.fence(ErrClosed)
		return ErrClosed
	}
	for _, t := range e.snapshotTopics() {
		if e.stopping() {
			// Shutdown does not wait for a rebuild: the next open
			// reconciles what was copied so far and copies the rest.
			v.fence(ErrClosed)
			return ErrClosed
		}
		_, err := t.submitCtl(context.Background(), &writerReq{op: opRejoin, vol: v})
		if err == nil || errors.Is(err, ErrTopicNotFound) {
			continue // a deleted topic needs no mirror
		}
		if errors.Is(err, ErrClosed) {
			v.fence(ErrClosed)
			return err
		}
		e.fenceVolume(v, fmt.Errorf("rebuilding topic %q: %w", t.name, err))
		return err
	}
	return nil
}

func (e *Engine) scrubLoop() {
	defer e.wg.Done()
	if e.opts.ScrubBytesPerSec < 0 {
		return
	}
	wait := firstScrub(e.opts.ScrubInterval, e.opts.RetentionInterval)
	for {
		select {
		case <-e.stop:
			return
		case <-time.After(wait):
		}
		e.Scrub(e.opts.ScrubBytesPerSec)
		wait = e.opts.ScrubInterval
	}
}

// firstScrub is the wait before the first scrub pass: half the scrub
// interval, moved off the retention ticks (which fall on whole retention
// intervals since the open), so that the first pass and the first
// retention run do not start together.
func firstScrub(scrub, retention time.Duration) time.Duration {
	d := scrub / 2
	if retention > 0 && d%retention == 0 {
		d += retention / 2
	}
	return max(d, time.Millisecond)
}

// testHookScrub, set by tests only, runs when the scrubber has pinned a
// segment and is about to check it.
var testHookScrub func(t *Topic, s *segment.Segment)

// Scrub runs one pass over every sealed segment of every mirror, verifying
// its batches, index and whole-file hash at no more than bytesPerSec
// (0: unbounded), and repairs each bad copy from a mirror whose copy
// verifies. It returns the number of bad copies found. It runs every
// ScrubInterval on its own.
func (e *Engine) Scrub(bytesPerSec int64) int {
	bad := 0
	for _, t := range e.snapshotTopics() {
		for _, m := range t.view.Load().mirrors {
			if !m.vol.healthy() {
				continue // out of service: rebuilt whole when it comes back
			}
			for _, s := range m.segs {
				select {
				case <-e.stop:
					return bad
				default:
				}
				if !s.Sealed() || !s.Acquire() {
					continue
				}
				if testHookScrub != nil {
					testHookScrub(t, s)
				}
				start := time.Now()
				err := s.Verify()
				n := s.Size()
				s.Release()
				e.open.trim(e.opts.MaxOpenSegments) // verifying mapped it
				e.stats.scrubBytes.Add(n)
				if isResource(err) {
					// Out of descriptors or mappings: not a bad copy. The
					// next pass verifies it.
					e.resourceError(fmt.Sprintf("scrub topic %q segment %d", t.name, s.Base()), err)
					continue
				}
				if err != nil && (errors.Is(err, segment.ErrClosed) || !t.inView(m.vol, s)) {
					// Retention, truncation, a delete or a repair took the
					// segment out of the topic while it was checked: not
					// damage, nothing to repair.
					continue
				}
				if err != nil {
					bad++
					e.stats.corruptions.Add(1)
					e.opts.Logger.Error("engine: scrub found a bad segment", "topic", t.name, "volume", m.vol.dir, "segment", s.Base(), "err", err)
					if _, rerr := t.submitCtl(context.Background(), &writerReq{op: opRepair, vol: m.vol, base: s.Base()}); rerr != nil {
						e.opts.Logger.Error("engine: repair failed", "topic", t.name, "volume", m.vol.dir, "segment", s.Base(), "err", rerr)
						if errors.Is(rerr, ErrCorrupt) {
							e.reportDamage(t, s.Base()) // no mirror has it: a peer may
						}
					}
				}
				if bytesPerSec > 0 {
					if d := time.Duration(n*int64(time.Second)/bytesPerSec) - time.Since(start); d > 0 {
						select {
						case <-time.After(d):
						case <-e.stop:
							return bad
						}
					}
				}
			}
		}
	}
	e.stats.scrubPasses.Add(1)
	return bad
}

// inView reports whether s is still a segment of vol's mirror of the topic.
func (t *Topic) inView(vol *Volume, s *segment.Segment) bool {
	for _, m := range t.view.Load().mirrors {
		if m.vol == vol && m.find(s.Base()) == s {
			return true
		}
	}
	return false
}

// stopping reports whether Close has begun: long loops (rebuilds, copies)
// check it between steps so that shutdown does not wait for them.
func (e *Engine) stopping() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}
