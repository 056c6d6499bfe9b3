package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `true`, `false`, `null`, ` {"a":[1,2,{"b":null}],"c":"\u00e9\n"} `,
	`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `"\x"`, `"\u12"`, "\"a\x01\"", `{"a" 1}`, `{a:1}`, `tru`, `nul`,
	`[1 2]`, `{} {}`, ``, ` `, `"unterminated`, "\"\xff\xfe\"", `[[[[]]]]`, `{"a":{"b":{}}}`, `1 `, `"\/"`, `-01`, `1E+2`,
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
}

// Promise: an NDJSON line is accepted exactly when encoding/json calls it
// valid JSON (the fast validator and the standard one agree).
func TestValidJSONAgrees(t *testing.T) {
	for _, c := range validCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	line := []byte(`{"i":123456,"p":"` + strings.Repeat("x", 80) + `"}`)
	b.SetBytes(int64(len(line)))
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			validJSON(line)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			json.Valid(line)
		}
	})
}
