package kafka

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Promise: ApiVersions advertises exactly the APIs and versions the
// listener serves, at every ApiVersions version it serves (flexible ones
// included); an ApiVersions version it does not serve gets a v0 answer
// with UNSUPPORTED_VERSION and the list, as Kafka does.
func TestApiVersionsAdvertised(t *testing.T) {
	b := startBroker(t, Options{})
	rc := dialRaw(t, b.addr)
	for v := int16(0); v <= apis[kmsg.ApiVersions.Int16()].max; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		req.SetVersion(v)
		resp := rc.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: code %d", v, resp.ErrorCode)
		}
		checkAdvertised(t, resp, b.s)
	}
	// v5 (known to kmsg, not served) and v99 (known to nobody): a v0 answer.
	for _, v := range []int16{5, 99} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(min(v, req.MaxVersion()))
		frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 42)
		binary.BigEndian.PutUint16(frame[6:], uint16(v))
		if _, err := rc.c.Write(frame); err != nil {
			t.Fatal(err)
		}
		corr, body, err := rc.readFrame()
		if err != nil || corr != 42 {
			t.Fatalf("v%d: %d %v", v, corr, err)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != errUnsupportedVersion {
			t.Fatalf("v%d: code %d %v", v, resp.ErrorCode, err)
		}
		checkAdvertised(t, resp, b.s)
	}
}

func checkAdvertised(t *testing.T, resp *kmsg.ApiVersionsResponse, s *Server) {
	t.Helper()
	var got []int16
	for _, k := range resp.ApiKeys {
		a, ok := apis[k.ApiKey]
		if !ok || k.MinVersion != a.min || k.MaxVersion != a.max {
			t.Fatalf("advertised %s %d..%d, served %+v", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, a)
		}
		if k.MaxVersion > kmsg.RequestForKey(k.ApiKey).MaxVersion() {
			t.Fatalf("%s advertised past what kmsg knows", kmsg.NameForKey(k.ApiKey))
		}
		got = append(got, k.ApiKey)
	}
	var want []int16
	for _, k := range apiKeys {
		if (!apis[k].groups || s.groups != nil) && (!apis[k].auth || s.authOn()) {
			want = append(want, k)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("advertised %v, want %v", got, want)
	}
}

// Promise: an API or version the listener does not serve gets an answer
// of the right shape with UNSUPPORTED_VERSION for every thing asked
// about, a key no one knows gets the correlation id and the code, a
// malformed body gets INVALID_REQUEST, and the connection goes on.
func TestUnsupportedAnswered(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true})
	rc := dialRaw(t, b.addr)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "events"
	dc.Resources = append(dc.Resources, r)
	dc.SetVersion(4)
	dr := rc.do(dc).(*kmsg.DescribeConfigsResponse)
	if len(dr.Resources) != 1 || dr.Resources[0].ErrorCode != errUnsupportedVersion || dr.Resources[0].ResourceName != "events" {
		t.Fatalf("DescribeConfigs: %+v", dr)
	}
	// Produce v2 (before record batch v2): every partition says so.
	pr := produceReq("events", -1, kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"}))
	pr.SetVersion(2)
	resp := rc.do(pr).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; resp.Topics[0].Topic != "events" || p.ErrorCode != errUnsupportedVersion {
		t.Fatalf("Produce v2: %+v", resp)
	}
	// A key no one knows.
	if _, err := rc.c.Write([]byte{0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 9, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if corr, body, err := rc.readFrame(); err != nil || corr != 9 || len(body) != 2 || int16(binary.BigEndian.Uint16(body)) != errUnsupportedVersion {
		t.Fatalf("unknown key: %d %x %v", corr, body, err)
	}
	// A malformed body: ApiVersions v3 whose strings run past the frame.
	if _, err := rc.c.Write([]byte{0, 0, 0, 13, 0, 18, 0, 3, 0, 0, 0, 10, 0xff, 0xff, 0, 0x7f, 0x7f}); err != nil {
		t.Fatal(err)
	}
	corr, body, err := rc.readFrame()
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	if err != nil || corr != 10 || av.ReadFrom(body) != nil || av.ErrorCode != errInvalidRequest {
		t.Fatalf("malformed: %d %x %v", corr, body, err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	if m := rc.do(meta).(*kmsg.MetadataResponse); len(m.Brokers) != 1 {
		t.Fatalf("connection after the bad requests: %+v", m)
	}
}

// Promise: Metadata creates a topic it names only when the broker
// auto-creates topics (and the client allows it); either way it names the
// one broker and partition 0 of every existing topic.
func TestMetadataAutoCreate(t *testing.T) {
	for _, auto := range []bool{false, true} {
		b := startBroker(t, Options{AutoCreateTopics: auto})
		rc := dialRaw(t, b.addr)
		meta := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("logs")
		meta.Topics = append(meta.Topics, mt)
		meta.AllowAutoTopicCreation = true
		meta.SetVersion(12)
		m := rc.do(meta).(*kmsg.MetadataResponse)
		tp := m.Topics[0]
		if auto && (tp.ErrorCode != 0 || len(tp.Partitions) != 1 || tp.Partitions[0].Leader != 0 || tp.TopicID == [16]byte{}) {
			t.Fatalf("auto-create: %+v", tp)
		}
		if !auto && tp.ErrorCode != errUnknownTopicOrPartition {
			t.Fatalf("no auto-create: %+v", tp)
		}
		host, port, _ := net.SplitHostPort(b.addr)
		if len(m.Brokers) != 1 || m.Brokers[0].Host != host || port != itoa(m.Brokers[0].Port) {
			t.Fatalf("brokers %+v, want %s", m.Brokers, b.addr)
		}
	}
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

// Promise: a frame above the limit (a Produce above MaxFrame, any other
// request above MaxOtherFrame) closes the connection before anything of
// that size is allocated; other connections go on.
func TestFrameLimits(t *testing.T) {
	b := startBroker(t, Options{MaxFrame: 1 << 20, MaxOtherFrame: 4 << 10})
	for _, c := range []struct {
		name string
		head []byte
	}{
		{"produce over MaxFrame", []byte{0, 0x20, 0, 0, 0, 0}},
		{"metadata over MaxOtherFrame", []byte{0, 0, 0x20, 0, 0, 3}},
		{"GET read as a size", []byte("GET / HTTP/1.1\r\n")},
	} {
		rc := dialRaw(t, b.addr)
		rc.c.Write(c.head)
		if _, _, err := rc.readFrame(); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: %v, want the connection closed", c.name, err)
		}
	}
	rc := dialRaw(t, b.addr)
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(1)
	rc.do(meta)
}

// Promise: a connection that sends nothing for IdleTimeout is closed.
func TestIdleTimeout(t *testing.T) {
	const idle = 100 * time.Millisecond
	b := startBroker(t, Options{IdleTimeout: idle})
	// The clock starts before the dial: the broker's timer starts at
	// accept, after it, so however slow the machine the connection lives
	// at least IdleTimeout from here.
	start := time.Now()
	rc := dialRaw(t, b.addr)
	if _, _, err := rc.readFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("%v, want the connection closed", err)
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

// Promise: answers come in request order even when an earlier request
// waits (a Fetch's max wait) and a later one does not; and with
// MaxInFlight requests unanswered the connection is not read further.
func TestAnswerOrderAndInFlight(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true, MaxInFlight: 1})
	rc := dialRaw(t, b.addr)
	rc.produce("o", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"}))
	// The clock starts before the send: the fetch's max wait starts when
	// the broker reads it, after that.
	start := time.Now()
	fc := rc.send(fetchReq("o", 1, 300, 1, 1<<20)) // waits: nothing past offset 1
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(9)
	mc := rc.send(meta)
	c1, _, err1 := rc.readFrame()
	c2, _, err2 := rc.readFrame()
	if err1 != nil || err2 != nil || c1 != fc || c2 != mc {
		t.Fatalf("answers %d, %d (%v %v), want %d then %d", c1, c2, err1, err2, fc, mc)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("fetch answered after %v, before its max wait", d)
	}
}

// Promise: a Fetch at the end waits up to its max wait and answers as
// soon as data arrives; MaxBytes bounds the answer but never below one
// batch.
func TestFetchWaitAndMaxBytes(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true})
	rc := dialRaw(t, b.addr)
	pc := dialRaw(t, b.addr)
	pc.produce("w", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "first"}))
	corr := rc.send(fetchReq("w", 1, 30_000, 1, 1<<20)) // woken by the data long before its wait
	start := time.Now()
	time.Sleep(50 * time.Millisecond)
	pc.produce("w", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "second"}))
	got, body, err := rc.readFrame()
	if err != nil || got != corr {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("waited %v after data arrived", d)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	if err := resp.ReadFrom(body[1:]); err != nil {
		t.Fatal(err)
	}
	if f := decodeBatches(t, resp.Topics[0].Partitions[0].RecordBatches); len(f) != 1 || string(f[0].rec.Value) != "second" {
		t.Fatalf("woken fetch got %+v", f)
	}
	for range 8 {
		pc.produce("w", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: string(make([]byte, 1000))}))
	}
	small := rc.do(fetchReq("w", 2, 0, 0, 1500)).(*kmsg.FetchResponse)
	f := decodeBatches(t, small.Topics[0].Partitions[0].RecordBatches)
	if len(f) == 0 || len(f) > 2 {
		t.Fatalf("MaxBytes 1500 gave %d records of 1000 bytes", len(f))
	}
	tiny := rc.do(fetchReq("w", 2, 0, 0, 1)).(*kmsg.FetchResponse)
	if f := decodeBatches(t, tiny.Topics[0].Partitions[0].RecordBatches); len(f) != 1 {
		t.Fatalf("MaxBytes 1 gave %d records, want one whole batch", len(f))
	}
	oor := rc.do(fetchReq("w", 99, 0, 0, 1500)).(*kmsg.FetchResponse)
	if p := oor.Topics[0].Partitions[0]; p.ErrorCode != errOffsetOutOfRange || p.HighWatermark != 10 {
		t.Fatalf("fetch past the end: %+v", p)
	}
}

// Promise: the request frames all connections hold together stay within
// MaxInFlightBytes: a frame that does not fit waits, unread, until an
// answer frees room (here: a Fetch's max wait), and then goes through.
func TestInFlightBytes(t *testing.T) {
	b := startBroker(t, Options{AutoCreateTopics: true, MaxFrame: 128 << 10, MaxInFlightBytes: 128 << 10})
	a, p := dialRaw(t, b.addr), dialRaw(t, b.addr)
	a.produce("ib", kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: "x"}))
	// The clock starts before the fetch is sent: it holds its unit for
	// its max wait from when the broker reads it, after that.
	const hold = 500 * time.Millisecond
	start := time.Now()
	fc := a.send(fetchReq("ib", 1, int32(hold/time.Millisecond), 1, 1<<20)) // holds one unit for 500 ms
	// The produce above answered, so its unit is back (a connection gives
	// a request's units back before writing its answer): one unit held
	// is the fetch's.
	for deadline := time.Now().Add(10 * time.Second); len(b.s.room.tokens) != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the fetch holds no room after 10 s (%d units held)", len(b.s.room.tokens))
		}
	}
	big := kafkaBatch(t, codecNone, false, -1, -1, -1, testRec{value: string(make([]byte, 100<<10))}) // two units
	if pr := p.produce("ib", big); pr.ErrorCode != 0 {
		t.Fatalf("produce: %d", pr.ErrorCode)
	}
	if d := time.Since(start); d < hold {
		t.Fatalf("the 100 KiB produce went through after %v, while the fetch held room", d)
	}
	if got, _, err := a.readFrame(); err != nil || got != fc {
		t.Fatalf("fetch answer: %d %v", got, err)
	}
}
