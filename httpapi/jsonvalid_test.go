package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var validCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `true`, `false`, `null`, ` {"a":[1,2,{"b":null}],"c":"\u00e9\n"} `,
	`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `"\x"`, `"\u12"`, "\"a\x01\"", `{"a" 1}`, `{a:1}`, `tru`, `nul`,
	`[1 2]`, `{} {}`, ``, ` `, `"unterminated`, "\"\xff\xfe\"", `[[[[]]]]`, `{"a":{"b":{}}}`, `1 `, `"\/"`, `-01`, `1E+2`,
	// Strings long enough for the eight-bytes-at-a-time scan, with the
	// byte that ends or breaks them at each position of a word.
	`"aaaaaaaaaaaaaaaaaaaa"`, `"aaaaaaaaaaaaaaaaaaaa`, `"aaaaaaaa\"aaaaaaaaa"`, `"aaaaaaaaaaa\naaaaaaaaaa"`,
	"\"aaaaaaaaa\x1faaaaaaaaa\"", "\"aaaaaaaaaaaa\x7faaaaa\"", "\"aaaaaaaaaaaaa\xc3\xa9aaaaaaaa\"", "\"aaaaaaaaaaaaaaa\x00\"",
	`{"kkkkkkkkkkkkkkkk":"vvvvvvvvvvvvvvvvvvvvv","k2":"` + strings.Repeat("x", 80) + `"}`,
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

func init() {
	// Every position of a quote, backslash or control byte in a long string.
	for pos := 0; pos < 24; pos++ {
		for _, c := range []byte{'"', '\\', 0x01, 0x1f, 0x20, 0x7f, 0x80, 0xff} {
			s := []byte(`"` + strings.Repeat("a", 24) + `"`)
			s[1+pos] = c
			validCases = append(validCases, string(s))
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

// Promise: a consumed value reads back as the bytes stored: the JSON
// string encoder's output decodes to the input (valid UTF-8 exactly; invalid UTF-8, which the
// encoder's callers send as value_b64 instead, still decodes), for every byte at every position.
func TestAppendStringRoundTrip(t *testing.T) {
	var inputs []string
	for pos := 0; pos < 20; pos++ {
		for c := 0; c < 256; c++ {
			s := []byte(strings.Repeat("a", 20))
			s[pos] = byte(c)
			inputs = append(inputs, string(s))
		}
	}
	inputs = append(inputs, "\u2028x\u2029", "日本語"+strings.Repeat("b", 30), "")
	for _, in := range inputs {
		var out string
		if err := json.Unmarshal(appendString(nil, []byte(in)), &out); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if utf8.ValidString(in) && out != in {
			t.Fatalf("%q read back as %q", in, out)
		}
	}
}
