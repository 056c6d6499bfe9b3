// Command haraqa-dump prints the batches of segment log files, verifying
// each one with the same scanner the broker's recovery uses.
//
//	haraqa-dump data/topics/logs/00000000000000000000.log
//	haraqa-dump -messages data/topics/logs        # every segment of a topic
//
// It exits 1 when any file holds damage (a bad checksum, a torn tail, a
// broken offset chain) and says where. Zero bytes after an unsealed log's
// last batch (written ahead by a broker under fsync=always) are its end,
// not damage; after a sealed log's, they are damage.
//
// It takes a shared lock on the volume the files are in, so that no broker
// starts on the volume while it reads. If a broker runs on it, it says so
// on stderr and reads anyway: the files are only read, but the newest
// segment may be written meanwhile, so damage at its very end may be a
// write in progress rather than a torn tail.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
	"github.com/haraqa/haraqa/segment"
	"github.com/haraqa/haraqa/vfs"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("haraqa-dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	messages := fs.Bool("messages", false, "print every message (quoted)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: haraqa-dump [-messages] FILE.log|TOPICDIR ...")
		return 2
	}
	var files []string
	for _, a := range fs.Args() {
		st, err := os.Stat(a)
		if err != nil {
			fmt.Fprintln(stderr, "haraqa-dump:", err)
			return 2
		}
		if st.IsDir() {
			m, _ := filepath.Glob(filepath.Join(a, "*.log"))
			sort.Strings(m)
			files = append(files, m...)
		} else {
			files = append(files, a)
		}
	}
	for _, dir := range volumeRoots(fs.Args()) {
		release, err := engine.LockVolumeShared(dir)
		if err != nil {
			fmt.Fprintf(stderr, "haraqa-dump: warning: %v\nharaqa-dump: reading anyway; damage at the end of the newest segment may be a write in progress\n", err)
			continue
		}
		defer release()
	}
	bad := false
	for _, f := range files {
		if err := dump(f, *messages, stdout); err != nil {
			fmt.Fprintf(stdout, "DAMAGE %s: %v\n", f, err)
			bad = true
		}
	}
	if bad {
		return 1
	}
	return 0
}

// volumeRoots returns the volume directories (holding a VOLUME file) that
// the paths are in: a topic directory is two levels below its volume's
// root, a segment file three.
func volumeRoots(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		dir, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		for range 4 {
			if _, err := os.Stat(filepath.Join(dir, "VOLUME")); err == nil {
				if !seen[dir] {
					seen[dir] = true
					out = append(out, dir)
				}
				break
			}
			dir = filepath.Dir(dir)
		}
	}
	return out
}

func dump(path string, messages bool, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d bytes\n", path, len(data))
	sc := record.NewScanner(data)
	var next uint64
	first := true
	for sc.Next() {
		h := sc.Header()
		if !first && h.BaseOffset != next {
			return fmt.Errorf("batch at byte %d has offset %d, want %d", sc.Pos(), h.BaseOffset, next)
		}
		first, next = false, h.NextOffset()
		fmt.Fprintf(w, "  pos %d size %d offsets %d..%d count %d time %s codec %v producer %d seq %d\n",
			sc.Pos(), h.Size(), h.BaseOffset, h.LastOffset(), h.Count,
			time.Unix(0, h.AppendTime).UTC().Format(time.RFC3339Nano), h.Codec(), h.ProducerID, h.Sequence)
		if messages && h.Codec() == record.CodecNone {
			it := record.Messages(sc.Batch(), h)
			off := h.BaseOffset
			for m, ok := it.Next(); ok; m, ok = it.Next() {
				fmt.Fprintf(w, "    %d %q\n", off, m)
				off++
			}
			if it.Err() != nil {
				return it.Err()
			}
		}
	}
	if err := sc.Err(); err != nil && errors.Is(err, record.ErrIncomplete) && record.IsZero(data[sc.Pos():]) {
		// Zeros after the last batch: written ahead by a broker under
		// fsync=always (FORMAT.md "Log"), or sectors never written. The
		// broker reads them as the log's end, and so does this; but a
		// sealed log ends at its last batch (the zeros are cut before
		// the seal), and the broker refuses one of another length.
		if sealed(path) {
			return fmt.Errorf("%d zero bytes after the last batch of a sealed log (at byte %d)", len(data)-sc.Pos(), sc.Pos())
		}
		fmt.Fprintf(w, "  %d zero bytes after the log (the log's end)\n", len(data)-sc.Pos())
	} else if err != nil {
		kind := "corruption"
		if errors.Is(err, record.ErrIncomplete) && record.FindValid(data, sc.Pos()+1) < 0 {
			kind = "torn tail (nothing valid follows)"
		}
		return fmt.Errorf("%s at byte %d: %v", kind, sc.Pos(), err)
	}
	if strings.HasSuffix(path, ".log") {
		fmt.Fprintf(w, "  ok: next offset %d\n", next)
	}
	return nil
}

// sealed reports whether the log at path has a valid seal beside it.
func sealed(path string) bool {
	base, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".log"), 10, 64)
	if err != nil || filepath.Base(path) != segment.LogName(base) {
		return false
	}
	_, err = segment.ReadSeal(vfs.OSFS{}, filepath.Dir(path), base)
	return err == nil
}
