// Package testtool finds the third-party programs that tests run against
// (kcat, syslog-ng, chromium, python3 with confluent_kafka, node, ...).
//
// On a developer's machine a missing program skips the test and says how to
// install it. In CI (.ci/run sets HARAQA_REQUIRE_TOOLS=1, after
// .ci/install-deps installed everything) a missing program fails the test, so
// a suite can never pass by silently not running.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether missing programs fail tests instead of skipping
// them (HARAQA_REQUIRE_TOOLS=1).
func Required() bool { return os.Getenv("HARAQA_REQUIRE_TOOLS") == "1" }

// Need returns the path of the program name, or skips (fails when
// Required) the test naming the Debian package that provides it.
func Need(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	Missing(t, name+" is not installed (.ci/install-deps installs Debian's "+debianPackage+")")
	return ""
}

// Missing skips the test with reason, or fails it when Required.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("HARAQA_REQUIRE_TOOLS=1 and %s", reason)
	}
	t.Skip(reason)
}
