package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/netproto"
)

// TestAuthFailsClosed: with permissions on, a request whose handler does
// not check them (here GroupList, taken off the checked list for the test:
// every handler checks today) is refused Unauthorized, never served
// unchecked; the connection goes on. Without permissions it is handled as
// before.
func TestAuthFailsClosed(t *testing.T) {
	delete(checkedOps, netproto.OpGroupList)
	t.Cleanup(func() { checkedOps[netproto.OpGroupList] = true })
	path := filepath.Join(t.TempDir(), "auth.toml")
	text := "[[client]]\nname = \"c\"\ntoken-sha256 = \"" + auth.HashToken("tok") + "\"\nconsume = [\"*\"]\nproduce = [\"*\"]\nadmin = [\"*\"]\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, engine.Options{})
	for _, withAuth := range []bool{true, false} {
		opts := Options{}
		if withAuth {
			opts.Auth = a
		}
		ts := startServer(t, e, "unix", opts)
		p := mustDial(t, ts, "tok")
		_, err := p.call(netproto.OpGroupList, &netproto.GroupListRequest{Topic: []byte("t")})
		if withAuth {
			wantCode(t, err, netproto.CodeUnauthorized)
			// The connection goes on.
			if _, err := p.offsets("missing", 0); netproto.CodeOf(err) != netproto.CodeTopicNotFound {
				t.Fatalf("after the refusal: %v", err)
			}
		} else if netproto.CodeOf(err) == netproto.CodeUnauthorized {
			t.Fatalf("without permissions: %v", err)
		}
		p.Close()
	}
}
