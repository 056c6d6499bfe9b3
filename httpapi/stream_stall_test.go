package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/engine"
)

// Promise: a follower that stops reading cannot hold a stream forever: a
// stream whose client takes no data for WriteTimeout ends, and its place
// under MaxStreams is free again (else clients that open streams and
// never read would lock every other follower out with 429).
func TestStreamStalledClientDropped(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, MaxStreams: 1, WriteTimeout: 300 * time.Millisecond}, engine.Options{})
	f.produce(t, "s", "text/plain", []byte("first\n"), 200)
	nc, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("GET /topics/s/stream?offset=0 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Never read nc; give the stream more than the sockets buffer.
	line := bytes.Repeat([]byte("x"), 1000)
	body := bytes.Repeat(append(line, '\n'), 1000)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if i < 64 {
			f.produce(t, "s", "text/plain", body, 200)
		}
		req, _ := http.NewRequest("GET", f.srv.URL+"/topics/s/stream?offset=0", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("a second stream: %d while the first's client read nothing (after %d MB produced)", resp.StatusCode, min(i+1, 64))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A follower that reads is not dropped for a quiet spell longer than
	// WriteTimeout: what comes after it arrives whole.
	_, end, err := f.e.Offsets("s")
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	for { // the stream above frees its place once the server sees it closed
		resp, err = http.Get(f.srv.URL + "/topics/s/stream?offset=" + strconv.FormatUint(end, 10))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			break
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	time.Sleep(time.Second)
	f.produce(t, "s", "text/plain", bytes.Repeat(append(line, '\n'), 200), 200)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	got := 0
	for got < 200 && sc.Scan() {
		if len(sc.Bytes()) > 0 {
			got++
		}
	}
	if got != 200 {
		t.Fatalf("after a quiet second the stream gave %d of 200 messages: %v", got, sc.Err())
	}
}

// Promise: a consumer that stops reading its answer cannot hold the
// handler (and the read it pins) forever: after WriteTimeout without
// taking anything the answer is cut and the handler returns.
func TestConsumeStalledClientDropped(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, WriteTimeout: 300 * time.Millisecond, MaxConsumeBytes: 64 << 20}, engine.Options{})
	body := bytes.Repeat(append(bytes.Repeat([]byte("x"), 1000), '\n'), 1000)
	for range 48 {
		f.produce(t, "c", "text/plain", body, 200)
	}
	nc, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("GET /topics/c/messages?offset=0&limit=100000 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	route := "GET /topics/{topic}/messages"
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := uint64(0)
		for _, c := range f.api.Counts() {
			if c.Route == route {
				done += c.N
			}
		}
		if done == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the consume whose client reads nothing is still being answered after 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Promise: the same for a group fetch: a member that stops reading its
// answer is cut off after WriteTimeout (its leases lapse as usual).
func TestGroupFetchStalledClientDropped(t *testing.T) {
	f := newFixture(t, Options{AutoCreateTopics: true, WriteTimeout: 300 * time.Millisecond, MaxConsumeBytes: 64 << 20}, engine.Options{})
	body := bytes.Repeat(append(bytes.Repeat([]byte("x"), 1000), '\n'), 1000)
	for range 48 {
		f.produce(t, "g", "text/plain", body, 200)
	}
	if code, b, _ := f.do(t, "PUT", "/topics/g/groups/w", nil, strings.NewReader(`{}`)); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	code, b, _ := f.do(t, "POST", "/topics/g/groups/w/members", nil, strings.NewReader(`{}`))
	var m struct {
		Member string `json:"member"`
	}
	if code != 200 || json.Unmarshal(b, &m) != nil {
		t.Fatalf("join: %d %s", code, b)
	}
	nc, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("POST /topics/g/groups/w/fetch?member=" + m.Member + "&max=100000 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	route := "POST /topics/{topic}/groups/{group}/fetch"
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := uint64(0)
		for _, c := range f.api.Counts() {
			if c.Route == route {
				done += c.N
			}
		}
		if done == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the group fetch whose client reads nothing is still being answered after 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
