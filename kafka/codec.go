package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Kafka's record-batch compression codecs (attributes bits 0-2).
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

var errTooLarge = errors.New("kafka: batch larger than the broker's limit once decompressed")

// decompressor decodes compressed Kafka batches, never producing more than
// limit bytes (the broker's MaxBatchBytes): a batch that expands further
// (a decompression bomb) stops there with errTooLarge.
type decompressor struct {
	limit int
	gz    sync.Pool // *gzip.Reader
	lz    sync.Pool // *lz4.Reader
	zOnce sync.Once
	z     *zstd.Decoder
	zErr  error
}

func (d *decompressor) decode(codec int, src, dst []byte) ([]byte, error) {
	switch codec {
	case codecGzip:
		zr, _ := d.gz.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return nil, fmt.Errorf("kafka: gzip: %w", err)
		}
		defer d.gz.Put(zr)
		return readLimited(zr, dst, d.limit)
	case codecSnappy:
		return d.snappy(src, dst)
	case codecLZ4:
		lr, _ := d.lz.Get().(*lz4.Reader)
		if lr == nil {
			lr = lz4.NewReader(bytes.NewReader(src))
		} else {
			lr.Reset(bytes.NewReader(src))
		}
		defer d.lz.Put(lr)
		return readLimited(lr, dst, d.limit)
	case codecZstd:
		d.zOnce.Do(func() {
			d.z, d.zErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
				zstd.WithDecoderMaxMemory(uint64(d.limit)), zstd.WithDecoderMaxWindow(uint64(min(d.limit, 1<<30))))
		})
		if d.zErr != nil {
			return nil, d.zErr
		}
		out, err := d.z.DecodeAll(src, dst[:0])
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || len(out) > d.limit {
			return nil, errTooLarge
		}
		if err != nil {
			return nil, fmt.Errorf("kafka: zstd: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("kafka: unknown compression codec %d", codec)
}

// xerialMagic starts the framing Kafka's Java client (through
// xerial snappy-java) uses: magic, then version and compatible version
// (int32 each), then blocks of int32 length + snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func (d *decompressor) snappy(src, dst []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return d.snappyBlock(src, dst[:0])
	}
	if len(src) < 16 {
		return nil, fmt.Errorf("kafka: snappy: short xerial header")
	}
	src = src[16:]
	out := dst[:0]
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("kafka: snappy: cut xerial block length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, fmt.Errorf("kafka: snappy: xerial block past the end")
		}
		var err error
		if out, err = d.snappyBlock(src[:n], out); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one snappy block to out.
func (d *decompressor) snappyBlock(block, out []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("kafka: snappy: %w", err)
	}
	if n > d.limit-len(out) {
		return nil, errTooLarge
	}
	start := len(out)
	out = growLen(out, n)
	if _, err := snappy.Decode(out[start:], block); err != nil {
		return nil, fmt.Errorf("kafka: snappy: %w", err)
	}
	return out, nil
}

// growLen extends b by n bytes.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// readLimited reads r whole into dst, failing with errTooLarge past limit
// bytes.
func readLimited(r io.Reader, dst []byte, limit int) ([]byte, error) {
	out := dst[:0]
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				return nil, errTooLarge
			}
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):min(cap(out), limit+1)])
		out = out[:len(out)+n]
		if len(out) > limit {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kafka: decompress: %w", err)
		}
	}
}
