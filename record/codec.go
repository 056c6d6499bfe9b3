package record

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// The codecs' encoder and decoder are created once per process, on first
// use, and shared: zstd's EncodeAll and DecodeAll are safe for concurrent
// use and keep a pool of GOMAXPROCS block coders inside, and s2's block
// functions keep no state. Nothing is created per batch.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(n),
			// The frame checksum (XXH64 of the raw bytes) lets the
			// consumer's decoder catch damage that happened before the
			// payload hash was computed over the compressed bytes.
			zstd.WithEncoderCRC(true),
			zstd.WithLowerEncoderMem(true))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(n),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(MaxBatchSize),
			zstd.WithDecoderMaxWindow(MaxBatchSize),
			// DecodeAll never grows dst past its capacity, which
			// Decompress sets to exactly raw_len.
			zstd.WithDecodeAllCapLimit(true))
	})
	return zstdEnc, zstdDec, zstdErr
}

// compress appends raw compressed with c to dst. It returns dst unchanged
// and false when c is none.
func compress(dst, raw []byte, c Codec) ([]byte, error) {
	switch c {
	case CodecS2:
		n := s2.MaxEncodedLen(len(raw))
		if n < 0 {
			return dst, fmt.Errorf("%w: %d raw bytes for s2", ErrTooLarge, len(raw))
		}
		start := len(dst)
		dst = growTo(dst, start+n)
		out := s2.Encode(dst[start:], raw)
		return dst[:start+len(out)], nil
	case CodecZstd:
		enc, _, err := zstdCoders()
		if err != nil {
			return dst, fmt.Errorf("record: zstd encoder: %w", err)
		}
		if cap(dst)-len(dst) < len(raw) {
			// Room for a frame as large as raw: the encoder then appends
			// without growing dst step by step.
			nb := make([]byte, len(dst), len(dst)+len(raw)+64)
			copy(nb, dst)
			dst = nb
		}
		return enc.EncodeAll(raw, dst), nil
	}
	return dst, fmt.Errorf("%w: %v", ErrCodec, c)
}

// growTo returns b with length n, keeping its contents, reallocating only
// when its capacity is too small.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, n+n/4)
	copy(nb, b)
	return nb
}

// Decompress returns the raw payload of a verified batch (Verify, Scanner):
// the bytes the messages are encoded in, ready for Iter.ResetPayload.
//
// With codec none it returns the stored payload itself, aliasing batch.
// Otherwise it decodes the payload into dst's storage when cap(dst) is at
// least raw_len, or into a new buffer of exactly raw_len bytes, and
// returns it. The decoders are shared and allocate nothing once warm.
//
// It is bounded: a raw_len above maxRaw (maxRaw <= 0 means MaxBatchSize)
// is refused with ErrTooLarge before anything is allocated, and the
// decoder never writes more than raw_len bytes, so a payload that would
// expand further (a decompression bomb) or decodes to a different size
// than raw_len (a lie) is refused with ErrCorrupt, as is one the codec
// cannot decode. The payload hash covers the compressed bytes, so such a
// batch passes Verify: only the consumer's decoder sees the damage.
func Decompress(dst, batch []byte, h *Header, maxRaw int) ([]byte, error) {
	if maxRaw <= 0 || maxRaw > MaxBatchSize {
		maxRaw = MaxBatchSize
	}
	payload := batch[HeaderSize : HeaderSize+int(h.PayloadLen)]
	c := h.Codec()
	if c == CodecNone {
		return payload, nil
	}
	if c > CodecZstd {
		return nil, fmt.Errorf("%w: %v (offsets %d..%d)", ErrCodec, c, h.BaseOffset, h.LastOffset())
	}
	raw := int(h.RawLen)
	if raw > maxRaw {
		return nil, fmt.Errorf("%w: %v payload of offsets %d..%d decompresses to %d bytes, limit %d",
			ErrTooLarge, c, h.BaseOffset, h.LastOffset(), raw, maxRaw)
	}
	if cap(dst) < raw {
		dst = make([]byte, 0, raw)
	}
	dst = dst[:0:raw] // the decoders may not write past raw_len
	var out []byte
	var err error
	switch c {
	case CodecS2:
		out, err = decodeS2(dst, payload, raw)
	case CodecZstd:
		out, err = decodeZstd(dst, payload, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v payload of offsets %d..%d: %w", ErrCorrupt, c, h.BaseOffset, h.LastOffset(), err)
	}
	if len(out) != raw {
		return nil, fmt.Errorf("%w: %v payload of offsets %d..%d decompresses to %d bytes, raw_len says %d",
			ErrCorrupt, c, h.BaseOffset, h.LastOffset(), len(out), raw)
	}
	return out, nil
}

func decodeS2(dst, payload []byte, raw int) ([]byte, error) {
	n, err := s2.DecodedLen(payload)
	if err != nil {
		return nil, err
	}
	if n != raw {
		return nil, fmt.Errorf("s2 block declares %d bytes, raw_len says %d", n, raw)
	}
	return s2.Decode(dst[:raw], payload) // in place: cap(dst) == raw
}

func decodeZstd(dst, payload []byte, raw int) ([]byte, error) {
	_, dec, err := zstdCoders()
	if err != nil {
		return nil, err
	}
	out, err := dec.DecodeAll(payload, dst)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return nil, fmt.Errorf("decodes to more than raw_len (%d bytes)", raw)
	}
	return out, err
}
