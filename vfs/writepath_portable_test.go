//go:build haraqa_portable

package vfs

import "testing"

// TestPortableTagSelectsPortableWritePath checks that a build with
// -tags haraqa_portable writes through the portable path (pwrite and a
// full sync), so that the crash and fault suites CI runs with the tag test
// the path macOS developers use, not the Linux one.
func TestPortableTagSelectsPortableWritePath(t *testing.T) {
	if WritePath != "pwrite+"+syncCall {
		t.Fatalf("WritePath = %q with -tags haraqa_portable", WritePath)
	}
}
