// Package fuzz holds haraqa's native fuzz targets (go test -fuzz): the wire
// protocol's frame header and every request and response decoder
// (netproto), the record-batch verifier, scanner and iterator (FuzzBatch),
// the consumer's decompression of s2 and zstd payloads behind a valid batch
// hash (FuzzDecompress) and the extended message encoding with keys,
// headers and timestamps (FuzzExtended) (record).
// The package has no code of its own; the targets live in _test files and
// their seed corpus under testdata/fuzz/<FuzzName>/.
//
// Run one target for a while:
//
//	go test ./fuzz -run='^$' -fuzz='^FuzzRequests$' -fuzztime=1m
//
// Regenerate the committed seed corpus after a format change:
//
//	go test ./fuzz -run='^TestSeedCorpus$' -update-corpus
package fuzz
