package segment

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/haraqa/haraqa/vfs"
)

// The seal sidecar: written once when a segment is full, it records the
// segment's offset range, log length, whole-file hash and index size so
// that a restart trusts the segment without scanning it and mirrors can be
// compared cheaply. Layout in FORMAT.md.
const (
	sealSize         = 64
	sealMagic uint32 = 'H' | 'R'<<8 | 'Q'<<16 | 'S'<<24
	sealVer   uint16 = 1
)

// Seal describes a sealed segment.
type Seal struct {
	Base     uint64
	Next     uint64
	LogSize  int64
	LogHash  uint64 // xxhash64 of the whole log file
	Entries  int64
	LastTime int64
}

func (m *Seal) encode() []byte {
	b := make([]byte, 0, sealSize)
	le := binary.LittleEndian
	b = le.AppendUint32(b, sealMagic)
	b = le.AppendUint16(b, sealVer)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, m.Base)
	b = le.AppendUint64(b, m.Next)
	b = le.AppendUint64(b, uint64(m.LogSize))
	b = le.AppendUint64(b, m.LogHash)
	b = le.AppendUint64(b, uint64(m.Entries))
	b = le.AppendUint64(b, uint64(m.LastTime))
	return le.AppendUint64(b, xxhash.Sum64(b))
}

var errBadSeal = errors.New("segment: bad seal file")

func decodeSeal(b []byte) (Seal, error) {
	var m Seal
	le := binary.LittleEndian
	if len(b) != sealSize || le.Uint32(b) != sealMagic || le.Uint16(b[4:]) != sealVer ||
		xxhash.Sum64(b[:56]) != le.Uint64(b[56:]) {
		return m, errBadSeal
	}
	m.Base = le.Uint64(b[8:])
	m.Next = le.Uint64(b[16:])
	m.LogSize = int64(le.Uint64(b[24:]))
	m.LogHash = le.Uint64(b[32:])
	m.Entries = int64(le.Uint64(b[40:]))
	m.LastTime = int64(le.Uint64(b[48:]))
	if m.LogSize < 0 || m.LogSize > MaxSegmentBytes || m.Entries < 0 || m.Next < m.Base {
		return m, errBadSeal
	}
	return m, nil
}

// ReadSeal reads and checks the seal sidecar of segment base in dir.
func ReadSeal(fs vfs.FS, dir string, base uint64) (Seal, error) {
	b, err := fs.ReadFile(joinPath(dir, SealName(base)))
	if err != nil {
		return Seal{}, err
	}
	m, err := decodeSeal(b)
	if err == nil && m.Base != base {
		err = errBadSeal
	}
	return m, err
}

// SealInfo returns the seal of a sealed segment.
func (s *Segment) SealInfo() (Seal, bool) {
	if !s.sealed.Load() {
		return Seal{}, false
	}
	return s.seal, true
}

// Seal makes a full segment read-only: it syncs the log, trims and syncs
// the index, and writes the seal sidecar atomically (temp file, sync,
// rename, sync dir). Only then may the engine create the next segment.
func (s *Segment) Seal() error {
	if s.sealed.Load() {
		return nil
	}
	if s.damaged != nil {
		return s.damaged
	}
	if s.pendSize != s.size.Load() || s.pendEntries != s.entries.Load() {
		return fmt.Errorf("segment: seal %d: uncommitted writes (commit or roll back first)", s.base)
	}
	if !s.Acquire() {
		return ErrClosed
	}
	defer s.Release()
	if err := s.load(); err != nil {
		return err
	}
	if err := s.readyDigest(); err != nil {
		return err
	}
	if err := s.cutZeros(true); err != nil {
		return err
	}
	if err := s.Sync(); err != nil {
		return err
	}
	// A seal whose length differs from the file's would make the next Open
	// call a healthy segment corrupt (say a failed Rollback left bytes).
	if n, err := s.log.Size(); err != nil {
		return fmt.Errorf("segment: seal %d: %w", s.base, err)
	} else if n != s.size.Load() {
		return fmt.Errorf("segment: seal %d: log file is %d bytes, %d committed", s.base, n, s.size.Load())
	}
	if err := s.writeIndex(true); err != nil {
		return err
	}
	// saved, not digest: the hash of exactly the committed bytes.
	m := Seal{Base: s.base, Next: s.next.Load(), LogSize: s.size.Load(), LogHash: s.saved.Sum64(),
		Entries: s.entries.Load(), LastTime: s.lastTime.Load()}
	if err := vfs.WriteFileAtomic(s.fs, s.path(SealName(s.base)), m.encode()); err != nil {
		return fmt.Errorf("segment: seal %d: %w", s.base, err)
	}
	s.seal = m
	s.sealed.Store(true)
	return nil
}

// Close ends the writer's use of an open segment at a clean shutdown: it
// syncs the log (a segment whose files were let go was synced then) and
// writes, trims and syncs the index file, then drops the owner's pin.
//
// A failure to write the index (a full disk) is not Close's failure: the
// index is derived data, and the next Open trusts it only if its last entry
// ends exactly at the log's end — a stale or partial index fails that check
// and is rebuilt from the log.
func (s *Segment) Close() error {
	var err error
	if !s.sealed.Load() && s.damaged == nil && s.Acquire() {
		if err = s.cutZeros(true); err == nil {
			err = s.Sync()
		}
		if err == nil && !s.idxSynced {
			s.writeIndex(true)
		}
		s.Release()
	}
	s.dropOwnerPin()
	return err
}
