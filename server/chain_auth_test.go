package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// Promise: a ConsumeNext passes the same permission check as a Consume,
// with the permissions in force when it is answered: after a reload that
// takes the topic away from the client, a ConsumeNext behind a consume
// that was allowed (answered, or still waiting then) is refused
// Unauthorized and reads nothing; one naming a consume of another topic
// is refused without reading either.
func TestConsumeNextChecksPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.toml")
	write := func(consume string) {
		text := "[[client]]\nname = \"c\"\ntoken-sha256 = \"" + auth.HashToken("tok") + "\"\nconsume = [" + consume + "]\nproduce = [\"*\"]\nadmin = [\"*\"]\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`"t"`)
	a, err := auth.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, engine.Options{})
	ts := startServer(t, e, "tcp", Options{Auth: a, AutoCreateTopics: true, MaxWait: time.Hour})
	prod := mustDial(t, ts, "tok")
	prod.mustProduce(t, "t", batchOf(t, "m0"))
	prod.mustProduce(t, "secret", batchOf(t, "s0"))
	p := mustDial(t, ts, "tok")
	topic := []byte("t")

	// Another topic's name on a consume of t: refused, the connection goes on.
	p.mustSend(t, netproto.OpConsume, 10, &netproto.ConsumeRequest{Topic: topic})
	recvConsume(t, p, netproto.OpConsume, 10, 10*time.Second)
	p.next = 10
	_, err = p.call(netproto.OpConsumeNext, &netproto.ConsumeNextRequest{Topic: []byte("secret"), After: 10})
	wantCode(t, err, netproto.CodeMalformed)

	// Allowed: a consume answered and a long poll waiting, each with a
	// ConsumeNext (MaxWait 0) behind it.
	p.mustSend(t, netproto.OpConsume, 20, &netproto.ConsumeRequest{Topic: topic})
	recvConsume(t, p, netproto.OpConsume, 20, 10*time.Second)
	p.mustSend(t, netproto.OpConsume, 21, &netproto.ConsumeRequest{Topic: topic, Offset: 1, MaxWaitMillis: 3_600_000})
	p.mustSend(t, netproto.OpConsumeNext, 22, &netproto.ConsumeNextRequest{Topic: topic, After: 21})
	if h, _, err := p.recv(100 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("answered before any data: %+v %v", h, err)
	}
	write("")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	p.mustSend(t, netproto.OpConsumeNext, 23, &netproto.ConsumeNextRequest{Topic: topic, After: 20})
	h, body, err := p.recv(10 * time.Second)
	if err != nil || h.RequestID != 23 || h.Status != netproto.CodeUnauthorized {
		t.Fatalf("consume-next after an answered consume, permission taken away: %+v %v %v", h, err, netproto.DecodeError(h.Status, body))
	}
	prod.mustProduce(t, "t", batchOf(t, "m1"))
	// The long poll was allowed when it began; the ConsumeNext behind it
	// is checked when answered.
	for range 2 {
		h, body, err := p.recv(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch h.RequestID {
		case 21:
		case 22:
			if h.Status != netproto.CodeUnauthorized {
				t.Fatalf("consume-next behind a waiting poll, permission taken away: %+v %v", h, netproto.DecodeError(h.Status, body))
			}
		default:
			t.Fatalf("unexpected answer %+v", h)
		}
	}
}
