package auth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMatch pins down what a topic pattern allows, edge cases included:
// a client allowed "logs.*" never reaches "logs" or "logsx".
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, topic string
		want           bool
	}{
		{"*", "anything", true},
		{"orders", "orders", true},
		{"orders", "orders2", false},
		{"orders", "order", false},
		{"logs.*", "logs.app", true},
		{"logs.*", "logs.a.b", true},
		{"logs.*", "logs.", true},
		{"logs.*", "logs", false},
		{"logs.*", "logsx", false},
		{"logs*", "logs", true},
		{"logs*", "logsx", true},
		{"*.errors", "app.errors", true},
		{"*.errors", "app.errors.old", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abcbc", true},
		{"a*b*c", "acb", false},
		{"**", "x", true},
		{"a-b_c.D9", "a-b_c.D9", true},
		{"A*", "a1", false}, // case matters, as in topic names
	} {
		if got := Match(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.topic, got, tc.want)
		}
	}
}

func writeAuth(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadRefusesBadFiles: an auth file with a mistake stops the broker
// (or a reload) with a message naming the mistake, rather than granting
// or denying something the operator did not write.
func TestLoadRefusesBadFiles(t *testing.T) {
	h := HashToken("t")
	for _, tc := range []struct{ text, want string }{
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"" + h + "\"\nproduse = [\"x\"]\n", "produse"},
		{"[[clients]]\nname = \"a\"\n", "clients"},
		{"[[client]]\nname = \"a\"\ntoken = \"plain\"\n", "token"},
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"abc\"\n", "64 lower-case hex"},
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"" + strings.ToUpper(h) + "\"\n", "64 lower-case hex"},
		{"[[client]]\nname = \"a\"\n", "neither token-sha256 nor cert-subject"},
		{"[[client]]\ntoken-sha256 = \"" + h + "\"\n", "no name"},
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"" + h + "\"\ncert-subject = \"CN=x\"\n", "both"},
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"" + h + "\"\n[[client]]\nname = \"b\"\ntoken-sha256 = \"" + h + "\"\n", `same identity as client "a"`},
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"" + h + "\"\nconsume = [\"logs/*\"]\n", `consume pattern "logs/*"`},
		{"[[client]]\nname = \"a\"\ntoken-sha256 = \"" + h + "\"\nadmin = [\"\"]\n", "admin pattern"},
		{"[[client]\n", "auth.toml"},
	} {
		_, err := Load(writeAuth(t, tc.text), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %q", tc.text, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml"), ""); err == nil {
		t.Errorf("a missing file loaded")
	}
}

// TestIdentifyAndAuthorize: a client is known by the hash of its token or
// by its certificate's subject, gets exactly the operations the file gives
// it, a refusal names client, operation and topic and is counted, and a
// reload applies to clients identified before it.
func TestIdentifyAndAuthorize(t *testing.T) {
	path := writeAuth(t, `
[[client]]
name = "shipper"
token-sha256 = "`+HashToken("ship-token")+`"
produce = ["logs.*"]

[[client]]
name = "dash"
cert-subject = "CN=dash,O=acme"
consume = ["logs.*", "metrics"]
`)
	a, err := Load(path, "root-token")
	if err != nil {
		t.Fatal(err)
	}
	ship, err := a.Identify([]byte("ship-token"), nil)
	if err != nil || ship.Name != "shipper" {
		t.Fatalf("shipper: %v %v", ship, err)
	}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "dash", Organization: []string{"acme"}}}
	dash, err := a.Identify(nil, []*x509.Certificate{cert})
	if err != nil || dash.Name != "dash" {
		t.Fatalf("dash: %v %v", dash, err)
	}
	root, err := a.Identify([]byte("root-token"), []*x509.Certificate{cert})
	if err != nil || root.Name != "-token" {
		t.Fatalf("the -token: %v %v (a token wins over the certificate)", root, err)
	}
	for _, bad := range []struct {
		token string
		certs []*x509.Certificate
	}{{"wrong", nil}, {"", nil}, {"", []*x509.Certificate{{Subject: pkix.Name{CommonName: "dash"}}}}} {
		if _, err := a.Identify([]byte(bad.token), bad.certs); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("identify %q: %v", bad.token, err)
		}
	}
	if got := a.RefusedClients(); got != 3 {
		t.Errorf("refused clients counted %d, want 3", got)
	}

	if err := a.Authorize(ship, Produce, "logs.app"); err != nil {
		t.Error(err)
	}
	err = a.Authorize(ship, Consume, "logs.app")
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ErrUnauthorized) || err.Error() != `client "shipper" may not consume topic "logs.app"` {
		t.Errorf("consume with a produce-only token: %v", err)
	}
	if err := a.Authorize(dash, Consume, "metrics"); err != nil {
		t.Error(err)
	}
	if err := a.Authorize(dash, Admin, "metrics"); err == nil {
		t.Error("dash may administer metrics")
	}
	for _, op := range Ops() {
		if err := a.Authorize(root, op, "anything"); err != nil {
			t.Errorf("-token %s: %v", op, err)
		}
	}
	if a.Refused(Consume) != 1 || a.Refused(Admin) != 1 || a.Refused(Produce) != 0 {
		t.Errorf("refusals counted produce %d consume %d admin %d, want 0 1 1", a.Refused(Produce), a.Refused(Consume), a.Refused(Admin))
	}

	// Reload: the shipper loses produce, gains consume; dash is removed.
	if err := os.WriteFile(path, []byte(`
[[client]]
name = "shipper"
token-sha256 = "`+HashToken("ship-token")+`"
consume = ["logs.*"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.Authorize(ship, Produce, "logs.app") == nil || a.Authorize(ship, Consume, "logs.app") != nil {
		t.Errorf("reload did not apply to an identified client")
	}
	if a.Authorize(dash, Consume, "metrics") == nil {
		t.Errorf("a client removed from the file keeps its permissions")
	}
	// A reload of a broken file keeps what is in force.
	os.WriteFile(path, []byte("[[client]\n"), 0o600)
	if err := a.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	if a.Authorize(ship, Consume, "logs.app") != nil {
		t.Errorf("a failed reload changed the permissions")
	}
	var none *Authorizer
	if p, err := none.Identify(nil, nil); p != nil || err != nil || none.Authorize(nil, Admin, "x") != nil {
		t.Errorf("a nil Authorizer refuses")
	}
}

// TestPrincipalByKey: a node that identified a client can name it to
// another node by its key, which holds no secret, and the other node
// finds the same client with the permissions its own file gives it now:
// a key the file does not list, or no longer lists after a reload, is
// refused.
func TestPrincipalByKey(t *testing.T) {
	path := writeAuth(t, `
[[client]]
name = "shipper"
token-sha256 = "`+HashToken("ship-token")+`"
produce = ["logs.*"]

[[client]]
name = "dash"
cert-subject = "CN=dash,O=acme"
consume = ["metrics"]
`)
	a, err := Load(path, "root-token")
	if err != nil {
		t.Fatal(err)
	}
	ship, _ := a.Identify([]byte("ship-token"), nil)
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "dash", Organization: []string{"acme"}}}
	dash, _ := a.Identify(nil, []*x509.Certificate{cert})
	root, _ := a.Identify([]byte("root-token"), nil)
	for _, tc := range []struct {
		p         *Principal
		key, name string
	}{
		{ship, "token:" + HashToken("ship-token"), "shipper"},
		{dash, "subject:CN=dash,O=acme", "dash"},
		{root, "token:" + HashToken("root-token"), "-token"},
	} {
		if tc.p.Key() != tc.key {
			t.Errorf("%s's key %q, want %q", tc.name, tc.p.Key(), tc.key)
		}
		if strings.Contains(tc.p.Key(), "ship-token") || strings.Contains(tc.p.Key(), "root-token") {
			t.Errorf("a key holds the token: %q", tc.p.Key())
		}
		got, err := a.Principal(tc.p.Key())
		if err != nil || got.Name != tc.name {
			t.Errorf("Principal(%q): %v %v, want %s", tc.p.Key(), got, err, tc.name)
		}
	}
	if p, _ := a.Principal(ship.Key()); a.Authorize(p, Produce, "logs.a") != nil || a.Authorize(p, Consume, "logs.a") == nil {
		t.Errorf("the client found by key has other permissions than the file gives it")
	}
	before := a.RefusedClients()
	for _, key := range []string{"", "token:" + HashToken("wrong"), "ship-token", "subject:CN=dash", "token:"} {
		if p, err := a.Principal(key); p != nil || !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Principal(%q): %v %v, want refused", key, p, err)
		}
	}
	if got := a.RefusedClients() - before; got != 5 {
		t.Errorf("unknown keys counted %d, want 5", got)
	}
	var nilP *Principal
	if nilP.Key() != "" {
		t.Errorf("a nil principal has a key")
	}
	// A reload that removes dash: its key is refused from then on.
	if err := os.WriteFile(path, []byte(`
[[client]]
name = "shipper"
token-sha256 = "`+HashToken("ship-token")+`"
consume = ["logs.*"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Principal(dash.Key()); p != nil || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a client removed by a reload is still found by key: %v %v", p, err)
	}
	if p, err := a.Principal(ship.Key()); err != nil || a.Authorize(p, Consume, "logs.a") != nil {
		t.Errorf("the reloaded permissions do not apply to a client found by key: %v", err)
	}
}
