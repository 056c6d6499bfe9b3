package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/haraqa/haraqa/auth"
	"github.com/haraqa/haraqa/netproto"
)

// Permissions (Options.Auth): Hello identifies the client by its token or,
// without one, its TLS client certificate; each request is then checked
// against the client's permissions: Produce needs produce on its topic;
// Consume, Offsets and Watch consume; CreateTopic, DeleteTopic and
// Truncate admin; Topics lists only the topics the client has some
// permission on; InitProducer needs no topic permission. Consumer-group
// requests need consume on the group's topic (a join that names a
// dead-letter topic also produce on that one), GroupSeek and GroupDelete
// admin; GroupList lists the groups of the topics the client may consume. A refused request
// is answered Unauthorized naming the operation and the topic, and the
// connection goes on.

// checkedOps are the requests whose handlers check permissions. With
// Options.Auth, any other request (a new one whose handler does not call
// authorize yet) is refused: permissions fail closed. A handler that
// calls authorize adds its opcode here.
var checkedOps = map[netproto.Opcode]bool{
	netproto.OpProduce: true, netproto.OpConsume: true, netproto.OpConsumeNext: true, netproto.OpWatch: true,
	netproto.OpCreateTopic: true, netproto.OpDeleteTopic: true, netproto.OpTruncate: true,
	netproto.OpTopics: true, netproto.OpOffsets: true, netproto.OpInitProducer: true,
	// Consumer groups (group.go, group_admin.go, group_fetch.go).
	netproto.OpGroupJoin: true, netproto.OpGroupFetch: true, netproto.OpGroupAck: true,
	netproto.OpGroupNack: true, netproto.OpGroupExtend: true, netproto.OpGroupCommit: true,
	netproto.OpGroupDescribe: true, netproto.OpGroupList: true, netproto.OpGroupSeek: true,
	netproto.OpGroupDelete: true, netproto.OpGroupLeave: true,
	// Placement names only the topics the client may list (placement.go).
	netproto.OpPlacement: true,
}

// uncheckedOp refuses, with Options.Auth, a request no permission check
// covers; nil otherwise.
func (c *conn) uncheckedOp(op netproto.Opcode) *netproto.Error {
	if c.s.opts.Auth == nil || checkedOps[op] {
		return nil
	}
	return netproto.NewError(netproto.CodeUnauthorized, "unauthorized: "+op.String()+" is not covered by the broker's -auth-file permissions")
}

// peerCerts returns the verified TLS client certificates of nc, if any.
func peerCerts(nc interface{}) []*x509.Certificate {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.ConnectionState().PeerCertificates
	}
	return nil
}

// identify finds the client of a Hello; a refusal is the Unauthorized
// answer.
func (c *conn) identify(token []byte) *netproto.Error {
	p, err := c.s.opts.Auth.Identify(token, peerCerts(c.nc))
	if err != nil {
		if ok, dropped := c.s.authLog.Allow(); ok {
			c.s.opts.Logger.Warn("server: refused a connection: "+err.Error(), "remote", remoteName(c.nc), "not logged since the last line", dropped)
		}
		return netproto.NewError(netproto.CodeUnauthorized, err.Error())
	}
	c.principal = p
	return nil
}

// authorize checks op on topic for this connection's client: nil, or the
// Unauthorized error to answer.
func (c *conn) authorize(op auth.Op, topic string) error {
	a := c.s.opts.Auth
	if a == nil {
		return nil
	}
	err := a.Authorize(c.principal, op, topic)
	if err == nil {
		return nil
	}
	if c.s.debug {
		c.s.opts.Logger.Debug("server: refused a request", "remote", remoteName(c.nc), "err", err)
	}
	var re *auth.RefusedError
	if errors.As(err, &re) {
		return netproto.NewError(netproto.CodeUnauthorized, "unauthorized: "+err.Error())
	}
	return netproto.NewError(netproto.CodeUnauthorized, err.Error())
}

// mayList reports whether the client may see topic in a listing.
func (c *conn) mayList(topic string) bool {
	a := c.s.opts.Auth
	if a == nil {
		return true
	}
	for _, op := range auth.Ops() {
		if a.Allowed(c.principal, op, topic) {
			return true
		}
	}
	return false
}
