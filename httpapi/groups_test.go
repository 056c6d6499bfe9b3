package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
)

// Promise: consumer groups over HTTP have the native protocol's
// semantics: a member's fetch leases messages (first delivery 1), an ack
// commits them, a nack redelivers them (delivery 2), a second member does
// not get what the first holds, acking what is not leased is refused and
// acks nothing, describe reports committed offset, lag and members, and
// leave, delete and list work.
func TestGroups(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true}, engine.Options{})
	f.produce(t, "g", "text/plain", []byte("m0\nm1\nm2\nm3\n"), 200)
	code, b, _ := f.do(t, "PUT", "/topics/g/groups/workers", nil, strings.NewReader(`{"ack_wait":"1m"}`))
	if code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	if code, b, _ = f.do(t, "PUT", "/topics/g/groups/workers", nil, strings.NewReader(`{"ack_wait":"1m"}`)); code != 200 {
		t.Fatalf("create again, same config: %d %s", code, b)
	}
	if code, _, _ = f.do(t, "PUT", "/topics/g/groups/workers", nil, strings.NewReader(`{"exclusive":true}`)); code != 409 {
		t.Fatalf("create again, other config: %d", code)
	}
	join := func(name string) (string, uint64) {
		code, b, _ := f.do(t, "POST", "/topics/g/groups/workers/members", nil, strings.NewReader(`{"name":"`+name+`"}`))
		var j struct {
			Member string
			Epoch  uint64
		}
		if json.Unmarshal(b, &j); code != 200 || j.Member == "" {
			t.Fatalf("join: %d %s", code, b)
		}
		return j.Member, j.Epoch
	}
	m1, _ := join("one")
	m2, _ := join("two")
	fetch := func(m string, max int) ([]map[string]any, string) {
		code, b, resp := f.do(t, "POST", fmt.Sprintf("/topics/g/groups/workers/fetch?member=%s&max=%d&wait=1s", m, max), nil, nil)
		if code != 200 {
			t.Fatalf("fetch: %d %s", code, b)
		}
		return ndjsonLines(t, b), resp.Header.Get("Group-Epoch")
	}
	got, epoch := fetch(m1, 2)
	if len(got) != 2 || got[0]["value"] != "m0" || got[1]["value"] != "m1" || got[0]["deliveries"].(float64) != 1 || epoch == "" {
		t.Fatalf("first fetch: %v epoch %q", got, epoch)
	}
	got2, _ := fetch(m2, 10)
	if len(got2) != 2 || got2[0]["value"] != "m2" {
		t.Fatalf("second member's fetch: %v", got2)
	}
	settle := func(op, m, body string, want int) {
		t.Helper()
		q := "?member=" + m
		if epoch != "" {
			q += "&epoch=" + epoch
		}
		code, b, _ := f.do(t, "POST", "/topics/g/groups/workers/"+op+q, map[string]string{"Content-Type": "application/json"}, strings.NewReader(body))
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", op, body, code, b, want)
		}
	}
	settle("ack", m1, `{"offsets":[2]}`, http.StatusConflict) // m2 holds it
	settle("ack", m1, `{"offsets":[0]}`, 204)
	settle("ack", m1, `{"offsets":[0]}`, 204) // acking twice is no error
	settle("nack", m1, `{"offsets":[1]}`, 204)
	settle("extend", m2, ``, 204)
	got, _ = fetch(m1, 10)
	if len(got) != 1 || got[0]["value"] != "m1" || got[0]["deliveries"].(float64) != 2 {
		t.Fatalf("redelivery after nack: %v", got)
	}
	settle("ack", m1, `{"up_to":2}`, 204)
	epoch = "" // the group's current epoch
	settle("ack", m2, `{"ranges":[{"first":2,"next":4}]}`, 204)
	code, b, _ = f.do(t, "GET", "/topics/g/groups/workers", nil, nil)
	var d groupJSON
	if json.Unmarshal(b, &d); code != 200 || d.Committed != 4 || d.Lag != 0 || len(d.Members) != 2 || d.AckWait != time.Minute.String() {
		t.Fatalf("describe: %d %s", code, b)
	}
	if code, b, _ = f.do(t, "GET", "/topics/g/groups", nil, nil); code != 200 || !strings.Contains(string(b), `"group":"workers"`) {
		t.Fatalf("list: %d %s", code, b)
	}
	if code, _, _ = f.do(t, "DELETE", "/topics/g/groups/workers/members/"+m2, nil, nil); code != 204 {
		t.Fatalf("leave: %d", code)
	}
	if code, b, _ = f.do(t, "POST", "/topics/g/groups/workers/fetch", nil, nil); code != 400 {
		t.Fatalf("fetch without member: %d %s", code, b)
	}
	if code, _, _ = f.do(t, "DELETE", "/topics/g/groups/workers", nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ = f.do(t, "GET", "/topics/g/groups/workers", nil, nil); code != 404 {
		t.Fatalf("describe deleted: %d", code)
	}
}

// Promise: permissions cannot be bypassed through a consumer group's
// dead-letter topic: creating a group that names one needs produce on it
// (as over the native protocol), since the broker writes into that topic
// on the group's behalf. A refused create is 403 and creates nothing.
func TestGroupDeadLetterNeedsProduce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.toml")
	os.WriteFile(file, []byte(`
[[client]]
name = "reader"
token-sha256 = "`+auth.HashToken("read")+`"
consume = ["logs.*"]

[[client]]
name = "worker"
token-sha256 = "`+auth.HashToken("work")+`"
consume = ["logs.*"]
produce = ["dead.*"]
`), 0o644)
	az, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{AutoCreateTopics: true, Auth: az}, engine.Options{})
	for _, topic := range []string{"logs.app", "secret", "dead.app"} {
		if err := f.e.CreateTopic(topic); err != nil {
			t.Fatal(err)
		}
	}
	as := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
	}
	for _, c := range []struct {
		token, group, dead string
		code               int
	}{
		{"read", "g1", "secret", 403},
		{"work", "g2", "secret", 403},
		{"work", "g3", "dead.app", 201},
		{"read", "g4", "", 201},
	} {
		body := `{"max_deliveries": 1, "dead_letter_topic": "` + c.dead + `"}`
		if c.dead == "" {
			body = `{}`
		}
		code, b, _ := f.do(t, "PUT", "/topics/logs.app/groups/"+c.group, as(c.token), strings.NewReader(body))
		if code != c.code {
			t.Errorf("create %s dead-lettering to %q as %q: %d %s, want %d", c.group, c.dead, c.token, code, b, c.code)
		}
	}
	for _, g := range []string{"g1", "g2"} {
		if code, b, _ := f.do(t, "GET", "/topics/logs.app/groups/"+g, as("read"), nil); code != 404 {
			t.Errorf("refused group %s exists: %d %s", g, code, b)
		}
	}
}
