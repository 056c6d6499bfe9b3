// Package engine owns a broker's topics on disk: each topic is a log of
// segments (package segment) mirrored on every volume (data directory),
// with one writer goroutine per topic that groups appends, writes them to
// every mirror and syncs per the fsync policy. It also owns what keeps
// the mirrors honest: volume identity and states (VOLUME, CLEAN, SYNCED),
// reconciliation and repair of the mirrors at open, health checks,
// fencing and rebuilds of a failed volume, the scrubber, retention and
// truncation, long-poll waits for new data, and the budget of open files
// and mappings. The topic-name rule is topicname.Check (ValidTopic wraps
// it). How each piece works is in DESIGN.md; the byte layouts in FORMAT.md.
//
// Words: a volume is one data directory; a topic's mirror is its
// directory of segments on one volume (mirror at open, before
// reconciliation, foundMirror); "copy" means copying bytes (a rebuild, a
// repair with segment.CopyTo), never a mirror.
//
// Concurrency contract. Every exported method is safe for concurrent use.
//
//   - Writes: per topic, one writer goroutine does every write to its
//     segments: appends (Append, Enqueue), rolls, repairs and rejoins of
//     its mirrors. Appends queue for it (Options.QueueLen); Enqueue keeps
//     the order of the calls that made it. Nothing else writes a segment.
//   - Reads: Read, Offsets, OffsetAt and Wait take no lock. They load the
//     topic's published view (an atomic pointer, replaced copy-on-write)
//     and its end offset, pin the segments they read, and never see bytes
//     past the end. The bytes of a ReadResult stay valid until its Release;
//     never write to them. Wait and WaitChange block until the end moves,
//     the context ends or the topic goes.
//   - Admin: CreateTopic, DeleteTopic, TruncateBefore, SkipTo, ApplyRetention,
//     CheckVolumes, Scrub and WriteCheckpoint may run while appends and
//     reads go on; a topic's view changes under Topic.mu only.
//
// Lock order: Engine.ckptMu, then Engine.mu (the topic map), then Topic.mu
// (view changes), then Volume.mu (state). Engine.checkMu serialises health
// checks and is never taken under the others. The open-segment set's and
// the pressure ring's locks are leaves (taken inside a segment's lock). No
// lock is held across a network call, and none on the hot path across I/O.
//
// Example:
//
//	e, err := engine.Open(engine.Options{Volumes: []string{"/data/a", "/data/b"}, InitVolumes: true})
//	if err != nil { ... }
//	defer e.Close()
//	if err := e.CreateTopic("events"); err != nil { ... }
//	batch, _ := record.AppendBatch(nil, []byte("hello"))
//	off, err := e.Append(ctx, "events", batch) // stored per Options.Fsync
//	var res engine.ReadResult
//	defer res.Release()
//	err = e.Read("events", off, 1, 1<<20, &res) // res.Chunks hold whole batches
package engine
