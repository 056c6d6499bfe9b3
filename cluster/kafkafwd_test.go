package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// A forwarded Kafka group request reaches the coordinating node with the
// client it came from: a version-2 hello carries the client's key, a
// request without one goes as version 1 (which nodes of the version
// before serve, and which this node serves as naming no client), a key
// past its bound is neither sent nor read, and a version this node does
// not know is refused, not misread.
func TestKafkaFwdCarriesTheClientKey(t *testing.T) {
	frame := []byte("kafka request frame")
	read := func(b []byte) (string, []byte, error) {
		t.Helper()
		if binary.LittleEndian.Uint32(b) != kafkaFwdMagic || binary.LittleEndian.Uint64(b[8:]) != 3 {
			t.Fatalf("hello %x", b[:16])
		}
		return readKafkaFwd(bufio.NewReader(bytes.NewReader(b[16:])), binary.LittleEndian.Uint32(b[4:]))
	}
	for _, key := range []string{"", "token:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "subject:CN=app,O=acme", strings.Repeat("k", maxKafkaFwdKey)} {
		b := kafkaFwdRequest(3, key, frame)
		wantVersion := uint32(2)
		if key == "" {
			wantVersion = 1
		}
		if v := binary.LittleEndian.Uint32(b[4:]); v != wantVersion {
			t.Errorf("key %.20q: version %d, want %d", key, v, wantVersion)
		}
		got, f, err := read(b)
		if err != nil || got != key || !bytes.Equal(f, frame) {
			t.Errorf("key %.20q: read %.20q %q %v", key, got, f, err)
		}
	}
	// Version 1 as the version before wrote it: no key.
	v1 := binary.LittleEndian.AppendUint32(nil, kafkaFwdMagic)
	v1 = binary.LittleEndian.AppendUint32(v1, 1)
	v1 = binary.LittleEndian.AppendUint64(v1, 3)
	v1 = binary.LittleEndian.AppendUint32(v1, uint32(len(frame)))
	v1 = append(v1, frame...)
	if got, f, err := read(v1); err != nil || got != "" || !bytes.Equal(f, frame) {
		t.Errorf("version 1: %q %q %v", got, f, err)
	}
	// A key length past the bound, or of 0, in a version-2 hello.
	for _, n := range []int{0, maxKafkaFwdKey + 1, 0xffff} {
		b := kafkaFwdRequest(3, "k", frame)
		binary.LittleEndian.PutUint16(b[16:], uint16(n))
		if _, _, err := read(b); err == nil || !strings.Contains(err.Error(), "client key") {
			t.Errorf("a key of %d bytes read: %v", n, err)
		}
	}
	// A version this node does not know.
	b := kafkaFwdRequest(3, "k", frame)
	binary.LittleEndian.PutUint32(b[4:], 3)
	if _, _, err := read(b); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("version 3 read: %v", err)
	}
	// The sending side refuses a key past the bound.
	n := &Node{}
	if _, err := n.forwardKafka(t.Context(), 1, strings.Repeat("k", maxKafkaFwdKey+1), frame); err == nil {
		t.Errorf("a key of %d bytes forwarded", maxKafkaFwdKey+1)
	}
}
