package main

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestREADMEFlagTable checks that README.md's table of broker flags lists
// every flag the broker has, and no flag it does not have, so that a new
// flag cannot go undocumented.
func TestREADMEFlagTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `-([a-z0-9-]+)` \\|").FindAllSubmatch(readme, -1) {
		documented = append(documented, string(m[1]))
	}
	_, fs := newFlags()
	var flags []string
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f.Name) })
	for _, f := range flags {
		if !slices.Contains(documented, f) {
			t.Errorf("broker flag -%s is missing from README.md's flag table", f)
		}
	}
	for _, d := range documented {
		if !slices.Contains(flags, d) {
			t.Errorf("README.md's flag table lists -%s, which the broker does not have", d)
		}
	}
}
