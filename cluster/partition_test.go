//go:build linux

package cluster_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haraqa/haraqa/internal/testtool"
)

// netLab puts each node of a cluster in a network namespace of its own,
// joined by veth pairs to a bridge in the test's namespace (which talks
// to every node over it), and cuts and heals links with nftables rules
// inside a namespace.
type netLab struct {
	t      *testing.T
	tag    string // unique per run: names of namespaces, links, tables
	subnet string // "10.201.N"
	bridge string
	ns     []string
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func newNetLab(t *testing.T, nodes int) *netLab {
	t.Helper()
	testtool.Need(t, "ip", "iproute2")
	testtool.Need(t, "nft", "nftables")
	if os.Geteuid() != 0 {
		testtool.Missing(t, "network namespaces need root")
	}
	pid := os.Getpid() % 10000
	lab := &netLab{t: t, tag: fmt.Sprintf("h%d", pid), subnet: fmt.Sprintf("10.201.%d", pid%250), bridge: fmt.Sprintf("hb%d", pid)}
	t.Cleanup(lab.close)
	run(t, "ip", "link", "add", lab.bridge, "type", "bridge")
	run(t, "ip", "addr", "add", lab.subnet+".254/24", "dev", lab.bridge)
	run(t, "ip", "link", "set", lab.bridge, "up")
	for i := 1; i <= nodes; i++ {
		ns := fmt.Sprintf("%sn%d", lab.tag, i)
		host, peer := fmt.Sprintf("%sv%d", lab.tag, i), fmt.Sprintf("%sp%d", lab.tag, i)
		run(t, "ip", "netns", "add", ns)
		lab.ns = append(lab.ns, ns)
		run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		run(t, "ip", "link", "set", peer, "netns", ns)
		run(t, "ip", "link", "set", host, "master", lab.bridge)
		run(t, "ip", "link", "set", host, "up")
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", lab.subnet, i), "dev", peer)
		run(t, "ip", "-n", ns, "link", "set", peer, "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	return lab
}

func (lab *netLab) close() {
	for _, ns := range lab.ns {
		exec.Command("ip", "netns", "del", ns).Run() // takes its veth pair with it
	}
	exec.Command("ip", "link", "del", lab.bridge).Run()
}

func (lab *netLab) ip(i int) string { return fmt.Sprintf("%s.%d", lab.subnet, i) }

// isolate drops every packet between node i and the other nodes (the
// test's own address still reaches it).
func (lab *netLab) isolate(i int, others []int) {
	lab.t.Helper()
	var addrs []string
	for _, o := range others {
		addrs = append(addrs, lab.ip(o))
	}
	set := strings.Join(addrs, ", ")
	rules := fmt.Sprintf(`table inet hrqpart {
	chain in { type filter hook input priority 0; ip saddr { %s } drop; }
	chain out { type filter hook output priority 0; ip daddr { %s } drop; }
}
`, set, set)
	cmd := exec.Command("ip", "netns", "exec", lab.ns[i-1], "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		lab.t.Fatalf("nft in node %d: %v\n%s", i, err, out)
	}
}

func (lab *netLab) heal(i int) {
	lab.t.Helper()
	run(lab.t, "ip", "netns", "exec", lab.ns[i-1], "nft", "delete", "table", "inet", "hrqpart")
}

// startNetCluster starts the brokers, node i in namespace i.
func startNetCluster(t *testing.T, lab *netLab, size int) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: brokerBin(t)}
	var ps []string
	for i := 1; i <= size; i++ {
		p := &proc{id: uint64(i), dir: t.TempDir(), addr: lab.ip(i) + ":4353", caddr: lab.ip(i) + ":4355"}
		c.nodes = append(c.nodes, p)
		ps = append(ps, fmt.Sprintf("%d=%s", i, p.caddr))
	}
	c.peers = strings.Join(ps, ",")
	for i, p := range c.nodes {
		args := []string{"netns", "exec", lab.ns[i], c.bin, "-addr", p.addr, "-http", "", "-node-id", fmt.Sprint(p.id), "-peers", c.peers,
			"-raft-tick", "50ms", "-segment-bytes", "1048576", filepath.Join(p.dir, "data")}
		p.cmd = exec.Command("ip", args...)
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stderr, err := p.cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.exited = make(chan struct{})
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			sc.Buffer(nil, 1<<20)
			var once sync.Once
			for sc.Scan() {
				p.mu.Lock()
				p.logs.WriteString(sc.Text() + "\n")
				p.mu.Unlock()
				if strings.Contains(sc.Text(), "msg=listening") {
					once.Do(func() { close(ready) })
				}
			}
			p.cmd.Wait()
			close(p.exited)
		}()
		select {
		case <-ready:
		case <-p.exited:
			t.Fatalf("node %d exited:\n%s", p.id, p.logs.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("node %d did not start", p.id)
		}
	}
	t.Cleanup(func() {
		for _, p := range c.nodes {
			c.kill(p)
		}
		if t.Failed() {
			for _, p := range c.nodes {
				p.mu.Lock()
				t.Logf("node %d log tail:\n%s", p.id, tailLines(p.logs.String(), 30))
				p.mu.Unlock()
			}
		}
	})
	return c
}

// Network partitions between broker processes in network namespaces,
// under produce load: the leader isolated, then a follower (a split of 1
// and 2), healed, repeatedly. The minority never acknowledges a produce
// while cut off, the majority goes on acknowledging, and after healing no
// replica diverges: every acknowledged message is at its offset on every
// replica, whose logs are byte for byte the same.
func TestClusterPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes in network namespaces")
	}
	lab := newNetLab(t, 3)
	c := startNetCluster(t, lab, 3)
	c.createTopic("t")
	l := c.startLoad("t", 6) // two producers per node
	l.track = true
	const cycles = 6
	for cycle := range cycles {
		var lead uint64
		for wait := time.Now().Add(20 * time.Second); lead == 0; time.Sleep(50 * time.Millisecond) {
			if lead, _ = c.leaderOf("t"); lead == 0 && time.Now().After(wait) {
				t.Fatalf("cycle %d: no leader", cycle)
			}
		}
		cut := int(lead) // even cycles: the leader alone; odd: a follower alone
		if cycle%2 == 1 {
			cut = int(lead)%3 + 1
		}
		var others []int
		for i := 1; i <= 3; i++ {
			if i != cut {
				others = append(others, i)
			}
		}
		lab.isolate(cut, others)
		from := time.Now()
		before := l.count()
		// The majority elects (if needed) and acknowledges.
		for wait := time.Now().Add(20 * time.Second); l.count() < before+20; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(wait) {
				t.Fatalf("cycle %d: the majority acknowledged nothing with node %d cut off", cycle, cut)
			}
		}
		time.Sleep(time.Second)
		lab.heal(cut)
		to := time.Now()
		// Acknowledgements by the cut-off node while it was cut off (after
		// a grace period for answers to batches committed before the cut).
		if bad := l.ackedVia(uint64(cut), from.Add(300*time.Millisecond), to); bad > 0 {
			t.Fatalf("cycle %d: node %d acknowledged %d produces while cut off from the majority", cycle, cut, bad)
		}
		t.Logf("cycle %d: node %d (leader %d) cut off for %v; the majority acknowledged %d meanwhile", cycle, cut, lead, to.Sub(from).Round(time.Millisecond), l.count()-before)
		time.Sleep(500 * time.Millisecond)
	}
	l.finish()
	logs := c.converge("t", 1)
	c.check(l, logs)
	t.Logf("%d messages acknowledged, %d produce errors; %d bytes per replica, identical", len(l.acked), l.errs, len(logs[0]))
}
