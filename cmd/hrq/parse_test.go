package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/netproto"
)

func TestParsePosition(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want position
	}{
		{"beginning", position{kind: posBeginning}},
		{"start", position{kind: posBeginning}},
		{"END", position{kind: posEnd}},
		{"0", position{kind: posOffset}},
		{"42", position{kind: posOffset, n: 42}},
		{"-10", position{kind: posFromEnd, n: 10}},
		{"@2024-04-30T10:00:00Z", position{kind: posTime, t: time.Date(2024, 4, 30, 10, 0, 0, 0, time.UTC)}},
		{"@2024-04-30T10:00:00.5+02:00", position{kind: posTime, t: time.Date(2024, 4, 30, 8, 0, 0, 5e8, time.UTC)}},
		{"@-90m", position{kind: posTime, t: now.Add(-90 * time.Minute)}},
	} {
		got, err := parsePosition(c.in, now)
		if err != nil || got.kind != c.want.kind || got.n != c.want.n || !got.t.Equal(c.want.t) {
			t.Errorf("parsePosition(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x", "1.5", "-", "-x", "@", "@yesterday", "@+1h", "@2024-04-30", "18446744073709551616"} {
		if _, err := parsePosition(bad, now); err == nil {
			t.Errorf("parsePosition(%q) succeeded", bad)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		``:          ``,
		`plain`:     `plain`,
		`\n`:        "\n",
		`a\tb\r\n`:  "a\tb\r\n",
		`\0`:        "\x00",
		`\\n`:       `\n`,
		`\x1e`:      "\x1e",
		`\xZZ`:      `\xZZ`,
		`\x4`:       `\x4`,
		`\q`:        `\q`,
		`end\`:      `end\`,
		`ü\ü`:       `ü\ü`,
		`{{.V}}\n,`: "{{.V}}\n,",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitInput(t *testing.T) {
	for _, c := range []struct {
		in, delim string
		want      []string
	}{
		{"", "\n", nil},
		{"a\nb\n", "\n", []string{"a", "b"}},
		{"a\nb", "\n", []string{"a", "b"}},
		{"\n\na\n", "\n", []string{"", "", "a"}},
		{"a||b||", "||", []string{"a", "b"}},
		{"a|b||c", "||", []string{"a|b", "c"}},
		{"x\x00y", "\x00", []string{"x", "y"}},
	} {
		var got []string
		err := splitInput(strings.NewReader(c.in), []byte(c.delim), func(m []byte) error {
			got = append(got, string(m))
			return nil
		})
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) || len(got) != len(c.want) {
			t.Errorf("split %q at %q: %q, %v; want %q", c.in, c.delim, got, err, c.want)
		}
	}
}

func TestPrinterJSON(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	p, err := newPrinter(w, "t", "\n", true, "")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	msgs := []client.Message{
		{Offset: 7, Time: at, Value: []byte("<a & b>")},
		{Offset: 8, Time: at, Timestamp: at.Add(-time.Hour), Key: []byte{0xff}, Value: []byte("v"),
			Headers: []client.Header{{Key: "h", Value: []byte("1")}}},
	}
	for i := range msgs {
		if err := p.print(&msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	want := `{"topic":"t","offset":7,"timestamp":"2024-05-01T12:00:00Z","append_time":"2024-05-01T12:00:00Z","key":null,"headers":[],"value":"<a & b>"}
{"topic":"t","offset":8,"timestamp":"2024-05-01T11:00:00Z","append_time":"2024-05-01T12:00:00Z","key":"/w==","key_encoding":"base64","headers":[{"key":"h","value":"1"}],"value":"v"}
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDescribeErrors(t *testing.T) {
	a := &app{addr: "unix:///x.sock"}
	wrap := func(err error) error { return runError{err} }
	for _, c := range []struct {
		err  error
		code int
		want string
	}{
		{errors.New("unknown command \"x\" for \"hrq\"\nRun 'hrq --help' for usage."), exitUsage, `unknown command "x" for "hrq" (see hrq --help)`},
		{wrap(usagef("bad")), exitUsage, "bad"},
		{wrap(context.Canceled), exitInterrupted, "interrupted"},
		{wrap(dialError{addr: "unix:///x.sock", err: fmt.Errorf("%w: boom", client.ErrDisconnected)}), exitConn, "cannot connect to unix:///x.sock: boom"},
		{wrap(onTopic("t", fmt.Errorf("%w: EOF", client.ErrDisconnected))), exitConn, "lost the connection to unix:///x.sock: EOF"},
		{wrap(dialError{err: &client.Error{Code: netproto.CodeUnauthorized}}), exitConn, "refused the token"},
		{wrap(onTopic("t", &client.Error{Code: netproto.CodeTopicNotFound})), exitNotFound, `topic "t" not found`},
		{wrap(onTopic("t", &client.Error{Code: netproto.CodeOffsetOutOfRange, Message: "engine: offset 9 out of range", Start: 1, End: 5})), exitNotFound, `topic "t": offset 9 out of range: the topic holds offsets [1, 5)`},
		{wrap(onTopic("a/b", &client.Error{Code: netproto.CodeBadTopicName})), exitUsage, `bad topic name "a/b"`},
		{wrap(onTopic("t", &client.Error{Code: netproto.CodeCorrupt, Message: "x"})), exitData, "corrupt"},
		{wrap(onTopic("t", fmt.Errorf("%w: big", client.ErrMessageTooLarge))), exitData, "too large"},
		{wrap(onTopic("t", &client.Error{Code: netproto.CodeTooBusy, Retriable: true})), exitError, "try again"},
		{wrap(onTopic("t", &client.Error{Code: netproto.CodeStorage, Retriable: true, Message: "write: no space left on device"})), exitStorage, "cannot store messages: write: no space left on device"},
		{wrap(errors.New("other")), exitError, "other"},
	} {
		code, msg := a.describe(c.err)
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("describe(%v) = %d %q; want %d and %q", c.err, code, msg, c.code, c.want)
		}
	}
}

func TestAddress(t *testing.T) {
	t.Setenv("HARAQA_ADDR", "")
	for flag, want := range map[string]string{
		"":                   defaultAddr,
		"tcp://h:1":          "tcp://h:1",
		"h:1":                "h:1",
		"unix:///tmp/s.sock": "unix:///tmp/s.sock",
		"/tmp/s.sock":        "unix:///tmp/s.sock",
		"./s.sock":           "unix://./s.sock",
	} {
		if got := (&app{addr: flag}).address(); got != want {
			t.Errorf("--addr %q: %q, want %q", flag, got, want)
		}
	}
	t.Setenv("HARAQA_ADDR", "tcp://env:2")
	if got := (&app{}).address(); got != "tcp://env:2" {
		t.Errorf("HARAQA_ADDR: %q", got)
	}
	if got := (&app{addr: "tcp://flag:3"}).address(); got != "tcp://flag:3" {
		t.Errorf("the flag does not win over HARAQA_ADDR: %q", got)
	}
}
