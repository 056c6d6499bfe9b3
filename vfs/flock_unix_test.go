//go:build linux || darwin

package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFlock checks the lock that keeps a second broker off a volume: an
// exclusive lock refuses any other holder with ErrLockHeld, shared locks
// coexist, and closing the file lets the next one in.
func TestFlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if err := Flock(a, true); err != nil {
		t.Fatal(err)
	}
	if err := Flock(b, true); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("second exclusive lock: %v, want ErrLockHeld", err)
	}
	if err := Flock(b, false); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("shared lock under an exclusive one: %v, want ErrLockHeld", err)
	}
	a.Close()
	c := open()
	defer c.Close()
	if err := Flock(b, false); err != nil {
		t.Fatalf("shared lock after the exclusive one was let go: %v", err)
	}
	if err := Flock(c, false); err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
}
