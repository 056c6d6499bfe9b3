package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/haraqa/haraqa/vfs"
)

// catalog is the metadata group's state machine: the replicated topics.
// It is saved (cluster/catalog.json, written atomically) after every
// applied metadata entry, with the index it reflects, so that a restart
// applies only the entries after it: creates and deletes are never
// replayed against the engine.
type catalog struct {
	Applied uint64       `json:"applied"`
	Created uint64       `json:"created"` // topics ever created: spreads preferred leaders
	Topics  []*TopicInfo `json:"topics"`
	// Nodes are the cluster's nodes as the metadata log told them (their
	// client addresses; member.go).
	Nodes []*NodeInfo `json:"nodes,omitempty"`
	// Initial are the nodes the cluster started with (the metadata
	// group's first voters), Members its nodes now (nil: Initial),
	// Replication the replicas of a new topic (membership.go).
	Initial     []uint64 `json:"initial,omitempty"`
	Members     []uint64 `json:"members,omitempty"`
	Replication int      `json:"replication,omitempty"`
}

func loadCatalog(dir string) (catalog, error) {
	var c catalog
	b, err := os.ReadFile(filepath.Join(dir, "catalog.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("cluster: %s: %w", filepath.Join(dir, "catalog.json"), err)
	}
	return c, nil
}

func (c *catalog) save(dir string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(vfs.OSFS{}, filepath.Join(dir, "catalog.json"), b)
}

func (c *catalog) find(name string) (*TopicInfo, bool) {
	for _, t := range c.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

func (c *catalog) remove(name string) {
	c.Topics = slices.DeleteFunc(c.Topics, func(t *TopicInfo) bool { return t.Name == name })
}
