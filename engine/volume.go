package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/haraqa/haraqa/vfs"
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
	dir  string
	id   identity   // Volume empty while unknown (fenced since open); set under mu
	lock volumeLock // held from Open (or its adoption) to Close; nil if none

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

func (v *Volume) volumeID() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.id.Volume
}

// setID sets the volume id of a volume whose id was unknown. Only the
// open and the health check (under checkMu) write it.
func (v *Volume) setID(id string) {
	v.mu.Lock()
	v.id.Volume = id
	v.mu.Unlock()
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

// fenceHealthy is fence for a volume still in service only: a failure
// of work begun while it was healthy does not fence it again once it was
// fenced meanwhile, nor while it is being rebuilt (the rebuild redoes
// that work).
func (v *Volume) fenceHealthy(reason error) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state != VolumeHealthy {
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
func readIdentity(fs vfs.FS, dir string) (identity, bool, error) {
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

func writeIdentity(fs vfs.FS, dir string, id identity) error {
	b, _ := json.Marshal(id)
	return vfs.WriteFileAtomic(fs, filepath.Join(dir, volumeName), append(b, '\n'))
}

// Names in a volume root that leave it empty: a file system's lost+found,
// the lock file, the new-volume marker and temporary files.
const newVolumeName = "NEW-VOLUME"

func ignorable(name string) bool {
	return name == "lost+found" || name == lockName || name == newVolumeName || strings.HasSuffix(name, ".tmp")
}

// dirKind is what a volume directory holds.
type dirKind int

const (
	dirMissing dirKind = iota // no such directory
	dirEmpty                  // nothing but ignorable names
	dirForeign                // files, but no identity
	dirVolume                 // a readable identity
	dirBad                    // unreadable directory or identity
)

// dirProbe is one look at a volume directory.
type dirProbe struct {
	kind   dirKind
	id     identity // dirVolume
	marker bool     // NEW-VOLUME present
	err    error    // dirBad: why
}

func probeDir(fs vfs.FS, dir string) dirProbe {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dirProbe{kind: dirMissing}
	}
	if err != nil {
		return dirProbe{kind: dirBad, err: fmt.Errorf("%w: %s: %w", ErrVolume, dir, err)}
	}
	id, ok, err := readIdentity(fs, dir)
	if err != nil {
		return dirProbe{kind: dirBad, err: err}
	}
	if ok {
		return dirProbe{kind: dirVolume, id: id}
	}
	p := dirProbe{kind: dirEmpty}
	for _, n := range names {
		p.marker = p.marker || n == newVolumeName
		if !ignorable(n) {
			p.kind = dirForeign
		}
	}
	return p
}

// adopt gives a new volume its identity and removes the new-volume
// marker, if any.
func adopt(fs vfs.FS, v *Volume) error {
	if err := writeIdentity(fs, v.dir, v.id); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrVolume, v.dir, err)
	}
	if err := fs.Remove(v.path(newVolumeName)); err == nil {
		return fs.SyncDir(v.dir)
	}
	return nil
}

// openVolumes locks every volume directory and checks its identity (see
// DESIGN.md, "Volumes and their identity"). A volume that cannot be used
// is returned fenced, its reason in fence; the error refuses the whole
// open: a volume locked by another process, volumes of two brokers, one
// volume under two paths, or a new data set with a directory that is
// not empty. On error every lock taken is released.
func openVolumes(fs vfs.FS, dirs []string, init bool) (vols []*Volume, fence []error, err error) {
	all := make([]*Volume, len(dirs))
	vols = all
	fence = make([]error, len(dirs))
	defer func() {
		if err != nil {
			for _, v := range all {
				if v != nil && v.lock != nil {
					v.lock.discard()
				}
			}
		}
	}()
	probes := make([]dirProbe, len(dirs))
	initialised := false
	broker := ""
	for i, dir := range dirs {
		vols[i] = &Volume{dir: dir}
		if _, err := fs.List(dir); err == nil {
			// Lock first: two brokers starting at once must not both
			// take a new data set.
			if vols[i].lock, err = lockVolume(fs, dir); errors.Is(err, ErrLocked) {
				return nil, nil, err
			} else if err != nil {
				probes[i] = dirProbe{kind: dirBad, err: fmt.Errorf("%w: %s: lock: %w", ErrVolume, dir, err)}
				initialised = true
				continue
			}
		}
		p := probeDir(fs, dir)
		probes[i] = p
		switch p.kind {
		case dirBad:
			initialised = true
		case dirVolume:
			initialised = true
			if broker != "" && p.id.Broker != broker {
				return nil, nil, fmt.Errorf("%w: %s belongs to broker %s, the other volumes to broker %s", ErrVolume, dir, p.id.Broker, broker)
			}
			broker = p.id.Broker
			for _, other := range vols[:i] {
				if other.id.Volume == p.id.Volume {
					return nil, nil, fmt.Errorf("%w: %s and %s are the same volume (id %s)", ErrVolume, other.dir, dir, p.id.Volume)
				}
			}
			vols[i].id = p.id
		}
	}
	if broker == "" {
		broker = newID()
	}
	// Decide for every directory before writing any identity: a refused
	// open must not leave a new volume claimed by a broker id made up here.
	var adopted []*Volume
	for i, v := range vols {
		p := probes[i]
		switch {
		case p.kind == dirVolume:
			continue
		case p.kind == dirBad:
			fence[i] = p.err
		case p.kind == dirForeign && !initialised:
			return nil, nil, fmt.Errorf("%w: %s is not empty and has no %s file: not a haraqa volume (or not this broker's)", ErrVolume, v.dir, volumeName)
		case p.kind == dirForeign:
			fence[i] = fmt.Errorf("%w: %s has files but no %s file: not a haraqa volume; left untouched", ErrVolume, v.dir, volumeName)
		case p.kind == dirMissing && initialised && !init:
			fence[i] = fmt.Errorf("%w: %s is missing (an unmounted disk?); a volume is created only for a new data set, or with InitVolumes (broker -init)", ErrVolume, v.dir)
		case p.kind == dirEmpty && initialised && !init && !p.marker:
			fence[i] = fmt.Errorf("%w: %s is empty (an unmounted disk?); to add it as a new volume, create %s in it or start with InitVolumes (broker -init)", ErrVolume, v.dir, newVolumeName)
		default:
			adopted = append(adopted, v)
		}
		v.id = identity{Format: identityFormat, Broker: broker} // volume id unknown yet
	}
	for _, v := range adopted {
		i := slices.Index(vols, v)
		if v.lock == nil { // it was missing
			if err := mkdirAllDurable(fs, v.dir); err != nil {
				fence[i] = fmt.Errorf("%w: %s: %w", ErrVolume, v.dir, err)
			} else if v.lock, err = lockVolume(fs, v.dir); errors.Is(err, ErrLocked) {
				return nil, nil, err
			} else if err != nil {
				fence[i] = fmt.Errorf("%w: %s: lock: %w", ErrVolume, v.dir, err)
			}
		}
		if fence[i] == nil {
			v.id.Volume = newID()
			fence[i] = adopt(fs, v)
		}
		if fence[i] != nil {
			v.id.Volume = ""
		}
	}
	return vols, fence, nil
}

// releaseLocks lets go of the volumes' locks.
func releaseLocks(vols []*Volume) error {
	var errs []error
	for _, v := range vols {
		if v != nil && v.lock != nil {
			errs = append(errs, v.lock.release())
			v.lock = nil
		}
	}
	return errors.Join(errs...)
}
