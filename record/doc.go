// Package record owns the record-batch format: the unit haraqa stores on disk
// and sends on the wire. A batch is a fixed 64-byte header followed by a
// payload of messages and zero padding up to a multiple of 8 bytes. The exact
// byte layout is documented in FORMAT.md at the repository root.
//
// Every function that takes bytes from outside checks each length against the
// buffer and against MaxBatchSize before slicing; nothing allocates a
// declared length.
//
// There is one decoder: ParseHeader and Verify check a batch, Scanner walks
// back-to-back batches (segment recovery, reads, repair, the dump tool and the
// fuzz targets all use it), and Iter walks the messages inside one batch.
//
// Concurrency: values of this package are not safe for concurrent mutation; a
// Builder or Iter belongs to one goroutine. Functions are pure and may be
// called concurrently on distinct or read-only buffers.
//
// Example:
//
//	var b record.Builder
//	b.Reset()
//	b.Add([]byte("hello"))
//	b.Add([]byte("world"))
//	batch := b.Finish()
//	h, _ := record.Verify(batch)
//	var it record.Iter
//	it.Reset(batch[record.HeaderSize : record.HeaderSize+int(h.PayloadLen)], h.Count)
//	for msg, ok := it.Next(); ok; msg, ok = it.Next() {
//		_ = msg // aliases batch
//	}
package record
