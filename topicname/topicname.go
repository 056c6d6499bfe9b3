// Package topicname holds the one rule for topic names, shared by the
// engine (which turns a name into a directory), the client (which checks a
// name before sending it) and the hrq tool (which explains a refusal).
//
// It is its own tiny package, below engine, netproto and client, because
// the engine does not import the wire protocol and the rule is not part of
// the record format either; every layer that needs the rule imports this
// package and nothing else.
package topicname

import "fmt"

// MaxLen is the longest topic name, in bytes.
const MaxLen = 249

// Rule says the rule in words, for error messages and help text.
const Rule = "1 to 249 characters of A-Z a-z 0-9 . _ -, not . or .."

// CheckLen checks only the length part of the rule: 1..MaxLen bytes. The
// client checks this much before sending a name and leaves the characters
// to the broker, whose answer is the same error code.
func CheckLen(name string) error {
	if len(name) == 0 || len(name) > MaxLen {
		return fmt.Errorf("length %d, want 1..%d", len(name), MaxLen)
	}
	return nil
}

// Check reports whether name is a valid topic name: 1..MaxLen bytes of
// [A-Za-z0-9._-], and neither "." nor "..". A valid name is always a single
// path element. The error describes the fault without a package prefix;
// callers wrap it with their own sentinel.
func Check(name string) error {
	if err := CheckLen(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%q has byte %#02x at %d; use [A-Za-z0-9._-]", name, c, i)
		}
	}
	return nil
}
