package segment

import (
	"fmt"
	"unsafe"
)

// Reading a mapped page whose file was cut under the mapping, or that the
// disk cannot read, raises SIGBUS, which kills a Go program. Every method
// that reads the segment's mappings (Find, FindTime, Verify, VerifyRange,
// LastBatches, CopyTo, the recovery scan, the digest taken before a seal)
// therefore runs with the fault guard:
//
//	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
//	defer s.onFault(&err)
//
// which turns such a fault into a *CorruptError of that one call. Bytes
// returned to a caller (Bytes, LogBytes) are read by the kernel (writev,
// sendfile: EFAULT, never a signal) or by these methods.

// onFault, deferred directly (it calls recover) after
// debug.SetPanicOnFault(true), turns a panic while reading the mappings
// into a *CorruptError naming the log, and the byte position when the
// faulting address lies in the log's mapping. (The recovery scan recovers
// on its own: it also closes the files, so Open returns no segment.)
func (s *Segment) onFault(err *error) {
	if p := recover(); p != nil {
		*err = s.faultErr(p)
	}
}

// faultErr describes a recovered fault p.
func (s *Segment) faultErr(p any) error {
	a, fault := p.(interface{ Addr() uintptr })
	if !fault {
		// Not a memory fault: a slice out of range on damaged bytes, say.
		// Still this call's failure on this segment, not the process's.
		return &CorruptError{File: s.path(LogName(s.base)), Pos: -1, Offset: s.base,
			Err: fmt.Errorf("reading the segment panicked: %v", p)}
	}
	pos := int64(-1)
	if lo := uintptr(unsafe.Pointer(unsafe.SliceData(s.logMap))); len(s.logMap) > 0 &&
		a.Addr() >= lo && a.Addr() < lo+uintptr(len(s.logMap)) {
		pos = int64(a.Addr() - lo)
	}
	return &CorruptError{File: s.path(LogName(s.base)), Pos: pos, Offset: s.base,
		Err: fmt.Errorf("reading the mapped segment faulted (file cut under the mapping, or an unreadable page): %v", p)}
}

// testHookScan, set by tests only, runs when the recovery scan has mapped
// the log named and is about to read it.
var testHookScan func(log string)
