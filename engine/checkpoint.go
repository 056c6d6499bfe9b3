package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/vfs"
)

// The synced-offset checkpoint. Every CheckpointInterval the engine writes,
// on every healthy volume, the offset up to which each topic is known to
// be synced (and so acknowledged under FsyncAlways). At open, damage at the
// tail of a topic's newest segment below that offset is corruption, not a
// torn write: it is repaired from a mirror, or leaves the topic read-only,
// and is never cut off. A missing or garbage checkpoint is ignored (and
// logged): startup never stops on it.
//
// Layout (little-endian): "HRQC" u32 | version u16 | reserved u16 |
// count u32 | count × (u16 name length, name, u64 synced) | xxhash64 of
// everything before it.

const (
	checkpointName           = "SYNCED"
	checkpointMagic   uint32 = 'H' | 'R'<<8 | 'Q'<<16 | 'C'<<24
	checkpointVersion uint16 = 1
)

func encodeCheckpoint(m map[string]uint64) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	le := binary.LittleEndian
	b := le.AppendUint32(nil, checkpointMagic)
	b = le.AppendUint16(b, checkpointVersion)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, uint32(len(names)))
	for _, n := range names {
		b = le.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
		b = le.AppendUint64(b, m[n])
	}
	return le.AppendUint64(b, xxhash.Sum64(b))
}

var errBadCheckpoint = errors.New("engine: bad checkpoint file")

func decodeCheckpoint(b []byte) (map[string]uint64, error) {
	le := binary.LittleEndian
	if len(b) < 20 || xxhash.Sum64(b[:len(b)-8]) != le.Uint64(b[len(b)-8:]) ||
		le.Uint32(b) != checkpointMagic || le.Uint16(b[4:]) != checkpointVersion {
		return nil, errBadCheckpoint
	}
	n := int(le.Uint32(b[8:]))
	body := b[12 : len(b)-8]
	if n > len(body)/11 {
		return nil, errBadCheckpoint
	}
	m := make(map[string]uint64, n)
	for range n {
		if len(body) < 2 {
			return nil, errBadCheckpoint
		}
		l := int(le.Uint16(body))
		if len(body) < 2+l+8 {
			return nil, errBadCheckpoint
		}
		m[string(body[2:2+l])] = le.Uint64(body[2+l:])
		body = body[2+l+8:]
	}
	if len(body) != 0 {
		return nil, errBadCheckpoint
	}
	return m, nil
}

// readCheckpoints merges the checkpoints of every healthy volume: the
// highest synced offset any of them recorded per topic.
func (e *Engine) readCheckpoints() map[string]uint64 {
	out := map[string]uint64{}
	for _, v := range e.healthyVolumes() {
		b, err := e.fs.ReadFile(v.path(checkpointName))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		var m map[string]uint64
		if err == nil {
			m, err = decodeCheckpoint(b)
		}
		if err != nil {
			e.opts.Logger.Warn("engine: ignoring unreadable synced-offset checkpoint", "volume", v.dir, "err", err)
			continue
		}
		for n, off := range m {
			out[n] = max(out[n], off)
		}
	}
	return out
}

// WriteCheckpoint records every topic's synced offset on every healthy
// volume (temporary file, sync, rename, sync dir). It runs every
// CheckpointInterval on its own and at Close.
func (e *Engine) WriteCheckpoint() error {
	m := map[string]uint64{}
	for _, t := range e.snapshotTopics() {
		m[t.name] = t.synced.Load()
	}
	full, err := e.writeCheckpoint(m)
	return errors.Join(full, err)
}

// writeCheckpoint writes m on every healthy volume. Failures for lack of
// space are returned apart (full): the volume's previous checkpoint stays,
// a lower bound that is still true.
func (e *Engine) writeCheckpoint(m map[string]uint64) (full, err error) {
	b := encodeCheckpoint(m)
	var fulls, errs []error
	for _, v := range e.healthyVolumes() {
		if err := vfs.WriteFileAtomic(e.fs, v.path(checkpointName), b); err != nil {
			err = fmt.Errorf("engine: checkpoint on %s: %w", v.dir, err)
			if diskFull(err) {
				fulls = append(fulls, err)
			} else {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(fulls...), errors.Join(errs...)
}

// diskFull reports an error for lack of space (or quota).
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (e *Engine) checkpointLoop() {
	defer e.wg.Done()
	tick := time.NewTicker(e.opts.CheckpointInterval)
	defer tick.Stop()
	var last map[string]uint64
	full := false // logged once per full-disk episode
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		}
		e.ckptMu.Lock()
		m := map[string]uint64{}
		for _, t := range e.snapshotTopics() {
			m[t.name] = t.synced.Load()
		}
		if !sameCheckpoint(m, last) {
			ferr, err := e.writeCheckpoint(m)
			if err != nil {
				e.opts.Logger.Warn("engine: checkpoint", "err", err)
			}
			if ferr != nil && !full {
				e.opts.Logger.Warn("engine: checkpoint not written: disk full; the previous one stays", "err", ferr)
			}
			full = ferr != nil
			if err == nil && ferr == nil {
				last = m
			}
		}
		e.ckptMu.Unlock()
	}
}

func sameCheckpoint(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
