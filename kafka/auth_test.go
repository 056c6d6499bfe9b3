package kafka

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haraqa/haraqa/auth"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (rc *rawClient) sasl(password string) int16 {
	rc.t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	hs.SetVersion(1)
	if r := rc.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		rc.t.Fatalf("SaslHandshake: %+v", r)
	}
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.SASLAuthBytes = []byte("\x00user\x00" + password)
	a.SetVersion(2)
	return rc.do(a).(*kmsg.SASLAuthenticateResponse).ErrorCode
}

func metadataV13(rc *rawClient) *kmsg.MetadataResponse {
	m := kmsg.NewPtrMetadataRequest()
	m.SetVersion(13)
	return rc.do(m).(*kmsg.MetadataResponse)
}

// Promise: with a token, a client must give it as its SASL/PLAIN password
// before any request but ApiVersions; before that, and with a wrong one,
// requests are answered SASL_AUTHENTICATION_FAILED and nothing is
// produced; ApiVersions advertises the SASL APIs only then.
func TestSASLToken(t *testing.T) {
	b := startBroker(t, Options{Token: "s3cret", AutoCreateTopics: true})
	rc := dialRaw(t, b.addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	checkAdvertised(t, rc.do(av).(*kmsg.ApiVersionsResponse), b.s)
	if m := metadataV13(rc); m.ErrorCode != errSASLAuthenticationFailed {
		t.Fatalf("Metadata before SASL: code %d", m.ErrorCode)
	}
	if p := rc.produce("t", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"})); p.ErrorCode != errSASLAuthenticationFailed {
		t.Fatalf("Produce before SASL: code %d", p.ErrorCode)
	}
	if code := rc.sasl("wrong"); code != errSASLAuthenticationFailed {
		t.Fatalf("wrong token: code %d", code)
	}
	if m := metadataV13(rc); m.ErrorCode != errSASLAuthenticationFailed {
		t.Fatalf("Metadata after a wrong token: code %d", m.ErrorCode)
	}
	if code := rc.sasl("s3cret"); code != 0 {
		t.Fatalf("right token: code %d", code)
	}
	if p := rc.produce("t", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"})); p.ErrorCode != 0 {
		t.Fatalf("Produce after SASL: code %d", p.ErrorCode)
	}
	if _, end, _ := b.e.Offsets("t"); end != 1 {
		t.Fatalf("%d messages stored, want 1", end)
	}
	// Without a token the SASL APIs are not served.
	open := startBroker(t, Options{})
	rc2 := dialRaw(t, open.addr)
	checkAdvertised(t, rc2.do(av).(*kmsg.ApiVersionsResponse), open.s)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	hs.SetVersion(1)
	if r := rc2.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != errUnsupportedVersion {
		t.Fatalf("SaslHandshake without a token: %+v", r)
	}
}

// Promise: with an auth file each client (by its SASL/PLAIN token) may do
// only what the file allows on each topic: a refused produce, fetch,
// offset lookup, commit or admin request gets TOPIC_AUTHORIZATION_FAILED
// and changes nothing, and Metadata lists only the topics it may use.
func TestPermissions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.toml")
	conf := "[[client]]\nname = \"writer\"\ntoken-sha256 = \"" + auth.HashToken("wt") + "\"\nproduce = [\"logs.*\"]\n" +
		"[[client]]\nname = \"reader\"\ntoken-sha256 = \"" + auth.HashToken("rt") + "\"\nconsume = [\"logs.*\"]\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Options{Auth: a, AutoCreateTopics: true})
	for _, n := range []string{"logs.a", "secret"} {
		if err := b.e.CreateTopic(n); err != nil {
			t.Fatal(err)
		}
	}
	w, r := dialRaw(t, b.addr), dialRaw(t, b.addr)
	if w.sasl("wt") != 0 || r.sasl("rt") != 0 {
		t.Fatal("SASL refused a listed token")
	}
	batch := kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"})
	if p := w.produce("logs.a", batch); p.ErrorCode != 0 {
		t.Fatalf("writer produce to logs.a: %d", p.ErrorCode)
	}
	for _, c := range []struct {
		name string
		rc   *rawClient
		fn   func(*rawClient) int16
	}{
		{"writer produce to secret", w, func(rc *rawClient) int16 { return rc.produce("secret", batch).ErrorCode }},
		{"reader produce to logs.a", r, func(rc *rawClient) int16 { return rc.produce("logs.a", batch).ErrorCode }},
		{"writer fetch logs.a", w, func(rc *rawClient) int16 { p, _ := rc.fetchAll("logs.a", 0); return p.ErrorCode }},
		{"reader fetch secret", r, func(rc *rawClient) int16 { p, _ := rc.fetchAll("secret", 0); return p.ErrorCode }},
		{"reader delete logs.a", r, func(rc *rawClient) int16 {
			d := kmsg.NewPtrDeleteTopicsRequest()
			d.TopicNames = []string{"logs.a"}
			d.SetVersion(4)
			return rc.do(d).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
		}},
		{"reader commit on secret", r, func(rc *rawClient) int16 {
			oc := kmsg.NewPtrOffsetCommitRequest()
			oc.Group, oc.Generation = "g", -1
			ot := kmsg.NewOffsetCommitRequestTopic()
			ot.Topic = "secret"
			op := kmsg.NewOffsetCommitRequestTopicPartition()
			ot.Partitions = append(ot.Partitions, op)
			oc.Topics = append(oc.Topics, ot)
			oc.SetVersion(8)
			return rc.do(oc).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		}},
	} {
		if code := c.fn(c.rc); code != errTopicAuthorization {
			t.Errorf("%s: code %d, want TOPIC_AUTHORIZATION_FAILED", c.name, code)
		}
	}
	if p, f := r.fetchAll("logs.a", 0); p.ErrorCode != 0 || len(f) != 1 {
		t.Fatalf("reader fetch logs.a: %d, %d records", p.ErrorCode, len(f))
	}
	if m := metadataV13(r); len(m.Topics) != 1 || *m.Topics[0].Topic != "logs.a" {
		t.Fatalf("reader's metadata lists %+v", m.Topics)
	}
	if _, end, _ := b.e.Offsets("secret"); end != 0 {
		t.Fatalf("secret holds %d messages", end)
	}
	if _, _, err := b.e.Offsets("logs.a"); err != nil {
		t.Fatalf("logs.a deleted by the reader: %v", err)
	}
}

// Promise: the SaslHandshake v0 flow (a bare PLAIN frame after the
// handshake) logs a client in with the right token, answered by an empty
// frame, and closes the connection on a wrong one.
func TestSASLHandshakeV0(t *testing.T) {
	b := startBroker(t, Options{Token: "s3cret"})
	for _, c := range []struct {
		password string
		ok       bool
	}{{"s3cret", true}, {"nope", false}} {
		rc := dialRaw(t, b.addr)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "PLAIN"
		hs.SetVersion(0)
		if r := rc.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatalf("SaslHandshake v0: %+v", r)
		}
		msg := []byte("\x00user\x00" + c.password)
		rc.c.Write(append([]byte{0, 0, 0, byte(len(msg))}, msg...))
		var ack [4]byte
		_, err := io.ReadFull(rc.r, ack[:])
		if c.ok {
			if err != nil || ack != [4]byte{} {
				t.Fatalf("right token: %x %v", ack, err)
			}
			if m := metadataV13(rc); m.ErrorCode != 0 {
				t.Fatalf("Metadata after login: %d", m.ErrorCode)
			}
		} else if err == nil {
			t.Fatalf("wrong token: got %x, want the connection closed", ack)
		}
	}
}

// countHandler counts the log records whose message starts with prefix.
type countHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// Promise: a client hammering the listener with wrong passwords cannot
// flood the broker's log: refused logins are logged at most one line a
// second (the next line counts the ones left out), and every one is still
// refused.
func TestRefusedLoginsLogRateLimited(t *testing.T) {
	var lines atomic.Int64
	b := startBroker(t, Options{Token: "s3cret", Logger: slog.New(countHandler{"kafka: refused a client", &lines})})
	const tries = 200
	start := time.Now()
	for range tries {
		rc := dialRaw(t, b.addr)
		if code := rc.sasl("wrong"); code != errSASLAuthenticationFailed {
			t.Fatalf("wrong token: code %d", code)
		}
		rc.c.Close()
	}
	// One line per started second of the run at most.
	limit := int64(time.Since(start)/time.Second) + 1
	if n := lines.Load(); n < 1 || n > limit {
		t.Fatalf("%d refused logins logged %d lines in %v, want 1..%d", tries, n, time.Since(start), limit)
	}
}
