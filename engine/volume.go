package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/haraqa/haraqa/segment"
)

// VolumeState is the health of one volume.
type VolumeState int

const (
	// VolumeHealthy takes writes and serves reads.
	VolumeHealthy VolumeState = iota
	// VolumeFenced failed a write, a sync or a health check: it takes no
	// writes and serves no reads until it is rebuilt.
	VolumeFenced
	// VolumeRepairing is being rebuilt from the healthy volumes.
	VolumeRepairing
)

func (s VolumeState) String() string {
	switch s {
	case VolumeHealthy:
		return "healthy"
	case VolumeFenced:
		return "fenced"
	case VolumeRepairing:
		return "repairing"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ErrVolume reports a volume that cannot be used: it belongs to another
// broker, is not a haraqa volume, or its identity file is unreadable.
var ErrVolume = errors.New("engine: bad volume")

// identity is the content of a volume's VOLUME file.
type identity struct {
	Format int    `json:"format"`
	Broker string `json:"broker"` // shared by every volume of one broker
	Volume string `json:"volume"` // this volume's own id
}

const identityFormat = 1

// Volume is one data directory holding a full mirror of every topic.
type Volume struct {
	dir string
	id  identity

	mu     sync.Mutex
	state  VolumeState // guarded by mu
	reason error       // guarded by mu: why it was fenced
}

// VolumeInfo describes a volume for Engine.Volumes.
type VolumeInfo struct {
	Dir    string
	ID     string
	State  VolumeState
	Reason string // why the volume was fenced, if it was
}

func (v *Volume) info() VolumeInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	vi := VolumeInfo{Dir: v.dir, ID: v.id.Volume, State: v.state}
	if v.reason != nil {
		vi.Reason = v.reason.Error()
	}
	return vi
}

func (v *Volume) healthy() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state == VolumeHealthy
}

func (v *Volume) fenced() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state == VolumeFenced
}

// fence takes the volume out of service; it reports whether this call
// changed its state.
func (v *Volume) fence(reason error) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state == VolumeFenced {
		return false
	}
	v.state, v.reason = VolumeFenced, reason
	return true
}

// transition moves the volume from state from to state to, and reports
// whether it was in state from.
func (v *Volume) transition(from, to VolumeState) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state != from {
		return false
	}
	v.state = to
	if to == VolumeHealthy {
		v.reason = nil
	}
	return true
}

func (v *Volume) setState(s VolumeState) {
	v.mu.Lock()
	v.state = s
	if s == VolumeHealthy {
		v.reason = nil
	}
	v.mu.Unlock()
}

func (v *Volume) path(elem ...string) string {
	return filepath.Join(append([]string{v.dir}, elem...)...)
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// readIdentity returns a volume's identity; ok is false when it has none.
func readIdentity(fs segment.FS, dir string) (identity, bool, error) {
	var id identity
	b, err := fs.ReadFile(filepath.Join(dir, volumeName))
	if errors.Is(err, os.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("%w: %s: %w", ErrVolume, dir, err)
	}
	if err := json.Unmarshal(b, &id); err != nil || id.Format != identityFormat || id.Broker == "" || id.Volume == "" {
		return id, false, fmt.Errorf("%w: %s: unreadable %s file", ErrVolume, dir, volumeName)
	}
	return id, true, nil
}

func writeIdentity(fs segment.FS, dir string, id identity) error {
	b, _ := json.Marshal(id)
	return segment.WriteFileAtomic(fs, filepath.Join(dir, volumeName), append(b, '\n'))
}

// openVolumes checks the identity of every volume directory. All volumes
// that have an identity must name the same broker. A directory without one
// is taken as a new volume only if it is empty (a fresh disk, or one whose
// contents were lost): it gets the broker's identity and is repopulated
// from the others. A non-empty directory without an identity is refused.
func openVolumes(fs segment.FS, dirs []string) ([]*Volume, error) {
	vols := make([]*Volume, len(dirs))
	broker := ""
	for i, dir := range dirs {
		if err := fs.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVolume, dir, err)
		}
		id, ok, err := readIdentity(fs, dir)
		if err != nil {
			return nil, err
		}
		vols[i] = &Volume{dir: dir, id: id}
		if !ok {
			continue
		}
		if broker != "" && id.Broker != broker {
			return nil, fmt.Errorf("%w: %s belongs to broker %s, the other volumes to broker %s", ErrVolume, dir, id.Broker, broker)
		}
		broker = id.Broker
		for _, other := range vols[:i] {
			if other.id.Volume == id.Volume {
				return nil, fmt.Errorf("%w: %s and %s are the same volume (id %s)", ErrVolume, other.dir, dir, id.Volume)
			}
		}
	}
	if broker == "" {
		broker = newID()
	}
	// Check every new volume before writing any identity: a refused open
	// must not leave a new volume claimed by a broker id made up here.
	for _, v := range vols {
		if v.id.Broker != "" {
			continue
		}
		names, err := fs.List(v.dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVolume, v.dir, err)
		}
		if len(names) > 0 {
			return nil, fmt.Errorf("%w: %s is not empty and has no %s file: not a haraqa volume (or not this broker's)", ErrVolume, v.dir, volumeName)
		}
	}
	for _, v := range vols {
		if v.id.Broker != "" {
			continue
		}
		v.id = identity{Format: identityFormat, Broker: broker, Volume: newID()}
		if err := writeIdentity(fs, v.dir, v.id); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVolume, v.dir, err)
		}
	}
	return vols, nil
}
