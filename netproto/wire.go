package netproto

import (
	"encoding/binary"
	"strconv"
)

// bodyDecoder reads one message body field by field. Every read checks the
// remaining length first; after the first short read every later read
// returns zero values and done reports the failure. Byte fields are capped sub-slices of the source,
// so appending to one never overwrites the bytes after it.
type bodyDecoder struct {
	b    []byte
	what string // message name for errors
	why  string // first failure, "" while all reads fit
}

func (d *bodyDecoder) short(n int) bool {
	if d.why != "" {
		return true
	}
	if len(d.b) < n {
		d.why = "truncated body"
		return true
	}
	return false
}

func (d *bodyDecoder) u8() uint8 {
	if d.short(1) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *bodyDecoder) u16() uint16 {
	if d.short(2) {
		return 0
	}
	v := binary.LittleEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *bodyDecoder) u32() uint32 {
	if d.short(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *bodyDecoder) u64() uint64 {
	if d.short(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// flag reads a u8 boolean: 0 or 1, anything else is malformed, so that
// every body has exactly one encoding.
func (d *bodyDecoder) flag() bool {
	v := d.u8()
	if v > 1 && d.why == "" {
		d.why = "boolean byte " + strconv.Itoa(int(v))
	}
	return v == 1
}

// str reads a u16 length and that many bytes.
func (d *bodyDecoder) str() []byte {
	n := int(d.u16())
	if d.short(n) {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// count reads a u32 element count and checks that count elements of at
// least minSize bytes each fit in what is left, so that a caller may size a
// slice by it.
func (d *bodyDecoder) count(minSize int) int {
	n := d.u32()
	if d.why == "" && uint64(n)*uint64(minSize) > uint64(len(d.b)) {
		d.why = "count " + strconv.FormatUint(uint64(n), 10) + " exceeds body"
		return 0
	}
	return int(n)
}

// rest returns every remaining byte.
func (d *bodyDecoder) rest() []byte {
	if d.why != "" {
		return nil
	}
	v := d.b[:len(d.b):len(d.b)]
	d.b = d.b[len(d.b):]
	return v
}

// fail records a semantic failure found by the caller.
func (d *bodyDecoder) fail(why string) {
	if d.why == "" {
		d.why = why
	}
}

// done reports the first failure, or trailing bytes.
func (d *bodyDecoder) done() error {
	if d.why == "" && len(d.b) != 0 {
		d.why = strconv.Itoa(len(d.b)) + " trailing bytes"
	}
	if d.why != "" {
		return malformed(d.what, d.why)
	}
	return nil
}

// appendStr appends a u16 length and b, truncated to MaxString bytes.
func appendStr(dst, b []byte) []byte {
	if len(b) > MaxString {
		b = b[:MaxString]
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

func appendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

func appendFlag(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}
