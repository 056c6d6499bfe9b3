package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/httpapi"
)

// The HTTP API's group paths in a cluster: the topic's leader serves them
// (create, join, fetch, ack; the ack replicated to every replica), and
// another replica answers a retriable 503 that names the leader.
func TestGroupsOverHTTP(t *testing.T) {
	c := newTestCluster(t, 3)
	if err := c.nodes[1].n.CreateTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 5 {
		if _, err := produce(ctx, c.nodes[1].n, "t", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	lead := c.coordinatorOf("t")
	var follower *testNode
	for _, tn := range c.nodes {
		if tn != lead {
			follower = tn
		}
	}
	// The follower names the leader once it has heard from it (an append
	// or heartbeat of its term): wait for that, not for the test's speed.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		follower.n.tmu.RLock()
		known := follower.n.leads["t"]
		follower.n.tmu.RUnlock()
		if known == lead.id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d never learned that node %d leads t (it names %d)", follower.id, lead.id, known)
		}
	}
	serve := func(tn *testNode) *httptest.Server {
		mux := http.NewServeMux()
		httpapi.Register(mux, tn.n, httpapi.Options{})
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		return s
	}
	ls, fs := serve(lead), serve(follower)
	call := func(s *httptest.Server, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call(fs, "PUT", "/topics/t/groups/g", `{}`); code != http.StatusServiceUnavailable || !strings.Contains(body, fmt.Sprintf(`"leader":%d`, lead.id)) {
		t.Fatalf("create on a follower: %d %s; want 503 naming node %d as the leader", code, body, lead.id)
	}
	if code, body := call(ls, "PUT", "/topics/t/groups/g", `{}`); code != http.StatusCreated {
		t.Fatalf("create on the leader: %d %s", code, body)
	}
	code, body := call(ls, "POST", "/topics/t/groups/g/members", "")
	if code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("join: %d %s", code, body)
	}
	member := strings.Split(strings.Split(body, `"member":"`)[1], `"`)[0]
	if code, body := call(ls, "POST", "/topics/t/groups/g/fetch?member="+member+"&max=3", ""); code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	if code, body := call(ls, "POST", "/topics/t/groups/g/ack?member="+member, `{"offsets":[0,1,2]}`); code/100 != 2 {
		t.Fatalf("ack: %d %s", code, body)
	}
	c.waitCommitted("t", "g", 3)
	if code, body := call(fs, "GET", "/topics/t/groups/g", ""); code != http.StatusOK || !strings.Contains(body, `"committed":3`) {
		t.Fatalf("describe on a follower: %d %s; want committed 3", code, body)
	}
}
