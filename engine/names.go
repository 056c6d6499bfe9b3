package engine

import (
	"fmt"

	"github.com/haraqa/haraqa/topicname"
)

// MaxTopicLen is the longest topic name (topicname.MaxLen).
const MaxTopicLen = topicname.MaxLen

// ValidTopic checks a topic name against topicname.Check: 1..249 bytes of
// [A-Za-z0-9._-], not "." or "..". A valid name is always a single path
// element inside the volume. The error wraps ErrBadTopicName.
func ValidTopic(name string) error {
	if err := topicname.Check(name); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTopicName, err)
	}
	return nil
}
