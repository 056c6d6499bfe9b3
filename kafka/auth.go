package kafka

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/haraqa/haraqa/auth"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authentication and permissions. With Options.Token or Options.Auth a
// client proves who it is before anything but ApiVersions: by SASL/PLAIN
// (SaslHandshake v1, then SaslAuthenticate), whose password is the token
// (the user name is not used), or, with Options.Auth, by the TLS client
// certificate it connected with. Until then every other request is
// answered SASL_AUTHENTICATION_FAILED. Each request on a topic is then
// checked against the client's permissions (Options.Auth): Produce needs
// produce on the topic; Fetch, ListOffsets, OffsetCommit and OffsetFetch
// consume; CreateTopics and DeleteTopics admin; Metadata lists only the
// topics the client has some permission on and auto-creates only where
// it may produce; ListGroups and DescribeGroups show only the groups on
// topics it may consume (mayGroup), and JoinGroup needs consume on the
// topics the member subscribes to and on one of the group's (mayJoin).
// A refused topic gets TOPIC_AUTHORIZATION_FAILED; the
// connection goes on.

const (
	errIllegalSASLState         int16 = 34
	errSASLAuthenticationFailed int16 = 58
)

// authOn reports whether clients must authenticate.
func (s *Server) authOn() bool { return s.opts.Token != "" || s.opts.Auth != nil }

// authenticated reports whether this connection's client is known, trying
// its TLS client certificate first when the auth file may name it.
func (c *conn) authenticated() bool {
	if !c.s.authOn() || c.authed {
		return true
	}
	if c.s.opts.Auth != nil {
		if certs := peerCerts(c.nc); len(certs) > 0 {
			if p, err := c.s.opts.Auth.Identify(nil, certs); err == nil {
				c.principal.Store(p)
				c.authed = true
			}
		}
	}
	return c.authed
}

func peerCerts(nc any) []*x509.Certificate {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.ConnectionState().PeerCertificates
	}
	return nil
}

// preAuth are the requests answered before a client authenticated.
var preAuth = map[int16]bool{
	kmsg.ApiVersions.Int16(): true, kmsg.SASLHandshake.Int16(): true, kmsg.SASLAuthenticate.Int16(): true,
}

func handleSASLHandshake(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.SASLHandshakeRequest)
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.SupportedMechanisms = []string{"PLAIN"}
	if req.Mechanism != "PLAIN" {
		resp.ErrorCode = errUnsupportedSASLMechanism
	} else {
		c.saslReady = true
		c.rawSASL = h.version == 0
	}
	c.finish(sl, h, resp)
}

func handleSASLAuthenticate(c *conn, h reqHeader, r kmsg.Request, sl *slot) {
	req := r.(*kmsg.SASLAuthenticateRequest)
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	fail := func(code int16, msg string) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		c.finish(sl, h, resp)
	}
	if !c.saslReady {
		fail(errIllegalSASLState, "SaslHandshake with mechanism PLAIN comes first")
		return
	}
	if err := c.plain(req.SASLAuthBytes); err != nil {
		fail(errSASLAuthenticationFailed, err.Error())
		return
	}
	c.finish(sl, h, resp)
}

// plainV0 takes the bare PLAIN frame that follows SaslHandshake v0: an
// empty frame answers success; a failure closes the connection (the v0
// flow has no way to say why).
func (c *conn) plainV0(frame []byte, sl *slot) {
	if err := c.plain(frame); err != nil {
		sl.drop = true
	} else {
		sl.out = []byte{0, 0, 0, 0}
	}
	close(sl.done)
}

// plain checks a SASL/PLAIN message (RFC 4616: authzid NUL authcid NUL
// password); the password is the token.
func (c *conn) plain(msg []byte) error {
	parts := bytes.SplitN(msg, []byte{0}, 3)
	if len(parts) != 3 || len(parts[2]) == 0 {
		return errors.New("malformed PLAIN message")
	}
	password := parts[2]
	switch {
	case c.s.opts.Auth != nil:
		p, err := c.s.opts.Auth.Identify(password, nil)
		if err != nil {
			if ok, dropped := c.s.authLog.Allow(); ok {
				c.s.opts.Logger.Warn("kafka: refused a client: "+err.Error(), "remote", c.remoteHost(), "not logged since the last line", dropped)
			}
			return err
		}
		c.principal.Store(p)
		c.authed = true
	case subtle.ConstantTimeCompare(password, []byte(c.s.opts.Token)) == 1:
		c.authed = true
	default:
		if ok, dropped := c.s.authLog.Allow(); ok {
			c.s.opts.Logger.Warn("kafka: refused a client: wrong token", "remote", c.remoteHost(), "not logged since the last line", dropped)
		}
		return errors.New("wrong token")
	}
	return nil
}

// may reports whether the client may do op on topic (always without
// Options.Auth).
func (c *conn) may(op auth.Op, topic string) bool {
	a := c.s.opts.Auth
	if a == nil {
		return true
	}
	return a.Authorize(c.principal.Load(), op, topic) == nil
}

// mayList reports whether the client may see topic in Metadata.
func (c *conn) mayList(topic string) bool {
	a := c.s.opts.Auth
	if a == nil {
		return true
	}
	for _, op := range auth.Ops() {
		if a.Allowed(c.principal.Load(), op, topic) {
			return true
		}
	}
	return false
}
