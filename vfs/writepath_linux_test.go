//go:build linux && !haraqa_portable

package vfs

import "testing"

// TestLinuxWritePath checks that a plain Linux build keeps the vectored
// write and fdatasync path (the production one).
func TestLinuxWritePath(t *testing.T) {
	if WritePath != "pwritev+fdatasync" {
		t.Fatalf("WritePath = %q on Linux", WritePath)
	}
}
