package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reqHeader is a request's header (request header v1, or v2 with tagged
// fields for flexible versions).
type reqHeader struct {
	key, version int16
	corr         int32
	clientID     string
	known        bool // kmsg knows this key and version
}

var errMalformed = errors.New("kafka: malformed request")

// parseHeader splits a request frame into its header and body. It never
// allocates a length read from the frame.
func parseHeader(frame []byte) (reqHeader, kmsg.Request, []byte, error) {
	var h reqHeader
	if len(frame) < 8 {
		return h, nil, nil, errMalformed
	}
	h.key = int16(binary.BigEndian.Uint16(frame))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	if len(frame) < 10 {
		return h, nil, nil, errMalformed
	}
	rest := frame[8:]
	l := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if l > 0 {
		if int(l) > len(rest) {
			return h, nil, nil, errMalformed
		}
		h.clientID = string(rest[:l])
		rest = rest[l:]
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil || h.version < 0 || h.version > req.MaxVersion() {
		return h, nil, rest, nil
	}
	h.known = true
	req.SetVersion(h.version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return h, req, nil, err
		}
	}
	return h, req, rest, nil
}

// skipTags skips a tagged-field section (KIP-482): a count, then per
// field a tag and a length-prefixed value.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errMalformed
	}
	b = b[k:]
	for range n {
		if _, k = binary.Uvarint(b); k <= 0 {
			return nil, errMalformed
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, errMalformed
		}
		b = b[k+int(size):]
	}
	return b, nil
}

// decodeRequest parses a request frame the way the connection does: the
// header, then the body with kmsg. It is the fuzz target's entry point.
func decodeRequest(frame []byte) (reqHeader, kmsg.Request, error) {
	h, req, body, err := parseHeader(frame)
	if err != nil || !h.known {
		return h, nil, err
	}
	if err := req.ReadFrom(body); err != nil {
		return h, req, fmt.Errorf("%w: %s v%d: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// handle parses one request frame and starts its answer into sl.
func (c *conn) handle(frame []byte, sl *slot) {
	if c.rawSASL {
		c.rawSASL = false
		c.plainV0(frame, sl)
		return
	}
	h, req, err := decodeRequest(frame)
	switch {
	case !h.known && err == nil:
		// A key or version this broker cannot even decode: answer with
		// the error code alone after the correlation id (the form Kafka
		// uses for an ApiVersions it does not know).
		if h.key == kmsg.ApiVersions.Int16() {
			c.finish(sl, h, c.apiVersions(h, nil))
			return
		}
		c.finishRaw(sl, h, binary.BigEndian.AppendUint16(nil, uint16(errUnsupportedVersion)))
		return
	case err != nil && req == nil:
		c.finishRaw(sl, h, binary.BigEndian.AppendUint16(nil, uint16(errInvalidRequest)))
		return
	case err != nil:
		// Known version, bad body: an answer of the right shape carrying
		// INVALID_REQUEST at the top (and in nothing else).
		c.s.opts.Logger.Debug("kafka: malformed request", "key", h.key, "version", h.version, "err", err)
		c.finish(sl, h, errorResponse(h, nil, errInvalidRequest))
		return
	}
	a, ok := apis[h.key]
	if h.key == kmsg.ApiVersions.Int16() {
		c.finish(sl, h, c.apiVersions(h, req.(*kmsg.ApiVersionsRequest)))
		return
	}
	if !ok || h.version < a.min || h.version > a.max || (a.groups && c.s.groups == nil) || (a.auth && !c.s.authOn()) {
		c.finish(sl, h, errorResponse(h, req, errUnsupportedVersion))
		return
	}
	if !preAuth[h.key] && !c.authenticated() {
		c.finish(sl, h, errorResponse(h, req, errSASLAuthenticationFailed))
		return
	}
	if a.groups && c.forward(frame, h, req, sl) {
		return
	}
	a.fn(c, h, req, sl)
}

// finish encodes resp as h's answer into sl and releases it.
func (c *conn) finish(sl *slot, h reqHeader, resp kmsg.Response) {
	if resp == nil {
		close(sl.done)
		return
	}
	if h.key != kmsg.ApiVersions.Int16() {
		resp.SetVersion(h.version) // apiVersions picks its own
	}
	out := make([]byte, 4, 256+recordBytes(resp))
	out = binary.BigEndian.AppendUint32(out, uint32(h.corr))
	// Response header v1 (a tagged-field section) for flexible versions,
	// except ApiVersions, whose answer always has header v0.
	if resp.IsFlexible() && h.key != kmsg.ApiVersions.Int16() {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	sl.out = out
	close(sl.done)
}

// finishRaw answers with the correlation id and body as given.
func (c *conn) finishRaw(sl *slot, h reqHeader, body []byte) {
	out := make([]byte, 4, 8+len(body))
	out = binary.BigEndian.AppendUint32(out, uint32(h.corr))
	out = append(out, body...)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	sl.out = out
	close(sl.done)
}

// later runs fn in its own goroutine and answers with its response.
func (c *conn) later(sl *slot, h reqHeader, fn func() kmsg.Response) {
	go func() { c.finish(sl, h, fn()) }()
}

// api is one served request type: the versions answered and the handler,
// which must eventually finish its slot.
type api struct {
	min, max int16
	groups   bool // needs the log service's consumer groups
	auth     bool // served only when clients must authenticate
	fn       func(c *conn, h reqHeader, req kmsg.Request, sl *slot)
}

// apis is the table ApiVersions advertises (see apiVersions). Versions
// left out use fields this broker does not serve (Produce and Fetch v13+
// name topics by id only; ListOffsets v11's pending-upload offsets;
// ApiVersions v5's cluster check; offset APIs v10+ by topic id).
var (
	apis    map[int16]api
	apiKeys []int16 // apis' keys, sorted
)

func init() {
	apis = map[int16]api{
		kmsg.Produce.Int16():        {min: 3, max: 12, fn: handleProduce},
		kmsg.Fetch.Int16():          {min: 4, max: 12, fn: handleFetch},
		kmsg.ListOffsets.Int16():    {min: 1, max: 10, fn: handleListOffsets},
		kmsg.Metadata.Int16():       {min: 0, max: 13, fn: handleMetadata},
		kmsg.CreateTopics.Int16():   {min: 0, max: 7, fn: handleCreateTopics},
		kmsg.DeleteTopics.Int16():   {min: 0, max: 6, fn: handleDeleteTopics},
		kmsg.InitProducerID.Int16(): {min: 0, max: 5, fn: handleInitProducerID},
		kmsg.ApiVersions.Int16():    {min: 0, max: 4},
		// After SaslHandshake v0 the client sends its PLAIN message as a
		// bare frame (no request header); v1 uses SaslAuthenticate.
		kmsg.SASLHandshake.Int16():    {min: 0, max: 1, auth: true, fn: handleSASLHandshake},
		kmsg.SASLAuthenticate.Int16(): {min: 0, max: 2, auth: true, fn: handleSASLAuthenticate},
	}
	addGroupAPIs(apis)
	for k := range apis {
		apiKeys = append(apiKeys, k)
	}
	slices.Sort(apiKeys)
}

// apiVersions answers ApiVersions. A version this broker does not serve
// gets UNSUPPORTED_VERSION in a v0 answer that still lists the APIs, as
// Kafka does, so the client can retry with one it does.
func (c *conn) apiVersions(h reqHeader, _ *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	a := apis[kmsg.ApiVersions.Int16()]
	if h.version > a.max {
		h.version = 0
		resp.ErrorCode = errUnsupportedVersion
	}
	for _, key := range apiKeys {
		a := apis[key]
		if a.groups && c.s.groups == nil || a.auth && !c.s.authOn() {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	resp.SetVersion(h.version)
	return resp
}

// recordBytes is the size of the record batches a Fetch answer carries,
// so that its frame is allocated once.
func recordBytes(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 0
	for _, t := range f.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches) + 64
		}
	}
	return n
}
