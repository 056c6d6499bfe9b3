// Package record owns the record-batch format: the unit haraqa stores on disk
// and sends on the wire. A batch is a fixed 64-byte header followed by a
// payload of messages and zero padding up to a multiple of 8 bytes. The exact
// byte layout is documented in FORMAT.md at the repository root.
//
// A payload may be compressed (s2 or zstd, Builder.FinishCodec): the header's
// payload length and hash describe the stored, compressed bytes, so the broker
// verifies and serves a batch without decompressing it. Consumers call
// Decompress, which is bounded by their own limit. Messages use the plain
// encoding (a length and the value) or, once Builder.AddMessage was used, the
// extended one (key, headers and the producer's timestamp as well).
//
// Every function that takes bytes from outside checks each length against the
// buffer and against MaxBatchSize before slicing; nothing allocates a
// declared length, except Decompress within the caller's limit.
//
// There is one decoder: ParseHeader and Verify check a batch, Scanner walks
// back-to-back batches (segment recovery, reads, repair, the dump tool and the
// fuzz targets all use it), Decompress turns a verified batch into its raw
// payload, and Iter walks the messages of a raw payload in either encoding.
//
// Concurrency: values of this package are not safe for concurrent mutation; a
// Builder or Iter belongs to one goroutine. Functions are pure and may be
// called concurrently on distinct or read-only buffers. The codecs' encoder
// and decoder are shared by the whole process (created on first use) and are
// safe for concurrent use; a warm Builder and Decompress allocate nothing.
//
// Example:
//
//	var b record.Builder
//	b.Reset()
//	b.Add([]byte("hello"))
//	b.AddMessage(time.Now().UnixNano(), []byte("key"), []byte("world"),
//		[]record.MessageHeader{{Key: "trace", Value: []byte("abc")}})
//	batch, _ := b.FinishCodec(record.CodecZstd)
//	h, _ := record.Verify(batch)
//	raw, _ := record.Decompress(nil, batch, &h, 1<<20)
//	var it record.Iter
//	it.ResetPayload(raw, &h)
//	for m, ok := it.NextMessage(); ok; m, ok = it.NextMessage() {
//		_ = m.Value // aliases raw
//	}
//	_ = it.Err()
package record
