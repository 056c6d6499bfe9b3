package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/haraqa/haraqa/record"
)

// jsonMessage is one message object of an application/json produce body.
// The value is "value" (a JSON string is stored as its text; any other
// JSON value as its JSON encoding) or "value_b64" (standard base64, for
// binary values); the key likewise "key" or "key_b64". The timestamp is
// Unix nanoseconds (a number) or an RFC 3339 string.
type jsonMessage struct {
	Value     json.RawMessage   `json:"value"`
	ValueB64  []byte            `json:"value_b64"`
	Key       *string           `json:"key"`
	KeyB64    []byte            `json:"key_b64"`
	Headers   map[string]string `json:"headers"`
	Timestamp json.RawMessage   `json:"timestamp"`
}

// readJSON splits an application/json body, an array of strings or
// message objects, into messages.
func (a *API) readJSON(in io.Reader, s *sink) error {
	dec := json.NewDecoder(in)
	tok, err := dec.Token()
	if err != nil {
		return jsonErr(0, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return &inputError{msg: "application/json wants an array of strings or message objects"}
	}
	var raw json.RawMessage
	var hdrs []record.MessageHeader
	for n := 1; dec.More(); n++ {
		raw = raw[:0]
		if err := dec.Decode(&raw); err != nil {
			return jsonErr(n, err)
		}
		if len(raw) > a.opts.MaxLineBytes {
			return &inputError{line: n, msg: fmt.Sprintf("element longer than the %d-byte limit", a.opts.MaxLineBytes)}
		}
		if s.b.Len() >= a.opts.MaxMessages {
			return &inputError{line: n, msg: fmt.Sprintf("more than %d messages in one request", a.opts.MaxMessages), tooLarge: true}
		}
		switch raw[0] {
		case '"':
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return jsonErr(n, err)
			}
			err = s.b.Add([]byte(v))
		case '{':
			var m jsonMessage
			od := json.NewDecoder(bytes.NewReader(raw))
			od.DisallowUnknownFields()
			if err := od.Decode(&m); err != nil {
				return jsonErr(n, err)
			}
			hdrs, err = m.add(s.b, hdrs[:0])
			if err != nil {
				return &inputError{line: n, msg: err.Error()}
			}
		default:
			return &inputError{line: n, msg: "want a string or a message object"}
		}
		if err != nil {
			return err
		}
		if err := s.grew(); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonErr(0, err)
	}
	if dec.More() {
		return &inputError{msg: "data after the array"}
	}
	// Anything but whitespace after the closing bracket is an error.
	if _, err := dec.Token(); err != io.EOF {
		return &inputError{msg: "data after the array"}
	}
	return nil
}

// jsonErr names the element a JSON decode failed in; read errors of the
// body (limits, timeouts) pass through unchanged.
func jsonErr(n int, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se), errors.As(err, &te), err == io.ErrUnexpectedEOF, err == io.EOF:
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return &inputError{line: n, msg: "malformed JSON: " + err.Error()}
	}
	if err != nil && !isReadErr(err) {
		return &inputError{line: n, msg: "malformed JSON: " + err.Error()}
	}
	return err
}

// isReadErr tells a failure of the body's reader from a JSON error.
func isReadErr(err error) bool {
	var ie *inputError
	return errors.Is(err, errDecodedTooLarge) || errors.Is(err, errSlowBody) || errors.As(err, &ie) ||
		errors.Is(err, errBusy) || isMaxBytes(err) || isTimeout(err)
}

// add appends the message to b; hdrs is scratch for its headers.
func (m *jsonMessage) add(b *record.Builder, hdrs []record.MessageHeader) ([]record.MessageHeader, error) {
	var value []byte
	switch {
	case len(m.Value) > 0 && string(m.Value) != "null" && m.ValueB64 != nil:
		return hdrs, errors.New("both value and value_b64")
	case m.ValueB64 != nil:
		value = m.ValueB64
	case len(m.Value) > 0 && m.Value[0] == '"':
		var v string
		if err := json.Unmarshal(m.Value, &v); err != nil {
			return hdrs, err
		}
		value = []byte(v)
	case len(m.Value) > 0 && string(m.Value) != "null":
		value = m.Value // a JSON object, array, number or boolean: its JSON text
	default:
		return hdrs, errors.New("message object without value or value_b64")
	}
	var key []byte
	switch {
	case m.Key != nil && m.KeyB64 != nil:
		return hdrs, errors.New("both key and key_b64")
	case m.Key != nil:
		key = []byte(*m.Key)
	default:
		key = m.KeyB64
	}
	ts, err := parseTimestamp(m.Timestamp)
	if err != nil {
		return hdrs, err
	}
	if key == nil && len(m.Headers) == 0 && ts == 0 {
		return hdrs, b.Add(value)
	}
	for k, v := range m.Headers {
		hdrs = append(hdrs, record.MessageHeader{Key: k, Value: []byte(v)})
	}
	// A map has no order: the headers are stored sorted by key.
	sort.Slice(hdrs, func(i, j int) bool { return hdrs[i].Key < hdrs[j].Key })
	return hdrs, b.AddMessage(ts, key, value, hdrs)
}

// parseTimestamp reads a message's timestamp: Unix nanoseconds or RFC
// 3339; 0 when absent.
func parseTimestamp(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("timestamp: want Unix nanoseconds or RFC 3339: %v", err)
		}
		return tm.UnixNano(), nil
	}
	var ns int64
	if err := json.Unmarshal(raw, &ns); err != nil {
		return 0, fmt.Errorf("timestamp: want Unix nanoseconds (an integer) or RFC 3339: %v", err)
	}
	return ns, nil
}
