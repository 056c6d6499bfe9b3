package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/haraqa/haraqa/internal/retry"
	"github.com/haraqa/haraqa/netproto"
)

// Client is a connection to one broker, safe for concurrent use. Requests
// from every goroutine are pipelined on the one connection and matched to
// their responses by request id. Watches get connections of their own.
type Client struct {
	addr string
	cfg  config

	mu       sync.Mutex
	cur      *conn              // guarded by mu: the connection calls use; nil before a redial
	dialing  chan struct{}      // guarded by mu: non-nil while a dial runs; closed when it ends
	dialGen  uint64             // guarded by mu: dials finished
	dialErr  error              // guarded by mu: the last dial's error
	failures int                // guarded by mu: dials failed in a row
	retryAt  time.Time          // guarded by mu: no dial before this
	watches  map[*conn]struct{} // guarded by mu: watch connections, closed with the Client
	closed   bool               // guarded by mu
	route    *router            // a seed list's: produces follow topics' leaders (route.go)
}

// Dial connects to the broker at addr: "tcp://host:port", "unix:///path",
// a plain "host:port" (TCP), a socket path ("/tmp/haraqa.sock"),
// "tls://host:port" (TLS over TCP; see WithTLSConfig) or a cluster's seed
// list "tcp://a:4353,b:4353,c:4353" (see cluster.go), and
// exchanges Hello. An address it cannot parse is ErrBadAddress; a failed
// connection is a *DialError ("cannot connect to ADDR: REASON"). Dial makes one
// attempt; later redials follow WithReconnect.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	c := &Client{addr: addr, cfg: newConfig(opts), watches: map[*conn]struct{}{}}
	if len(c.cfg.errs) > 0 {
		return nil, errors.Join(c.cfg.errs...)
	}
	cn, err := dialConn(ctx, addr, &c.cfg)
	if err != nil {
		return nil, err
	}
	c.cur = cn
	if list := seeds(addr); len(list) > 1 {
		c.route = newRouter(c, list)
	}
	return c, nil
}

// Close closes the connection and every watch. Calls in flight fail with
// ErrClosed; so does every later call.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	cur, watches := c.cur, c.watches
	c.cur, c.watches = nil, nil
	c.mu.Unlock()
	if cur != nil {
		cur.fail(ErrClosed)
	}
	if c.route != nil {
		c.route.close()
	}
	for w := range watches {
		w.fail(ErrClosed)
	}
	return nil
}

// conn returns the live connection, redialling when the last one ended:
// one goroutine dials while the others wait for its result.
func (c *Client) conn(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if cn := c.cur; cn != nil {
			if cn.alive() {
				c.mu.Unlock()
				return cn, nil
			}
			if !c.cfg.reconnect {
				c.mu.Unlock() // the dead connection stays: every call fails alike
				return nil, disconnected(cn.reason())
			}
			c.cur = nil
		}
		if c.dialing == nil {
			break
		}
		ch, gen := c.dialing, c.dialGen
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		if c.dialGen != gen && c.dialErr != nil && c.cur == nil {
			err := c.dialErr
			c.mu.Unlock()
			return nil, err
		}
	}
	ch := make(chan struct{})
	c.dialing = ch
	wait := time.Until(c.retryAt)
	c.mu.Unlock()

	cn, err := c.redial(ctx, wait)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.dialing = nil
	c.dialGen++
	close(ch)
	c.dialErr = err
	if err != nil && ctx.Err() != nil {
		// This caller gave up; that is no verdict on the broker.
		c.dialErr = nil
		return nil, ctx.Err()
	}
	if err != nil {
		c.failures++
		c.retryAt = time.Now().Add(c.backoff(c.failures))
		return nil, err
	}
	if c.closed {
		cn.fail(ErrClosed)
		return nil, ErrClosed
	}
	c.failures, c.retryAt = 0, time.Time{}
	c.cur = cn
	c.cfg.logger.Info("haraqa client: reconnected", "addr", c.addr)
	return cn, nil
}

// live reports whether the Client has a live connection (conn would not
// dial).
func (c *Client) live() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && c.cur != nil && c.cur.alive()
}

// redial waits out the backoff, honouring ctx, then dials once.
func (c *Client) redial(ctx context.Context, wait time.Duration) (*conn, error) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return dialConn(ctx, c.addr, &c.cfg)
}

// backoff returns the delay after n failed dials in a row: min·2^(n-1),
// capped at max, jittered down by up to half.
func (c *Client) backoff(n int) time.Duration {
	d := retry.Backoff(n, c.cfg.minBackoff, c.cfg.maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// reason returns why the connection ended.
func (cn *conn) reason() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// roundTrip sends cl (cl.head, then payload) on the live connection and
// waits for its response.
func (c *Client) roundTrip(ctx context.Context, cl *call, payload []byte) error {
	return c.roundTripParts(ctx, cl, parts{payload})
}

// roundTripParts is roundTrip with the payload in pieces.
func (c *Client) roundTripParts(ctx context.Context, cl *call, p parts) error {
	cn, err := c.conn(ctx)
	if err != nil {
		return err
	}
	if err := cn.sendParts(cl, p); err != nil {
		return err
	}
	return cn.wait(ctx, cl)
}

// simple sends a request whose body is cl.head's, waits and decodes the
// response body into resp.
func (c *Client) simple(ctx context.Context, cl *call, resp netproto.Message) error {
	defer putCall(cl)
	if err := c.roundTrip(ctx, cl, nil); err != nil {
		return err
	}
	return resp.Decode(cl.body)
}
