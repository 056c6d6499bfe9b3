package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cespare/xxhash/v2"
	"github.com/haraqa/haraqa/vfs"
)

// The producer checkpoint: the idempotent-producer table of a topic, in a
// small file in each mirror's topic directory (FORMAT.md, "Producer
// checkpoint"), so that opening a topic does not read the newest batch
// headers of its log. It records the offset up to which it covers the log;
// "no producers up to offset N" is a file with no entries. The writer
// writes it (atomically: temporary file, sync, rename, sync directory)
// after a roll and when it goes idle, and Close after the writers stopped,
// each time only if the log moved since the last one. At open the newest
// valid file that does not claim more than the log holds is used, and only
// the batches after it are read; a missing, damaged or unusable one falls
// back to the scan of the log tail.

const (
	producersName  = "PRODUCERS"
	producersMagic = "HRQPRD01"
	prodHeaderSize = 8 + 8 + 8 + 4 // magic, end, tag, count
	prodEntrySize  = 16            // seq, count, base
)

// encode returns the checkpoint of the table covering the log below end,
// whose last batch has header hash tag (0 when the log holds no batch):
// producers least recently seen first, each with its remembered sequences
// oldest first.
func (ps *producers) encode(end, tag uint64) []byte {
	ids := make([]uint64, 0, len(ps.m))
	for id := range ps.m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ps.m[ids[i]].seen < ps.m[ids[j]].seen })
	b := make([]byte, 0, prodHeaderSize+len(ids)*(12+seqWindow*prodEntrySize)+8)
	b = append(b, producersMagic...)
	b = binary.LittleEndian.AppendUint64(b, end)
	b = binary.LittleEndian.AppendUint64(b, tag)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		st := ps.m[id]
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint32(b, uint32(st.n))
		for i := st.n - 1; i >= 0; i-- {
			e := st.ring[(st.head-i+seqWindow)%seqWindow]
			b = binary.LittleEndian.AppendUint32(b, e.seq)
			b = binary.LittleEndian.AppendUint32(b, e.count)
			b = binary.LittleEndian.AppendUint64(b, e.base)
		}
	}
	return binary.LittleEndian.AppendUint64(b, xxhash.Sum64(b))
}

var errProducerFile = errors.New("engine: bad producer checkpoint")

// decodeProducers checks a checkpoint and returns the offset it covers the
// log to and its tag; with into set, it fills into with its producers.
func decodeProducers(b []byte, into *producers) (end, tag uint64, err error) {
	if len(b) < prodHeaderSize+8 || string(b[:8]) != producersMagic {
		return 0, 0, fmt.Errorf("%w: no header", errProducerFile)
	}
	body := b[:len(b)-8]
	if xxhash.Sum64(body) != binary.LittleEndian.Uint64(b[len(b)-8:]) {
		return 0, 0, fmt.Errorf("%w: checksum mismatch", errProducerFile)
	}
	end, tag = binary.LittleEndian.Uint64(body[8:]), binary.LittleEndian.Uint64(body[16:])
	n := binary.LittleEndian.Uint32(body[24:])
	if n > maxProducers {
		return 0, 0, fmt.Errorf("%w: %d producers, at most %d", errProducerFile, n, maxProducers)
	}
	p := body[prodHeaderSize:]
	var ps producers
	for range n {
		if len(p) < 12 {
			return 0, 0, fmt.Errorf("%w: cut short", errProducerFile)
		}
		id, k := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint32(p[8:])
		p = p[12:]
		if id == 0 || k == 0 || k > seqWindow || len(p) < int(k)*prodEntrySize || ps.get(id) != nil {
			return 0, 0, fmt.Errorf("%w: bad producer entry", errProducerFile)
		}
		for range k {
			e := seqEntry{seq: binary.LittleEndian.Uint32(p), count: binary.LittleEndian.Uint32(p[4:]), base: binary.LittleEndian.Uint64(p[8:])}
			if e.base >= end {
				return 0, 0, fmt.Errorf("%w: a batch at %d, past the end %d it covers", errProducerFile, e.base, end)
			}
			ps.remember(id, e)
			p = p[prodEntrySize:]
		}
	}
	if len(p) != 0 {
		return 0, 0, fmt.Errorf("%w: %d bytes after the last producer", errProducerFile, len(p))
	}
	if into != nil {
		*into = ps
	}
	return end, tag, nil
}

// fromCheckpoint fills the table from the newest checkpoint among the
// topic's mirrors that verifies and covers no more than the log holds,
// plus the batches after it. The checkpoint must match the log: the batch
// that ends where it ends has the header hash it recorded (so a file left
// from before a torn tail was cut and written over is never trusted). It
// reports false, leaving the table to be rebuilt by the caller, when there
// is no such checkpoint, it does not match, or more batches follow it
// than a scan reads.
func (ps *producers) fromCheckpoint(t *Topic) bool {
	end := t.end.Load()
	v := t.view.Load()
	var best []byte
	var at uint64
	for _, m := range v.mirrors {
		name := filepath.Join(m.dir, producersName)
		b, err := t.e.fs.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		var e uint64
		if err == nil {
			e, _, err = decodeProducers(b, nil)
		}
		switch {
		case err != nil:
			t.e.opts.Logger.Warn("engine: producer checkpoint unusable; reading the log instead", "file", name, "err", err)
		case e > end:
			// It covers batches the log no longer holds (a torn tail cut
			// at open): its sequences may name offsets that are gone.
			t.e.opts.Logger.Warn("engine: producer checkpoint ahead of the log; reading the log instead", "file", name, "covers", e, "end", end)
		case best == nil || e > at:
			best, at = b, e
		}
	}
	if best == nil {
		return false
	}
	var cp producers
	_, tag, err := decodeProducers(best, &cp)
	if err != nil {
		return false
	}
	found, before, whole := scanBatches(t, at)
	start := v.reader().segs[0].Base()
	switch {
	case !whole:
		return false
	case before == nil && at != start:
		// The batch before it is not in the log: below the start,
		// retention removed batches it does not cover.
		return false
	case before != nil && (before.LastOffset()+1 != at || before.HeaderHash != tag):
		t.e.opts.Logger.Warn("engine: producer checkpoint does not match the log; reading the log instead", "topic", t.name, "covers", at)
		return false
	}
	*ps = cp
	ps.apply(found)
	ps.saved = at
	return true
}

// lastTag returns the header hash of the batch that ends at end (0 when
// none can be read).
func lastTag(t *Topic, end uint64) uint64 {
	if _, before, _ := scanBatches(t, end); before != nil && before.LastOffset()+1 == end {
		return before.HeaderHash
	}
	return 0
}

// saveProducers writes the producer checkpoint to the topic directory of
// every mirror in ms if the log moved since the last one. A failure is
// logged: without the file the next open reads the log instead.
func (w *writer) saveProducers(ms []*mirror) {
	if w.next == w.prods.saved || len(ms) == 0 {
		return
	}
	b := w.prods.encode(w.next, lastTag(w.t, w.next))
	// Each write holds a temporary file and its directory open for a
	// moment: thousands of topics going idle at once must not spend the
	// descriptors that reads and writes need (pressure.go).
	w.t.e.press.metaSem <- struct{}{}
	defer func() { <-w.t.e.press.metaSem }()
	ok := true
	for _, m := range ms {
		if err := vfs.WriteFileAtomic(w.t.e.fs, filepath.Join(m.dir, producersName), b); err != nil {
			ok = false
			w.t.e.opts.Logger.Warn("engine: producer checkpoint not written", "topic", w.t.name, "volume", m.vol.dir, "err", err)
		}
	}
	if ok {
		w.prods.saved = w.next
	}
}

// copyProducers makes the producer checkpoint in dir the same as the one
// in from (a copy whose segments were just rebuilt from there), or removes
// it when from has none. It only logs failures: the next open reads the
// log instead.
func (t *Topic) copyProducers(from, dir string) {
	fs := t.e.fs
	dst := filepath.Join(dir, producersName)
	b, err := fs.ReadFile(filepath.Join(from, producersName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		err = fs.Remove(dst)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	case err == nil:
		if old, rerr := fs.ReadFile(dst); rerr == nil && bytes.Equal(old, b) {
			return
		}
		err = vfs.WriteFileAtomic(fs, dst, b)
	}
	if err != nil {
		t.e.opts.Logger.Warn("engine: producer checkpoint not copied", "topic", t.name, "to", dir, "err", err)
	}
}
