package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/haraqa/haraqa/internal/testtool"
)

// TestSystemdUnit: the shipped systemd unit is one systemd accepts without
// a warning (systemd-analyze verify ignores a misspelt or bad directive
// with only a warning, so any output fails), and it keeps the hardening
// and the stop behaviour an operator relies on.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../packaging/haraqa.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/haraqa", "LimitNOFILE=",
		"Restart=on-failure", "KillSignal=SIGTERM", "ExecReload=/bin/kill -HUP $MAINPID", "User=haraqa",
		"-config /etc/haraqa/haraqa.toml",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("packaging/haraqa.service lacks %q", want)
		}
	}
	analyze := testtool.Need(t, "systemd-analyze", "systemd")
	// verify wants ExecStart's program to exist: this test's binary
	// stands in for the installed broker.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	local := strings.ReplaceAll(string(unit), "/usr/local/bin/haraqa-broker", self)
	path := filepath.Join(t.TempDir(), "haraqa.service")
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerfile checks the image recipe for what the README promises
// (no docker engine runs in the tests): a multi-stage build of a static
// binary, a non-root user, the data volume, the two ports, a SIGTERM stop
// and a health check on /readyz.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for what, re := range map[string]string{
		"a build stage":          `(?m)^FROM golang:\S+ AS build$`,
		"a runtime stage":        `(?m)^FROM \S+$`,
		"a static build":         `CGO_ENABLED=0 go build .* ./cmd/broker`,
		"a non-root user":        `(?m)^USER [1-9][0-9]*:[1-9][0-9]*$`,
		"the data volume":        `(?m)^VOLUME \["/data"\]$`,
		"the ports":              `(?m)^EXPOSE 4353 4354$`,
		"SIGTERM":                `(?m)^STOPSIGNAL SIGTERM$`,
		"a /readyz health check": `(?s)HEALTHCHECK .*http://127\.0\.0\.1:4354/readyz`,
		"the HTTP listener open": `HARAQA_BROKER_HTTP=:4354`,
	} {
		if !regexp.MustCompile(re).MatchString(df) {
			t.Errorf("Dockerfile lacks %s (%s)", what, re)
		}
	}
	// Every flag named through an environment variable exists.
	_, fs := newFlags()
	for _, m := range regexp.MustCompile(`HARAQA_BROKER_([A-Z_]+)=`).FindAllStringSubmatch(df, -1) {
		name := strings.ToLower(strings.ReplaceAll(m[1], "_", "-"))
		if fs.Lookup(name) == nil {
			t.Errorf("Dockerfile sets %s, but the broker has no -%s", m[0], name)
		}
	}
}

// TestPackagedConfig: the example configuration shipped for the systemd
// unit is one the broker reads without an error.
func TestPackagedConfig(t *testing.T) {
	out := printConfigOf(t, "-config", "../../packaging/haraqa.toml")
	for _, want := range []string{`volumes = ["/var/lib/haraqa"]`, `addr = ":4353"`} {
		if !strings.Contains(out, want) {
			t.Errorf("-print-config of packaging/haraqa.toml lacks %q:\n%s", want, out)
		}
	}
}
