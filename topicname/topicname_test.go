package topicname

import (
	"strings"
	"testing"
)

// A topic name is accepted only when it is a single safe path element of
// 1..249 bytes from [A-Za-z0-9._-]; every layer uses this one rule.
func TestCheck(t *testing.T) {
	for _, name := range []string{"a", "app.logs", "a.b-c_D9", "..a", "a..", strings.Repeat("z", MaxLen)} {
		if err := Check(name); err != nil {
			t.Errorf("Check(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", strings.Repeat("z", MaxLen+1)} {
		if CheckLen(name) == nil {
			t.Errorf("CheckLen(%q) = nil, want an error", name)
		}
	}
	if err := CheckLen("a/b"); err != nil {
		t.Errorf("CheckLen(%q) = %v, want nil (it checks the length only)", "a/b", err)
	}
	for _, name := range []string{"", ".", "..", "a/b", "spa ce", "é", "a\x00", strings.Repeat("z", MaxLen+1)} {
		if err := Check(name); err == nil {
			t.Errorf("Check(%q) = nil, want an error", name)
		}
	}
}
