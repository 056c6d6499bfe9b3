package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/fftoml"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// The broker's settings come from four layers, highest first: the command
// line, HARAQA_BROKER_* environment variables, the -config file (TOML, or
// YAML by its .yaml/.yml extension), and the flags' defaults. The flag set
// built by newFlags is the one list of settings: a flag added there is also
// a variable, a config-file key of the same name, a line of -print-config
// and an attribute of the start line, with nothing else to write.
//
// github.com/peterbourgon/ff/v3 reads the variables and the file into the
// flag set; this file adds where each value came from (for error messages
// and -print-config) and the refusal of keys the broker does not have.

// source is where a setting's value came from.
type source struct {
	name string // "-fsync", "HARAQA_BROKER_FSYNC" or "haraqa.toml"
	env  bool
	file bool
}

// settingError is a bad value from a variable or the config file, with
// where it came from; run prints it as it is.
type settingError struct{ msg string }

func (e *settingError) Error() string { return e.msg }

// tracked wraps a flag's value while the variables and the config file are
// applied: it records the source of each value set and says in an error
// where a bad value came from.
type tracked struct {
	flag.Value
	name   string
	file   *string // the config file once ff reads it; "" while it reads the variables
	origin map[string]source
}

func (t *tracked) Set(v string) error {
	from := source{name: envName(t.name), env: true}
	if *t.file != "" {
		from = source{name: *t.file, file: true}
	}
	if err := t.Value.Set(v); err != nil {
		if from.env {
			return &settingError{fmt.Sprintf("%s=%q: %v", from.name, v, err)}
		}
		return &settingError{fmt.Sprintf("-config %s: %s = %q: %v", from.name, t.name, v, err)}
	}
	t.origin[t.name] = from
	return nil
}

// IsBoolFlag keeps bool flags bool while wrapped.
func (t *tracked) IsBoolFlag() bool {
	b, ok := t.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// loadLayers applies the environment and the -config file to the flags
// the command line (parsed already, its flags in c.origin) left unset,
// recording each value's source in c.origin.
func loadLayers(c *config, fs *flag.FlagSet) error {
	var file string
	restore := map[*flag.Flag]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) {
		restore[f] = f.Value
		f.Value = &tracked{Value: f.Value, name: f.Name, file: &file, origin: c.origin}
	})
	defer func() {
		for f, v := range restore {
			f.Value = v
		}
	}()
	parser := func(r io.Reader, set func(name, value string) error) error {
		file = fs.Lookup("config").Value.String()
		check := func(name, value string) error {
			switch {
			case fs.Lookup(name) == nil:
				return &settingError{fmt.Sprintf("-config %s: unknown key %q: a key is a flag's name without the dash", file, name)}
			case name == "config":
				return &settingError{fmt.Sprintf("-config %s: the key \"config\" cannot name another file", file)}
			}
			return set(name, value)
		}
		switch strings.ToLower(filepath.Ext(file)) {
		case ".yaml", ".yml":
			return ffyaml.Parser(r, check)
		case ".toml":
			return fftoml.Parser(r, check)
		}
		return &settingError{fmt.Sprintf("-config %s: want a .toml, .yaml or .yml file", file)}
	}
	err := ff.Parse(fs, nil, ff.WithEnvVarPrefix(strings.TrimSuffix(envPrefix, "_")),
		ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(parser))
	if err == nil {
		return nil
	}
	if se := (*settingError)(nil); errors.As(err, &se) {
		return se
	}
	return fmt.Errorf("-config %s: %v", fs.Lookup("config").Value.String(), unwrapAll(err))
}

// unwrapAll drops ff's and the parsers' wrapping ("error parsing ...") for
// the innermost error, which names the problem.
func unwrapAll(err error) error {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err
		}
		err = inner
	}
}

// printConfig writes the effective settings as a TOML config file, each
// with its source, in a form -config reads back. The token is not shown.
func printConfig(w io.Writer, c *config, fs *flag.FlagSet, vols []string) {
	fmt.Fprintf(w, "# haraqa broker %s: effective configuration (flag > HARAQA_BROKER_* > -config file > default)\n", version)
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "config", "print-config", "version":
			return
		}
		from := "default"
		if o, ok := c.origin[f.Name]; ok {
			from = o.name
			if o.file {
				from = "-config " + o.name
			}
		}
		var line string
		switch {
		case f.Name == "volumes":
			q := make([]string, len(vols))
			for i, v := range vols {
				q[i] = strconv.Quote(v)
			}
			line = "volumes = [" + strings.Join(q, ", ") + "]"
		case secretFlags[f.Name]:
			state := "not set"
			if f.Value.String() != "" {
				state = "set, not shown"
			}
			line = "# " + f.Name + " = (" + state + ")"
		default:
			line = f.Name + " = " + tomlValue(f.Value)
		}
		lines = append(lines, [2]string{line, from})
	})
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%-*s  # %s\n", width, l[0], l[1])
	}
}

// secretFlags are the settings -print-config and the start line show only
// as set or not.
var secretFlags = map[string]bool{"token": true}

// tomlValue writes a flag's value as TOML: numbers and booleans bare,
// everything else (durations too) a quoted string.
func tomlValue(v flag.Value) string {
	if g, ok := v.(flag.Getter); ok {
		switch x := g.Get().(type) {
		case bool, int, int64, uint, uint64, float64:
			return fmt.Sprint(x)
		case time.Duration:
			return strconv.Quote(x.String())
		}
	}
	return strconv.Quote(v.String())
}
