package engine

import "fmt"

// MaxTopicLen is the longest topic name.
const MaxTopicLen = 249

// ValidTopic checks a topic name: 1..249 bytes of [A-Za-z0-9._-], not "."
// or "..". A valid name is always a single path element inside the volume.
func ValidTopic(name string) error {
	if len(name) == 0 || len(name) > MaxTopicLen {
		return fmt.Errorf("%w: length %d, want 1..%d", ErrBadTopicName, len(name), MaxTopicLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrBadTopicName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q has byte %#02x at %d; use [A-Za-z0-9._-]", ErrBadTopicName, name, c, i)
		}
	}
	return nil
}
