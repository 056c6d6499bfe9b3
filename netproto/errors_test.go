package netproto

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCodes(t *testing.T) {
	retriable := map[Code]bool{CodeStorage: true, CodeShuttingDown: true, CodeInternal: true, CodeTooBusy: true, CodeTimeout: true, CodeResource: true}
	names := map[string]bool{}
	for c := Code(1); c.Known(); c++ {
		s := c.Err()
		if s == nil || !c.Known() {
			t.Fatalf("%d has no sentinel", c)
		}
		if names[c.String()] || strings.HasPrefix(c.String(), "code(") {
			t.Fatalf("%d has name %q", c, c)
		}
		names[c.String()] = true
		if s.Error() != "netproto: "+c.String() {
			t.Errorf("sentinel %q does not match code name %q", s, c)
		}
		if c.Retriable() != retriable[c] {
			t.Errorf("%v: Retriable() = %v", c, c.Retriable())
		}
		e := NewError(c, "detail")
		if e.Retriable != c.Retriable() {
			t.Errorf("%v: NewError retriable %v", c, e.Retriable)
		}
		wrapped := fmt.Errorf("client: produce: %w", e)
		if !errors.Is(wrapped, s) || CodeOf(wrapped) != c {
			t.Errorf("%v: wrapped error does not match its sentinel", c)
		}
		for o := Code(1); o.Known(); o++ {
			if o != c && errors.Is(e, o.Err()) {
				t.Errorf("%v matches %v", c, o)
			}
		}
		if CodeOf(fmt.Errorf("%w: x", s)) != c {
			t.Errorf("CodeOf(wrapped sentinel %v) = %v", c, CodeOf(fmt.Errorf("%w: x", s)))
		}
	}
	if CodeOK.Err() != nil || Code(999).Err() != nil || Code(999).String() != "code(999)" || Code(999).Known() {
		t.Fatal("CodeOK or an unknown code has a sentinel or name")
	}
	if errors.Is(&Error{Code: 999}, ErrInternal) {
		t.Fatal("unknown code matched a sentinel")
	}
}

func TestCodeOfAndAsError(t *testing.T) {
	if CodeOf(nil) != CodeOK || CodeOf(io.EOF) != CodeInternal {
		t.Fatal("CodeOf(nil) or CodeOf(io.EOF)")
	}
	e := AsError(fmt.Errorf("%w: topic %q", ErrTopicNotFound, "x"))
	if e.Code != CodeTopicNotFound || e.Message != `topic "x"` || e.Retriable {
		t.Fatalf("AsError: %+v", e)
	}
	orig := NewError(CodeTooBusy, "queue full")
	if AsError(fmt.Errorf("wrap: %w", orig)) != orig {
		t.Fatal("AsError did not return the *Error in the chain")
	}
	if e := AsError(io.EOF); e.Code != CodeInternal || e.Message != "EOF" || !e.Retriable {
		t.Fatalf("AsError(io.EOF): %+v", e)
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Code: CodeOffsetOutOfRange, Message: "offset 7", Start: 10, End: 20}
	if got, want := e.Error(), "netproto: offset out of range: offset 7 (valid range [10, 20))"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if got := (&Error{Code: CodeTopicExists}).Error(); got != "netproto: topic exists" {
		t.Fatalf("%q", got)
	}
}

func TestOpcodeNames(t *testing.T) {
	names := map[string]bool{}
	for op := OpHello; op <= OpPlacement; op++ {
		if !op.Valid() || names[op.String()] || strings.HasPrefix(op.String(), "opcode(") {
			t.Fatalf("%d: %q", op, op)
		}
		names[op.String()] = true
	}
	if Opcode(0).Valid() || Opcode(25).Valid() || Opcode(25).String() != "opcode(25)" {
		t.Fatal("opcode 0 or 24")
	}
}

// TestErrorStringSaysTheRangeOnce checks that an out-of-range error whose
// message already names the valid range (as the broker's does) does not
// repeat it.
func TestErrorStringSaysTheRangeOnce(t *testing.T) {
	e := &Error{Code: CodeOffsetOutOfRange, Message: `engine: topic "t": offset 200000 out of range [0, 101010)`, Start: 0, End: 101010}
	if got := e.Error(); strings.Count(got, "101010") != 1 {
		t.Fatalf("%q names the range more than once", got)
	}
}
