package netproto

// PlacementRequest asks a cluster node where topics live: every node's
// client address, and per topic its Raft leader and replicas (PROTOCOL.md
// "Placement"). No names asks for every topic. Decode aliases the names to
// the source.
//
//	u32 Count | Count × (u16 len + Name)
type PlacementRequest struct {
	Topics [][]byte
}

// AppendTo appends the body to dst.
func (m *PlacementRequest) AppendTo(dst []byte) []byte { return appendStrs(dst, m.Topics) }

// Decode decodes a body; the names alias src.
func (m *PlacementRequest) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "placement request"}
	m.Topics = d.strs(m.Topics)
	return d.done()
}

// PlacementNode is one node of the cluster: its id and the address its
// clients connect to (empty while the node has not told the cluster).
type PlacementNode struct {
	ID   uint64
	Addr []byte
}

// PlacementTopic is one topic's placement as the answering node knows it:
// the leader (0: unknown to the answering node, e.g. it is not a replica
// or an election is running), the leader's term (0 when unknown) and the
// replicas, in id order.
type PlacementTopic struct {
	Name     []byte
	Leader   uint64
	Term     uint64
	Replicas []uint64
}

// PlacementResponse answers a PlacementRequest. Topics the node does not
// know (or the client may not list) are left out.
//
//	u32 NodeCount | NodeCount × (u64 ID | u16 len + Addr) |
//	u32 TopicCount | TopicCount × (u16 len + Name | u64 Leader | u64 Term |
//	                              u32 ReplicaCount | ReplicaCount × u64)
type PlacementResponse struct {
	Nodes  []PlacementNode
	Topics []PlacementTopic
}

// AppendTo appends the body to dst.
func (m *PlacementResponse) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Nodes)))
	for _, n := range m.Nodes {
		dst = appendU64(dst, n.ID)
		dst = appendStr(dst, n.Addr)
	}
	dst = appendU32(dst, uint32(len(m.Topics)))
	for _, t := range m.Topics {
		dst = appendStr(dst, t.Name)
		dst = appendU64(dst, t.Leader)
		dst = appendU64(dst, t.Term)
		dst = appendU32(dst, uint32(len(t.Replicas)))
		for _, r := range t.Replicas {
			dst = appendU64(dst, r)
		}
	}
	return dst
}

// Decode decodes a body; names and addresses alias src. Counts are checked
// against the body before slices are sized by them.
func (m *PlacementResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "placement response"}
	m.Nodes = m.Nodes[:0]
	for range d.count(10) {
		id := d.u64()
		addr := d.str()
		if d.why != "" {
			break
		}
		m.Nodes = append(m.Nodes, PlacementNode{ID: id, Addr: addr})
	}
	m.Topics = m.Topics[:0]
	for range d.count(2 + 8 + 8 + 4) {
		var t PlacementTopic
		t.Name = d.str()
		t.Leader = d.u64()
		t.Term = d.u64()
		n := d.count(8)
		if d.why != "" {
			break
		}
		t.Replicas = make([]uint64, n)
		for i := range t.Replicas {
			t.Replicas[i] = d.u64()
		}
		m.Topics = append(m.Topics, t)
	}
	return d.done()
}
