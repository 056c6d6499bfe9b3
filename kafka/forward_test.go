package kafka

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/haraqa/haraqa/auth"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Promise: with per-client permissions, a group request a listener
// forwards to the coordinating listener runs there as the client that
// sent it, no more and no less: the coordinator applies that client's
// permissions from its own auth file (a client that may consume the
// topic commits, one that may not is refused, one the coordinator's file
// does not list or a request naming no client is refused), and the
// coordinator never forwards it again. Before, a listener with
// permissions forwarded nothing: its commits and members stayed on it,
// and a group's members on two nodes were two groups.
func TestForwardedGroupRequestsCarryThePrincipal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.toml")
	conf := "[[client]]\nname = \"app\"\ntoken-sha256 = \"" + auth.HashToken("app") + "\"\nconsume = [\"ka\"]\n" +
		"[[client]]\nname = \"other\"\ntoken-sha256 = \"" + auth.HashToken("other") + "\"\nconsume = [\"elsewhere\"]\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	var again atomic.Int64 // the coordinator forwarding a forwarded request
	coord := startBroker(t, Options{Auth: a, GroupForward: func() GroupForwardFunc {
		return func(ctx context.Context, principal string, frame []byte) ([]byte, error) {
			again.Add(1)
			return nil, context.Canceled
		}
	}})
	var mu sync.Mutex
	var keys []string
	front := startBroker(t, Options{Auth: a, GroupForward: func() GroupForwardFunc {
		return func(ctx context.Context, principal string, frame []byte) ([]byte, error) {
			mu.Lock()
			keys = append(keys, principal)
			mu.Unlock()
			return coord.s.ServeForwarded(ctx, principal, frame), nil
		}
	}})
	for _, b := range []*testBroker{coord, front} {
		if err := b.e.CreateTopic("ka"); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(rc *rawClient, group string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(2)
		req.Group, req.Generation = group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "ka"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return rc.do(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	joinReq := func() *kmsg.JoinGroupRequest {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(5)
		req.Group, req.ProtocolType = "kg", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 10_000
		md := kmsg.NewConsumerMemberMetadata()
		md.Topics = []string{"ka"}
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", md.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		return req
	}
	app, other := dialRaw(t, front.addr), dialRaw(t, front.addr)
	if app.sasl("app") != 0 || other.sasl("other") != 0 {
		t.Fatal("SASL refused a listed token")
	}
	if code := commit(app, "kg"); code != 0 {
		t.Errorf("app's forwarded OffsetCommit: code %d, want 0", code)
	}
	if _, err := coord.e.DescribeGroup("ka", "kg"); err != nil {
		t.Errorf("app's commit is not on the coordinator: %v", err)
	}
	if _, err := front.e.DescribeGroup("ka", "kg"); err == nil {
		t.Errorf("app's commit ran on the forwarding listener")
	}
	if code := other.do(joinReq()).(*kmsg.JoinGroupResponse).ErrorCode; code != errGroupAuthorization {
		t.Errorf("other's forwarded JoinGroup: code %d, want %d", code, errGroupAuthorization)
	}
	if code := commit(other, "ko"); code != errTopicAuthorization {
		t.Errorf("other's forwarded OffsetCommit: code %d, want %d", code, errTopicAuthorization)
	}
	mu.Lock()
	want := []string{"token:" + auth.HashToken("app"), "token:" + auth.HashToken("other"), "token:" + auth.HashToken("other")}
	if len(keys) != len(want) || keys[0] != want[0] || keys[1] != want[1] || keys[2] != want[2] {
		t.Errorf("forwarded with keys %q, want %q", keys, want)
	}
	mu.Unlock()

	// Straight to the coordinator: a key its file does not list, or none
	// (a node of the version before, or one without -auth-file), may do
	// nothing; a listed key what its client may.
	frame := func(req kmsg.Request) []byte {
		return kmsg.NewRequestFormatter().AppendRequest(nil, req, 7)[4:]
	}
	code := func(out []byte, req kmsg.Request) int16 {
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if len(out) < 8 || resp.ReadFrom(out[8:]) != nil {
			t.Fatalf("answer %x", out)
		}
		return resp.(*kmsg.JoinGroupResponse).ErrorCode
	}
	for _, key := range []string{"", "token:" + auth.HashToken("nobody"), "app"} {
		req := joinReq()
		if got := code(coord.s.ServeForwarded(context.Background(), key, frame(req)), req); got != errGroupAuthorization {
			t.Errorf("JoinGroup forwarded with key %q: code %d, want %d", key, got, errGroupAuthorization)
		}
	}
	req := joinReq()
	if got := code(coord.s.ServeForwarded(context.Background(), "token:"+auth.HashToken("app"), frame(req)), req); got == errGroupAuthorization {
		t.Errorf("JoinGroup forwarded with app's key refused")
	}
	if n := again.Load(); n != 0 {
		t.Errorf("the coordinator forwarded %d forwarded requests again", n)
	}
}
