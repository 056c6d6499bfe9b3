// Package segment owns one segment of a topic's log: a data file of
// back-to-back record batches (<base>.log), its index of fixed 16-byte
// entries (<base>.idx: relative offset, file position, append time), and,
// once full, a seal sidecar (<base>.seal) with the segment's offset range,
// length and whole-file hash. The layouts are in FORMAT.md.
//
// Writes go through the file descriptor with one vectored write per call
// (pwritev); reads go through a read-only memory mapping and never look past
// the committed length. A segment is opened with a recovery scan that cuts
// only a torn tail of the newest segment and reports anything else as
// corruption (*CorruptError, errors.Is(err, ErrCorrupt)). The index is
// derived data: a missing or inconsistent one is rebuilt from the log.
//
// Concurrency: one writer calls Write, Sync, Commit, Rollback, Seal, Close.
// Readers Acquire a pin, call Find, Bytes, File, FindTime, Verify, then
// Release. Bytes returned by Bytes stay valid until Release. Remove unlinks
// the files at once; the mapping is released with the last pin.
//
// Lifecycle. The owner (the engine's topic) holds one pin from Create or
// Open on; readers add theirs with Acquire. The verbs, in one place:
//
//   - Acquire / Release: a reader takes and drops a pin. The last Release
//     closes the files for good (closeFiles), once the owner let go.
//   - Close, Remove, Retire: the owner lets go (dropOwnerPin drops its pin
//     once, whichever comes first, and sets ownerGone). Close first syncs
//     and writes the index; Remove also unlinks the files; Retire touches
//     nothing, for a segment whose files were replaced or whose volume left
//     service.
//   - ReleaseIdle: anyone may ask an idle segment (no pin but the owner's)
//     to give back its descriptors and mappings (unload); the next read or
//     write opens them again (load). Open unloads too, so opening many
//     segments costs no descriptors.
//   - closeFiles: the end; after it the segment cannot be loaded again.
//
// Files are reached through the vfs package's FS seam: vfs.OSFS for real
// use, vfs.MemFS for tests that fail writes or syncs, run out of space, or
// crash keeping only synced bytes.
//
// Example (writer):
//
//	s, _ := segment.Create(vfs.OSFS{}, dir, 0, segment.Options{})
//	batch, _ := record.AppendBatch(nil, []byte("hello"))
//	record.Stamp(batch, 0, time.Now().UnixNano())
//	if err := s.Write([][]byte{batch}); err != nil { s.Rollback() }
//	if err := s.Sync(); err != nil { s.Rollback() }
//	s.Commit()
package segment
