package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/record"
)

// Fetching a range of a topic's log from a peer's engine, on the cluster
// listener (FORMAT.md "Cluster transport", fetch): a replica that starts
// from a snapshot catches up so, and one whose segment is damaged re-fetches
// the damaged batches (repair.go). The stream carries one batch per frame
// and the receiver appends or checks each before it reads on: memory stays
// at one batch plus the socket buffers whatever the range.

const fetchMagic = 0x48524346 // "HRCF"

// Fetch answer statuses.
const (
	fetchOK       = 0
	fetchRefused  = 1 // then u16 length and a message
	fetchBelow    = 2 // from is below the peer's start: then u64 its start
	maxFetchTopic = 1 << 10
)

// belowStartError is a peer's answer that it no longer holds the range's
// front: its retention removed the offsets below start.
type belowStartError struct {
	peer, start uint64
}

func (e *belowStartError) Error() string {
	return fmt.Sprintf("node %d holds nothing below %d (its retention dropped it)", e.peer, e.start)
}

// serveFetch answers one fetch request on an inbound connection: the
// batches of [from, to) of topic, if this node's engine holds them all.
func (n *Node) serveFetch(c net.Conn, br *bufio.Reader) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return err
	}
	tl := int(binary.LittleEndian.Uint16(hdr[:]))
	if tl == 0 || tl > maxFetchTopic {
		return fmt.Errorf("fetch: bad topic length %d", tl)
	}
	req := make([]byte, tl+16)
	if _, err := io.ReadFull(br, req); err != nil {
		return err
	}
	topic := string(req[:tl])
	from, to := binary.LittleEndian.Uint64(req[tl:]), binary.LittleEndian.Uint64(req[tl+8:])
	bw := bufio.NewWriterSize(c, 256<<10)
	refuse := func(msg string) error {
		bw.WriteByte(fetchRefused)
		bw.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(msg))))
		bw.WriteString(msg)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return bw.Flush()
	}
	n.tmu.RLock()
	ti := n.topics[topic]
	n.tmu.RUnlock()
	if ti == nil || !slices.Contains(ti.Replicas, n.cfg.NodeID) {
		return refuse("not a replica of the topic")
	}
	start, end, err := n.e.Offsets(topic)
	if err != nil {
		return refuse(err.Error())
	}
	if from < start && to <= end && from <= to {
		bw.WriteByte(fetchBelow)
		bw.Write(binary.LittleEndian.AppendUint64(nil, start))
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return bw.Flush()
	}
	if from < start || to > end || from > to {
		return refuse(fmt.Sprintf("holds [%d, %d), asked [%d, %d)", start, end, from, to))
	}
	bw.WriteByte(fetchOK)
	var res engine.ReadResult
	defer res.Release()
	var lenb [4]byte
	for off := from; off < to; {
		if err := n.e.Read(topic, off, to-off, 1<<20, &res); err != nil {
			return err // the receiver sees the stream end early
		}
		if len(res.Chunks) == 0 {
			return fmt.Errorf("fetch %q: nothing at %d", topic, off)
		}
		for _, ch := range res.Chunks {
			sc := record.NewScanner(ch.Data())
			for sc.Next() && off < to {
				h := sc.Header()
				if h.NextOffset() <= off {
					continue
				}
				if h.BaseOffset != off {
					return fmt.Errorf("fetch %q: batch at %d, want %d", topic, h.BaseOffset, off)
				}
				b := sc.Batch()
				binary.LittleEndian.PutUint32(lenb[:], uint32(len(b)))
				c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				bw.Write(lenb[:])
				if _, err := bw.Write(b); err != nil {
					return err
				}
				off = h.NextOffset()
			}
			if err := sc.Err(); err != nil {
				return err
			}
		}
		res.Release()
	}
	binary.LittleEndian.PutUint32(lenb[:], 0)
	bw.Write(lenb[:])
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return bw.Flush()
}

// fetchRange streams the batches [from, to) of topic from peer and hands
// each to fn in offset order; fn's error ends the fetch.
func (n *Node) fetchRange(ctx context.Context, peer uint64, topic string, from, to uint64, fn func(b []byte, h *record.Header) error) error {
	addr, ok := n.tr.addrOf(peer)
	if !ok {
		return fmt.Errorf("no node %d", peer)
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	req := make([]byte, 0, 34+len(topic))
	req = binary.LittleEndian.AppendUint32(req, fetchMagic)
	req = binary.LittleEndian.AppendUint32(req, 1)
	req = binary.LittleEndian.AppendUint64(req, n.cfg.NodeID)
	req = binary.LittleEndian.AppendUint16(req, uint16(len(topic)))
	req = append(req, topic...)
	req = binary.LittleEndian.AppendUint64(req, from)
	req = binary.LittleEndian.AppendUint64(req, to)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 256<<10)
	st, err := br.ReadByte()
	if err != nil {
		return err
	}
	if st == fetchBelow {
		var sb [8]byte
		if _, err := io.ReadFull(br, sb[:]); err != nil {
			return err
		}
		return &belowStartError{peer: peer, start: binary.LittleEndian.Uint64(sb[:])}
	}
	if st != fetchOK {
		var l [2]byte
		io.ReadFull(br, l[:])
		msg := make([]byte, binary.LittleEndian.Uint16(l[:]))
		io.ReadFull(br, msg)
		return fmt.Errorf("node %d refused: %s", peer, msg)
	}
	var buf []byte
	var lenb [4]byte
	off := from
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(br, lenb[:]); err != nil {
			return fmt.Errorf("fetch from node %d at %d: %w", peer, off, err)
		}
		l := binary.LittleEndian.Uint32(lenb[:])
		if l == 0 {
			if off != to {
				return fmt.Errorf("fetch from node %d ended at %d, want %d", peer, off, to)
			}
			return nil
		}
		if l > maxMessage {
			return fmt.Errorf("fetch from node %d: batch of %d bytes", peer, l)
		}
		if buf, err = readBody(br, buf, int(l)); err != nil {
			return fmt.Errorf("fetch from node %d at %d: %w", peer, off, err)
		}
		h, err := record.Verify(buf)
		if err != nil {
			return fmt.Errorf("fetch from node %d at %d: bad batch: %w", peer, off, err)
		}
		if h.BaseOffset != off || h.NextOffset() > to {
			return fmt.Errorf("fetch from node %d: batch [%d, %d), want one at %d below %d", peer, h.BaseOffset, h.NextOffset(), off, to)
		}
		if err := fn(buf, &h); err != nil {
			return err
		}
		off = h.NextOffset()
	}
}

// fetchPeers is the order in which to ask the topic's other replicas: its
// leader as this node last saw it first.
func (n *Node) fetchPeers(g *group) []uint64 {
	n.tmu.RLock()
	lead := n.leads[g.topic]
	n.tmu.RUnlock()
	var out []uint64
	if lead != 0 && lead != n.cfg.NodeID {
		out = append(out, lead)
	}
	g.log.mu.Lock()
	voters := g.log.voters // replaced, never changed in place (membership.go)
	g.log.mu.Unlock()
	for _, id := range voters {
		if id != n.cfg.NodeID && id != lead {
			out = append(out, id)
		}
	}
	return out
}

// catchUp appends to the topic's engine, from its end up to offset to,
// the batches a peer holds, retrying over the replicas until it has them
// all (true) or the group stops (false). Every batch is stored with the
// append time and offset it has on the peer: the same bytes. When no
// replica holds the engine's end any more (their retention dropped it),
// the engine skips to the lowest start among them (engine.SkipTo: what it
// holds is dropped, as retention would have) and fetches on from there.
func (n *Node) catchUp(g *group, to uint64) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-g.astop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for attempt := 0; ; attempt++ {
		var below uint64 // lowest start among the peers that hold nothing at our end
		refused, tried := 0, 0
		for _, peer := range n.fetchPeers(g) {
			_, cur, err := n.e.Offsets(g.topic)
			if err != nil {
				n.log.Error("cluster: catch-up: topic's storage", "topic", g.topic, "err", err)
				break
			}
			if cur >= to {
				return true
			}
			tried++
			err = n.fetchRange(ctx, peer, g.topic, cur, to, func(b []byte, h *record.Header) error {
				p, err := n.e.EnqueueAt(ctx, g.topic, slices.Clone(b), h.AppendTime)
				if err != nil {
					return err
				}
				off, err := p.Wait()
				if err == nil && off != h.BaseOffset {
					err = fmt.Errorf("engine stored the batch at %d, the peer's is at %d", off, h.BaseOffset)
				}
				return err
			})
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return false
			}
			var bs *belowStartError
			if errors.As(err, &bs) {
				refused++
				if below == 0 || bs.start < below {
					below = bs.start
				}
				continue
			}
			if attempt%20 == 0 {
				n.log.Warn("cluster: catch-up from a peer failed; trying another", "topic", g.topic, "peer", peer, "err", err)
			}
		}
		_, cur, err := n.e.Offsets(g.topic)
		if err == nil && cur >= to {
			return true
		}
		// The replicas that answered dropped what this one lacks: skip to
		// the lowest start among them (one that did not answer might hold
		// more: it gets three rounds to answer first).
		if err == nil && refused > 0 && (refused == tried || attempt >= 3) && below > cur {
			n.log.Warn("cluster: catch-up: the other replicas' retention dropped offsets this replica lacks; dropping its log below their start",
				"topic", g.topic, "end", cur, "start", below)
			if _, serr := n.e.SkipTo(ctx, g.topic, below); serr != nil {
				if ctx.Err() != nil {
					return false
				}
				n.log.Error("cluster: catch-up: skipping to the peers' start failed", "topic", g.topic, "start", below, "err", serr)
			} else {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(500 * time.Millisecond):
		}
	}
}
