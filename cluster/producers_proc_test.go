//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
)

// idemLoad runs idempotent producers (client.Producer, which resends a
// batch that failed retriably under the same sequence) against the
// cluster's seed list, and records every acknowledged message's offset.
type idemLoad struct {
	mu     sync.Mutex
	acked  map[string]uint64
	clash  []string
	failed int
	sent   int
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (c *procCluster) startIdemLoad(topic string, producers int) *idemLoad {
	var addrs []string
	for _, p := range c.nodes {
		addrs = append(addrs, p.addr)
	}
	seeds := "tcp://" + strings.Join(addrs, ",")
	l := &idemLoad{acked: map[string]uint64{}, stop: make(chan struct{})}
	for w := range producers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cl, err := client.Dial(ctx, seeds, client.WithReconnect(20*time.Millisecond, 500*time.Millisecond))
			cancel()
			if err != nil {
				c.t.Errorf("producer %d: dial: %v", w, err)
				return
			}
			defer cl.Close()
			p := client.NewProducer(cl, topic, client.ProducerLinger(time.Millisecond), client.ProducerMaxMessages(8))
			var settled atomic.Int64 // this producer's messages acked or failed
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					if err := p.Close(ctx); err != nil {
						c.t.Logf("producer %d close: %v", w, err)
					}
					cancel()
					return
				default:
				}
				msg := fmt.Sprintf("i%d-%d", w, i)
				err := p.SendFunc(context.Background(), client.Message{Value: []byte(msg)}, func(_ context.Context, r client.Result) {
					settled.Add(1)
					l.mu.Lock()
					defer l.mu.Unlock()
					if r.Err != nil {
						l.failed++
						return
					}
					if prev, ok := l.acked[msg]; ok && prev != r.Offset {
						l.clash = append(l.clash, fmt.Sprintf("%q acked at %d and %d", msg, prev, r.Offset))
					}
					l.acked[msg] = r.Offset
				})
				if err != nil {
					c.t.Errorf("producer %d: send: %v", w, err)
					return
				}
				l.mu.Lock()
				l.sent++
				l.mu.Unlock()
				// Bounded: at most 2,048 messages outstanding, so that
				// what is left when the load stops is sent in moments.
				for int64(i+1)-settled.Load() > 2048 {
					select {
					case <-l.stop:
					case <-time.After(time.Millisecond):
						continue
					}
					break
				}
			}
		}()
	}
	return l
}

func (l *idemLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// idemKillLeader kills the topic's leader with SIGKILL cycles times (within
// budget) under idempotent produce load, restarting it each time, then
// checks: every acknowledged batch is stored exactly once, at the offset
// acknowledged, offsets are dense and the replicas byte-identical.
func idemKillLeader(t *testing.T, cycles int, budget time.Duration) {
	c := startProcCluster(t, 3)
	c.createTopic("t")
	l := c.startIdemLoad("t", 3)
	deadline := time.Now().Add(budget)
	done := 0
	for ; done < cycles && time.Now().Before(deadline); done++ {
		var lead uint64
		for wait := time.Now().Add(20 * time.Second); lead == 0; {
			if lead, _ = c.leaderOf("t"); lead == 0 {
				if time.Now().After(wait) {
					t.Fatalf("cycle %d: no leader", done)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		before := l.count()
		time.Sleep(time.Duration(150+rand.Intn(300)) * time.Millisecond)
		p := c.byID(lead)
		c.kill(p)
		for wait := time.Now().Add(30 * time.Second); l.count() <= before; {
			if time.Now().After(wait) {
				t.Fatalf("cycle %d: no acknowledgement after killing leader %d", done, lead)
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.start(p)
	}
	time.Sleep(300 * time.Millisecond)
	close(l.stop)
	l.wg.Wait()
	if done < min(cycles, 3) {
		t.Fatalf("only %d kill cycles ran", done)
	}
	if l.failed > 0 {
		t.Fatalf("%d messages failed: an idempotent producer resends until a batch is stored", l.failed)
	}
	if len(l.clash) > 0 {
		t.Fatalf("a message was acknowledged at two offsets: %v", l.clash[:min(5, len(l.clash))])
	}
	logs := c.converge("t", len(l.acked))
	for i, raw := range logs {
		if string(raw) != string(logs[0]) {
			t.Fatalf("node %d's log differs from node 1's", i+1)
		}
	}
	stored := map[string]uint64{}
	for off, m := range messages(t, logs[0]) { // rawRead checked the offsets are dense
		if prev, ok := stored[m]; ok {
			t.Fatalf("%q stored twice, at %d and %d", m, prev, off)
		}
		stored[m] = off
	}
	for m, off := range l.acked {
		if got, ok := stored[m]; !ok || got != off {
			t.Fatalf("%q acknowledged at %d, stored at %d (present %v)", m, off, got, ok)
		}
	}
	t.Logf("%d leader kills; %d messages sent, %d acknowledged, %d failed; %d stored, each once",
		done, l.sent, len(l.acked), l.failed, len(stored))
}

// An idempotent producer loses and duplicates nothing when the topic's
// leader is killed with SIGKILL under its load: every acknowledged message
// is stored exactly once, at its acknowledged offset, with dense offsets,
// and no message is stored twice.
func TestClusterIdempotentKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	idemKillLeader(t, 3, 60*time.Second)
}

// The same, 20 times (HARAQA_SLOW=1), within 2 minutes.
func TestSlowClusterIdempotentKillLeader(t *testing.T) {
	if os.Getenv("HARAQA_SLOW") == "" {
		t.Skip("HARAQA_SLOW=1 runs it")
	}
	idemKillLeader(t, 20, 2*time.Minute)
}
