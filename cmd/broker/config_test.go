package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// printConfigOf runs broker -print-config with args and returns what it
// printed on stdout, failing the test unless it exits 0.
func printConfigOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errs bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	if code := run(append([]string{"-print-config"}, args...), &errs, nil); code != exitOK {
		t.Fatalf("-print-config %q: exit %d: %s", args, code, errs.String())
	}
	return out.String()
}

// line returns the -print-config line of key.
func line(t *testing.T, printed, key string) string {
	t.Helper()
	for _, l := range strings.Split(printed, "\n") {
		if strings.HasPrefix(l, key+" = ") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	t.Fatalf("-print-config has no %s:\n%s", key, printed)
	return ""
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: an operator's setting is taken from the most
// specific place it is given: a command-line flag over a HARAQA_BROKER_*
// variable, a variable over the -config file, the file over the default;
// and -print-config says which place each value came from.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "haraqa.toml", `
fsync = "interval"        # file only
max-conns = 50            # file, overridden by the variable
max-in-flight = 7         # file, variable, overridden by the flag
idle-timeout = "1m"
auto-create = false
volumes = ["`+dir+`/a", "`+dir+`/b"]
min-volumes = 2
`)
	t.Setenv("HARAQA_BROKER_MAX_CONNS", "60")
	t.Setenv("HARAQA_BROKER_MAX_IN_FLIGHT", "8")
	t.Setenv("HARAQA_BROKER_SEGMENT_BYTES", "4096") // variable only
	out := printConfigOf(t, "-config", file, "-max-in-flight", "9")
	for key, want := range map[string]string{
		"fsync":         `fsync = "interval" # -config ` + file,
		"max-conns":     `max-conns = 60 # HARAQA_BROKER_MAX_CONNS`,
		"max-in-flight": `max-in-flight = 9 # -max-in-flight`,
		"segment-bytes": `segment-bytes = 4096 # HARAQA_BROKER_SEGMENT_BYTES`,
		"idle-timeout":  `idle-timeout = "1m0s" # -config ` + file,
		"auto-create":   `auto-create = false # -config ` + file,
		"volumes":       `volumes = ["` + dir + `/a", "` + dir + `/b"] # -config ` + file,
		"max-wait":      `max-wait = "30s" # default`,
	} {
		if got := line(t, out, key); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}

	// The printed configuration is a config file that gives the same
	// configuration back.
	again := writeFile(t, "printed.toml", out)
	t.Setenv("HARAQA_BROKER_MAX_CONNS", "")
	t.Setenv("HARAQA_BROKER_MAX_IN_FLIGHT", "")
	t.Setenv("HARAQA_BROKER_SEGMENT_BYTES", "")
	out2 := printConfigOf(t, "-config", again)
	for _, key := range []string{"fsync", "max-conns", "max-in-flight", "segment-bytes", "idle-timeout", "auto-create", "volumes", "max-wait", "addr", "unix"} {
		a, b := line(t, out, key), line(t, out2, key)
		if a[:strings.Index(a, "#")] != b[:strings.Index(b, "#")] {
			t.Errorf("%s read back as %q, printed as %q", key, b, a)
		}
	}

	// YAML by its extension, with the same keys.
	yml := writeFile(t, "haraqa.yaml", "fsync: never\nmax-conns: 70\nvolumes:\n  - "+dir+"/y\n")
	out = printConfigOf(t, "-config", yml)
	if got := line(t, out, "fsync"); got != `fsync = "never" # -config `+yml {
		t.Errorf("yaml fsync: %q", got)
	}
	if got := line(t, out, "volumes"); got != `volumes = ["`+dir+`/y"] # -config `+yml {
		t.Errorf("yaml volumes: %q", got)
	}

	// The config file's path can come from a variable too.
	t.Setenv("HARAQA_BROKER_CONFIG", yml)
	if got := line(t, printConfigOf(t), "max-conns"); got != `max-conns = 70 # -config `+yml {
		t.Errorf("HARAQA_BROKER_CONFIG: max-conns %q", got)
	}
}

// TestConfigFileErrors: a config file the broker cannot use stops it at
// start (exit 2) with one line naming the file and the key: an unknown key
// is never ignored, a bad value names the key and value, and a value the
// broker's checks refuse says it came from the file.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"unknown.toml", "fsync = \"never\"\nfsync-intervall = \"1s\"\n", []string{`unknown key "fsync-intervall"`}},
		{"unknown.yaml", "tls:\n  cert: x\n", []string{`unknown key "tls.cert"`}},
		{"badvalue.toml", "max-conns = \"many\"\n", []string{"max-conns", "many"}},
		{"badchoice.toml", "fsync = \"sometimes\"\n", []string{"fsync", "sometimes", "always, interval or never"}},
		{"refused.toml", "max-conns = 0\n", []string{"max-conns = 0", "want 1 or more"}},
		{"syntax.toml", "fsync = [\n", []string{"syntax.toml"}},
		{"nested.toml", "config = \"other.toml\"\n", []string{`"config"`}},
		{"haraqa.ini", "fsync=never\n", []string{"want a .toml, .yaml or .yml file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, tc.name, tc.text)
			code, out := refuse(t, "-config", file, "-addr", "127.0.0.1:0", t.TempDir())
			if code != exitUsage {
				t.Errorf("exit %d, want %d: %q", code, exitUsage, out)
			}
			if n := strings.Count(out, "\n"); n != 1 {
				t.Errorf("%d lines, want one: %q", n, out)
			}
			for _, w := range append(tc.want, file) {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
		})
	}
	code, out := refuse(t, "-config", filepath.Join(t.TempDir(), "missing.toml"), "-addr", "127.0.0.1:0", t.TempDir())
	if code != exitUsage || !strings.Contains(out, "missing.toml") || !strings.Contains(out, "no such file") {
		t.Errorf("a missing config file: exit %d, %q", code, out)
	}
}
