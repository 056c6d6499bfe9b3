// Package auth decides which client may do what to which topic: the
// broker's per-client permissions, read from the -auth-file and reloaded
// on SIGHUP. Every front end (the native protocol, the HTTP API, the Kafka
// listener) identifies a client once per connection or request with
// Identify and asks Authorize before each operation on a topic:
//
//	p, err := a.Identify(token, tlsState.PeerCertificates)
//	if err != nil { ... refuse the connection (err names why) ... }
//	if err := a.Authorize(p, auth.Produce, topic); err != nil { ... refuse the request ... }
//
// A nil *Authorizer allows everything (no -auth-file).
//
// The file is TOML: one [[client]] table per client, identified by the
// SHA-256 of its token (lower-case hex; the file never holds the token) or
// by the subject of its TLS client certificate, with the topic name
// patterns it may produce to, consume from and administer:
//
//	[[client]]
//	name = "shipper"
//	token-sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//	produce = ["logs.*"]
//
//	[[client]]
//	name = "dashboard"
//	cert-subject = "CN=dashboard,O=acme"
//	consume = ["logs.*", "metrics"]
//
// A pattern is a topic name in which '*' stands for any run of characters
// (none included): "logs.*" allows "logs.app" and "logs.a.b" but not
// "logs" or "logsx"; "*" allows every topic.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pelletier/go-toml"
)

// Op is an operation a client may be allowed.
type Op uint8

const (
	// Produce: write messages to a topic (Produce; a produce that
	// auto-creates the topic needs only this).
	Produce Op = iota
	// Consume: read a topic (Consume, Offsets, Watch; join, fetch from,
	// ack and describe its consumer groups), and see it in topic listings.
	Consume
	// Admin: create, delete and truncate a topic; seek and delete its
	// consumer groups.
	Admin
	numOps
)

var opNames = [numOps]string{"produce", "consume", "admin"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", o)
}

// Ops lists every operation, for counters.
func Ops() []Op { return []Op{Produce, Consume, Admin} }

// ErrUnauthorized is what every refusal matches (errors.Is).
var ErrUnauthorized = errors.New("unauthorized")

// RefusedError is an operation a client may not do.
type RefusedError struct {
	Client string // the client's name in the auth file
	Op     Op
	Topic  string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("client %q may not %s topic %q", e.Client, e.Op, e.Topic)
}

func (e *RefusedError) Is(target error) bool { return target == ErrUnauthorized }

// UnknownError is a client the auth file does not list.
type UnknownError struct{ Reason string }

func (e *UnknownError) Error() string { return e.Reason }

func (e *UnknownError) Is(target error) bool { return target == ErrUnauthorized }

// Principal is an identified client. It names an entry of the file by its
// identity, so that a reload that changes the entry's permissions applies
// to connections already open, and one that removes it refuses them.
type Principal struct {
	Name string
	key  string
}

// Key names the file entry p stands for: "token:" and the SHA-256 of its
// token in hex, or "subject:" and its certificate subject. It is not a
// secret (the file holds the same hash); a node passes it to another
// that checks the client's requests (Authorizer.Principal).
func (p *Principal) Key() string {
	if p == nil {
		return ""
	}
	return p.key
}

// Authorizer holds the current permissions.
type Authorizer struct {
	path, token string
	cur         atomic.Pointer[rules]
	refused     [numOps]atomic.Uint64
	unknown     atomic.Uint64
}

type rules struct {
	clients map[string]*entry // by "token:<sha256 hex>" or "subject:<subject>"
}

type entry struct {
	name  string
	allow [numOps][]string // patterns
}

// fileClient is a [[client]] table.
type fileClient struct {
	Name        string   `toml:"name"`
	TokenSHA256 string   `toml:"token-sha256"`
	CertSubject string   `toml:"cert-subject"`
	Produce     []string `toml:"produce"`
	Consume     []string `toml:"consume"`
	Admin       []string `toml:"admin"`
}

type file struct {
	Client []fileClient `toml:"client"`
}

// Load reads the auth file at path. token, if not empty, is the broker's
// -token: a client presenting it may do everything, as without a file.
func Load(path, token string) (*Authorizer, error) {
	a := &Authorizer{path: path, token: token}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Path is the file's path.
func (a *Authorizer) Path() string { return a.path }

// Clients returns the number of clients in the file.
func (a *Authorizer) Clients() int { return len(a.cur.Load().clients) }

// Reload re-reads the file; on an error the current permissions stay.
func (a *Authorizer) Reload() error {
	b, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	r, err := parse(b)
	if err != nil {
		return fmt.Errorf("auth file %s: %w", a.path, err)
	}
	if a.token != "" {
		all := [numOps][]string{{"*"}, {"*"}, {"*"}}
		r.clients["token:"+HashToken(a.token)] = &entry{name: "-token", allow: all}
	}
	a.cur.Store(r)
	return nil
}

// HashToken is the form a token has in the file: its SHA-256 in lower-case
// hex (printf %s "$TOKEN" | sha256sum).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func parse(b []byte) (*rules, error) {
	var f file
	dec := toml.NewDecoder(bytes.NewReader(b)).Strict(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	r := &rules{clients: map[string]*entry{}}
	for i, c := range f.Client {
		where := fmt.Sprintf("client %d (%q)", i+1, c.Name)
		if c.Name == "" {
			return nil, fmt.Errorf("client %d: no name", i+1)
		}
		var key string
		switch {
		case c.TokenSHA256 != "" && c.CertSubject != "":
			return nil, fmt.Errorf("%s: both token-sha256 and cert-subject; give one (two entries for two identities)", where)
		case c.TokenSHA256 != "":
			if len(c.TokenSHA256) != 64 || strings.ToLower(c.TokenSHA256) != c.TokenSHA256 {
				return nil, fmt.Errorf("%s: token-sha256 wants 64 lower-case hex digits (printf %%s \"$TOKEN\" | sha256sum)", where)
			}
			if _, err := hex.DecodeString(c.TokenSHA256); err != nil {
				return nil, fmt.Errorf("%s: token-sha256: %v", where, err)
			}
			key = "token:" + c.TokenSHA256
		case c.CertSubject != "":
			key = "subject:" + c.CertSubject
		default:
			return nil, fmt.Errorf("%s: neither token-sha256 nor cert-subject", where)
		}
		if old, dup := r.clients[key]; dup {
			return nil, fmt.Errorf("%s: the same identity as client %q", where, old.name)
		}
		e := &entry{name: c.Name, allow: [numOps][]string{c.Produce, c.Consume, c.Admin}}
		for op, pats := range e.allow {
			for _, p := range pats {
				if err := checkPattern(p); err != nil {
					return nil, fmt.Errorf("%s: %s pattern %q: %v", where, Op(op), p, err)
				}
			}
		}
		r.clients[key] = e
	}
	return r, nil
}

// checkPattern accepts topic-name characters and '*'.
func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == '*':
		default:
			return fmt.Errorf("byte %q at %d: a pattern is topic-name characters [A-Za-z0-9._-] and *", c, i)
		}
	}
	return nil
}

// Match reports whether topic matches pattern: '*' matches any run of
// characters, none included; every other character itself.
func Match(pattern, topic string) bool {
	// Iterative glob with one backtrack point: linear in practice.
	p, t := 0, 0
	star, mark := -1, 0
	for t < len(topic) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, t
			p++
		case p < len(pattern) && pattern[p] == topic[t]:
			p++
			t++
		case star >= 0:
			p = star + 1
			mark++
			t = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Identify finds the client presenting token (if not empty) or, without
// a token, the TLS client certificate certs[0] (its subject as
// pkix.Name.String writes it: "CN=app,O=acme"). A client the file does not
// list gets an *UnknownError (ErrUnauthorized), counted.
func (a *Authorizer) Identify(token []byte, certs []*x509.Certificate) (*Principal, error) {
	if a == nil {
		return nil, nil
	}
	r := a.cur.Load()
	if len(token) > 0 {
		key := "token:" + HashToken(string(token))
		if e, ok := r.clients[key]; ok {
			return &Principal{Name: e.name, key: key}, nil
		}
		a.unknown.Add(1)
		return nil, &UnknownError{"unknown token"}
	}
	if len(certs) > 0 {
		subject := certs[0].Subject.String()
		key := "subject:" + subject
		if e, ok := r.clients[key]; ok {
			return &Principal{Name: e.name, key: key}, nil
		}
		a.unknown.Add(1)
		return nil, &UnknownError{fmt.Sprintf("no client with certificate subject %q", subject)}
	}
	a.unknown.Add(1)
	return nil, &UnknownError{"no token and no client certificate"}
}

// Principal returns the client whose Key is key, as the current file
// lists it: another node identified the client and passes its key. A key
// the file does not list (a reload removed the client, or the nodes' files
// differ) gets an *UnknownError (ErrUnauthorized), counted.
func (a *Authorizer) Principal(key string) (*Principal, error) {
	if a == nil {
		return nil, nil
	}
	if e, ok := a.cur.Load().clients[key]; ok && key != "" {
		return &Principal{Name: e.name, key: key}, nil
	}
	a.unknown.Add(1)
	if key == "" {
		return nil, &UnknownError{"no client named"}
	}
	return nil, &UnknownError{fmt.Sprintf("no client with key %q", key)}
}

// Allowed reports whether p may do op on topic, counting nothing (for
// filtering a listing).
func (a *Authorizer) Allowed(p *Principal, op Op, topic string) bool {
	if a == nil {
		return true
	}
	if p == nil || op >= numOps {
		return false
	}
	e, ok := a.cur.Load().clients[p.key]
	return ok && slices.ContainsFunc(e.allow[op], func(pat string) bool { return Match(pat, topic) })
}

// Authorize returns nil when p may do op on topic, else a *RefusedError
// (ErrUnauthorized) naming the client, the operation and the topic, and
// counts the refusal.
func (a *Authorizer) Authorize(p *Principal, op Op, topic string) error {
	if a.Allowed(p, op, topic) {
		return nil
	}
	if op < numOps {
		a.refused[op].Add(1)
	}
	name := ""
	if p != nil {
		name = p.Name
	}
	return &RefusedError{Client: name, Op: op, Topic: topic}
}

// Refused returns how many requests for op were refused since start.
func (a *Authorizer) Refused(op Op) uint64 {
	if a == nil || op >= numOps {
		return 0
	}
	return a.refused[op].Load()
}

// RefusedClients returns how many connections or requests were refused
// because the file does not list their client.
func (a *Authorizer) RefusedClients() uint64 {
	if a == nil {
		return 0
	}
	return a.unknown.Load()
}
