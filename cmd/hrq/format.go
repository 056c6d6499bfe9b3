package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/haraqa/haraqa/client"
)

// printer writes consumed messages to stdout, each followed by the
// delimiter: the value alone, a JSON object, or a template's output.
type printer struct {
	w     *bufio.Writer
	topic string
	delim string
	json  bool
	tmpl  *template.Template
	jbuf  bytes.Buffer
	jenc  *json.Encoder
}

func newPrinter(w *bufio.Writer, topic, delim string, asJSON bool, format string) (*printer, error) {
	p := &printer{w: w, topic: topic, delim: delim, json: asJSON}
	if asJSON && format != "" {
		return nil, usagef("--json and --format exclude each other")
	}
	if asJSON {
		p.jenc = json.NewEncoder(&p.jbuf)
		p.jenc.SetEscapeHTML(false)
	}
	if format != "" {
		t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(unescape(format))
		if err == nil {
			err = t.Execute(io.Discard, templateMessage{}) // unknown fields fail here, not on the first message
		}
		if err != nil {
			return nil, usagef("--format: %v", err)
		}
		p.tmpl = t
	}
	return p, nil
}

// print writes one message; a template that fails on it is a data error.
func (p *printer) print(m *client.Message) error {
	switch {
	case p.json:
		p.jbuf.Reset()
		if err := p.jenc.Encode(jsonOf(topicOf(p.topic, m), m)); err != nil {
			return dataErrorf("offset %d: encoding JSON: %v", m.Offset, err)
		}
		p.w.Write(bytes.TrimSuffix(p.jbuf.Bytes(), []byte{'\n'}))
	case p.tmpl != nil:
		if err := p.tmpl.Execute(p.w, templateOf(topicOf(p.topic, m), m)); err != nil {
			return dataErrorf("offset %d: --format: %v", m.Offset, err)
		}
	default:
		p.w.Write(m.Value)
	}
	_, err := p.w.WriteString(p.delim)
	return err
}

// jsonMessage is the --json form of a message. A key or value that is not
// valid UTF-8 is base64 and says so in key_encoding / value_encoding.
type jsonMessage struct {
	Topic         string       `json:"topic"`
	Offset        uint64       `json:"offset"`
	Timestamp     time.Time    `json:"timestamp"`   // the producer's, else the append time
	AppendTime    time.Time    `json:"append_time"` // when the broker stored the batch
	Key           *string      `json:"key"`         // null: no key
	KeyEncoding   string       `json:"key_encoding,omitempty"`
	Headers       []jsonHeader `json:"headers"`
	Value         string       `json:"value"`
	ValueEncoding string       `json:"value_encoding,omitempty"`
}

type jsonHeader struct {
	Key           string `json:"key"`
	Value         string `json:"value"`
	ValueEncoding string `json:"value_encoding,omitempty"`
}

func jsonOf(topic string, m *client.Message) jsonMessage {
	j := jsonMessage{Topic: topic, Offset: m.Offset, Timestamp: timestamp(m), AppendTime: m.Time.UTC(),
		Headers: make([]jsonHeader, len(m.Headers))}
	if m.Key != nil {
		k, enc := textOf(m.Key)
		j.Key, j.KeyEncoding = &k, enc
	}
	j.Value, j.ValueEncoding = textOf(m.Value)
	for i, h := range m.Headers {
		j.Headers[i].Key = h.Key
		j.Headers[i].Value, j.Headers[i].ValueEncoding = textOf(h.Value)
	}
	return j
}

// textOf returns b as a string if it is UTF-8, else as base64 and "base64".
func textOf(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// timestamp is the producer's time of m, or the broker's when it has none.
func timestamp(m *client.Message) time.Time {
	if !m.Timestamp.IsZero() {
		return m.Timestamp.UTC()
	}
	return m.Time.UTC()
}

// templateMessage is what a --format template sees.
type templateMessage struct {
	Topic      string
	Offset     uint64
	Timestamp  time.Time // the producer's, else AppendTime
	AppendTime time.Time
	Key        string
	HasKey     bool
	Value      string
	Headers    []templateHeader
}

type templateHeader struct{ Key, Value string }

// Header returns the value of the first header named key, or "".
func (m templateMessage) Header(key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

func templateOf(topic string, m *client.Message) templateMessage {
	t := templateMessage{Topic: topic, Offset: m.Offset, Timestamp: timestamp(m), AppendTime: m.Time.UTC(),
		Key: string(m.Key), HasKey: m.Key != nil, Value: string(m.Value)}
	for _, h := range m.Headers {
		t.Headers = append(t.Headers, templateHeader{Key: h.Key, Value: string(h.Value)})
	}
	return t
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"hex":    func(s string) string { return hex.EncodeToString([]byte(s)) },
	"quote":  strconv.Quote,
	"rfc3339": func(t time.Time) string {
		return t.Format(time.RFC3339Nano)
	},
}

// unescape turns the escapes \n \t \r \0 \\ and \xHH of a flag value into
// their bytes; any other backslash stays as it is.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case '\\':
			b.WriteByte('\\')
		case 'x':
			if v, err := strconv.ParseUint(s[i+1:min(i+3, len(s))], 16, 8); err == nil && i+3 <= len(s) {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
			b.WriteString(`\x`)
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// topicOf is the topic to print for m: its own when it carries one (a
// consume of several topics).
func topicOf(topic string, m *client.Message) string {
	if m.Topic != "" {
		return m.Topic
	}
	return topic
}
