package kafka

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group coordinator: Kafka's classic group membership protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), kept in memory. The
// members' assignment is computed by the group's leader (a client), as in
// Kafka; with one partition per topic a topic goes to one member. Offsets
// are not kept here: OffsetCommit stores them in haraqa consumer groups
// (groups.go), so they survive a restart, after which members join again.

// Group states, as DescribeGroups and ListGroups name them.
const (
	stateEmpty       = "Empty"
	statePreparing   = "PreparingRebalance"
	stateCompleting  = "CompletingRebalance"
	stateStable      = "Stable"
	minSessionTimout = 1 * time.Second
	maxSessionTimout = 30 * time.Minute
)

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id, clientID, host string
	instanceID         *string
	session, rebalance time.Duration
	protocols          []protocol
	assignment         []byte
	seen               time.Time
	joined             bool            // rejoined in the current rebalance
	joinWait           chan joinResult // set while its JoinGroup waits
	syncWait           chan syncResult // set while its SyncGroup waits
}

type joinResult struct {
	code       int16
	generation int32
	protocol   string
	leader     string
	members    []*member // for the leader only
}

type syncResult struct {
	code       int16
	assignment []byte
}

type group struct {
	name         string
	state        string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	deadline     time.Time // preparing: when the join phase ends anyway
}

// coordinator holds every Kafka group of the listener.
type coordinator struct {
	mu     sync.Mutex
	groups map[string]*group
	stop   chan struct{}
	once   sync.Once
}

func newCoordinator() *coordinator {
	c := &coordinator{groups: map[string]*group{}, stop: make(chan struct{})}
	go c.tick()
	return c
}

func (c *coordinator) close() { c.once.Do(func() { close(c.stop) }) }

// tick expires silent members and ends join phases that waited long
// enough, every 250 ms (one goroutine per listener).
func (c *coordinator) tick() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.mu.Lock()
			for _, g := range c.groups {
				c.expire(g, now)
				if len(g.members) == 0 {
					c.drop(g)
				}
			}
			c.mu.Unlock()
		}
	}
}

func (c *coordinator) expire(g *group, now time.Time) {
	for id, m := range g.members {
		// A member waiting in JoinGroup is alive; others must call within
		// their session timeout.
		if m.joinWait == nil && now.Sub(m.seen) > m.session {
			c.remove(g, id)
		}
	}
	if g.state == statePreparing && !now.Before(g.deadline) {
		c.completeJoin(g)
	}
}

func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	if len(clientID) > 64 {
		clientID = clientID[:64]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// remove drops a member and rebalances the rest.
func (c *coordinator) remove(g *group, id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	if m.joinWait != nil {
		m.joinWait <- joinResult{code: errUnknownMemberID}
		m.joinWait = nil
	}
	if m.syncWait != nil {
		m.syncWait <- syncResult{code: errUnknownMemberID}
		m.syncWait = nil
	}
	if len(g.members) == 0 {
		c.drop(g)
		return
	}
	c.rebalance(g)
	c.maybeCompleteJoin(g)
}

// drop forgets a group whose last member went: the coordinator keeps
// only groups with members (their commits live in haraqa groups), so
// what it holds is bounded by Options.MaxGroupMembers.
func (c *coordinator) drop(g *group) {
	g.state, g.leader, g.protocol = stateEmpty, "", ""
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
}

// memberCount is the number of members all groups hold. Called with
// c.mu held.
func (c *coordinator) memberCount() int {
	n := 0
	for _, g := range c.groups {
		n += len(g.members)
	}
	return n
}

// protocolBytes is what a member's protocols hold.
func protocolBytes(ps []protocol) int {
	n := 0
	for _, p := range ps {
		n += len(p.name) + len(p.metadata)
	}
	return n
}

// heldBytes is the protocol metadata and assignments all groups hold
// (Options.MaxGroupBytes). Called with c.mu held.
func (c *coordinator) heldBytes() int {
	n := 0
	for _, g := range c.groups {
		for _, m := range g.members {
			n += protocolBytes(m.protocols) + len(m.assignment)
		}
	}
	return n
}

// subscribed lists the topics the members of group name subscribe to
// (their consumer-protocol metadata; other protocols name none).
func (c *coordinator) subscribed(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil {
		return nil
	}
	var out []string
	for _, m := range g.members {
		for _, p := range m.protocols {
			md := kmsg.NewConsumerMemberMetadata()
			if md.ReadFrom(p.metadata) == nil {
				out = append(out, md.Topics...)
			}
		}
	}
	return out
}

// rebalance starts a join phase: every member must JoinGroup again.
func (c *coordinator) rebalance(g *group) {
	if g.state == statePreparing {
		return
	}
	for _, m := range g.members {
		m.joined = false
		if m.syncWait != nil {
			m.syncWait <- syncResult{code: errRebalanceInProgress}
			m.syncWait = nil
		}
	}
	g.state = statePreparing
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalance)
	}
	g.deadline = time.Now().Add(longest)
}

// maybeCompleteJoin ends the join phase once every member rejoined.
func (c *coordinator) maybeCompleteJoin(g *group) {
	for _, m := range g.members {
		if !m.joined {
			return
		}
	}
	c.completeJoin(g)
}

// completeJoin drops the members that did not rejoin, starts the next
// generation and answers the waiting JoinGroups.
func (c *coordinator) completeJoin(g *group) {
	for id, m := range g.members {
		if !m.joined {
			delete(g.members, id)
			if m.syncWait != nil {
				m.syncWait <- syncResult{code: errUnknownMemberID}
				m.syncWait = nil
			}
		}
	}
	if len(g.members) == 0 {
		c.drop(g)
		return
	}
	g.generation++
	g.protocol = chooseProtocol(g)
	if g.members[g.leader] == nil {
		for id := range g.members {
			g.leader = id
			break
		}
	}
	g.state = stateCompleting
	var all []*member
	for _, m := range g.members {
		m.assignment = nil
		all = append(all, m)
	}
	now := time.Now()
	for _, m := range g.members {
		m.seen = now
		if m.joinWait == nil {
			continue
		}
		r := joinResult{generation: g.generation, protocol: g.protocol, leader: g.leader}
		if m.id == g.leader {
			r.members = all
		}
		m.joinWait <- r
		m.joinWait = nil
	}
}

// chooseProtocol picks the first protocol of the leader's list that every
// member supports (JoinGroup refuses members without one in common).
func chooseProtocol(g *group) string {
	lead := g.members[g.leader]
	if lead == nil {
		for _, m := range g.members {
			lead = m
			break
		}
	}
	for _, p := range lead.protocols {
		ok := true
		for _, m := range g.members {
			if !supports(m, p.name) {
				ok = false
				break
			}
		}
		if ok {
			return p.name
		}
	}
	return ""
}

func supports(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

// compatible reports whether protocols share a name with every member.
func compatible(g *group, protocols []protocol) bool {
	for _, p := range protocols {
		ok := true
		for _, m := range g.members {
			if !supports(m, p.name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
