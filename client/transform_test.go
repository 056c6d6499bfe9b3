package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/haraqa/haraqa/client"
	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

func aesKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newAES(t *testing.T, keys map[string][]byte, current string) *client.AESGCM {
	t.Helper()
	a, err := client.NewAESGCM(keys, current)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readAll consumes [0, end) of topic and returns each message's value
// and error.
func readAll(t *testing.T, c *client.Client, topic string) ([]string, []error) {
	t.Helper()
	var buf client.ConsumeBuffer
	msgs, err := c.Consume(testCtx(t), topic, 0, 0, &buf)
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	var errs []error
	for i := range msgs.Len() {
		vals = append(vals, string(msgs.At(i).Value))
		errs = append(errs, msgs.Err(i))
	}
	return vals, errs
}

// Values sealed with AES-256-GCM come back as they were sent, through
// every produce path; the broker's segment files never hold the
// plaintext; messages sealed under an older key stay readable after the
// key rotated; a reader without the key, a tampered ciphertext and a
// message that was never sealed each give their documented error for that
// message alone, never a garbled value.
func TestAESGCMTransformer(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, "tcp", engine.Options{Dir: dir, Fsync: engine.FsyncNever}, server.Options{})
	ctx := testCtx(t)
	k1 := map[string][]byte{"k1": aesKey(1)}
	both := map[string][]byte{"k1": aesKey(1), "k2": aesKey(2)}
	old := b.dial(client.WithTransformer(newAES(t, k1, "k1")))
	cur := b.dial(client.WithTransformer(newAES(t, both, "k2")))
	raw := b.dial()
	createTopic(t, raw, "secret")
	secret := func(i int) string { return fmt.Sprintf("PLAINTEXT-SECRET-%03d", i) }

	// Round trip, under k1, through Produce, ProduceMessages and a Producer.
	if _, err := old.Produce(ctx, "secret", []byte(secret(0)), []byte(secret(1))); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ProduceMessages(ctx, "secret", client.Message{Key: []byte("k"), Value: []byte(secret(2)),
		Headers: []client.Header{{Key: "h", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	// Rotation: k2 is current for the next writer.
	p := client.NewProducer(cur, "secret")
	for i := 3; i < 6; i++ {
		if err := p.Send(ctx, []byte(secret(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	vals, errs := readAll(t, cur, "secret")
	for i := range 6 {
		if vals[i] != secret(i) || errs[i] != nil {
			t.Fatalf("message %d: %q %v", i, vals[i], errs[i])
		}
	}
	var buf client.ConsumeBuffer
	msgs, _ := cur.Consume(ctx, "secret", 2, 1, &buf)
	if m := msgs.At(0); string(m.Key) != "k" || len(m.Headers) != 2 || m.Headers[0].Key != "h" || m.Headers[1].Key != client.KeyIDHeader {
		t.Fatalf("key and headers: %q %v", m.Key, m.Headers)
	}

	// A reader that holds only k1 opens the k1 messages and names the
	// missing key for the k2 ones.
	vals, errs = readAll(t, old, "secret")
	for i := range 6 {
		switch {
		case i < 3 && (vals[i] != secret(i) || errs[i] != nil):
			t.Fatalf("k1 reader, message %d: %q %v", i, vals[i], errs[i])
		case i >= 3 && (!errors.Is(errs[i], client.ErrKeyNotFound) || vals[i] != ""):
			t.Fatalf("k1 reader, message %d sealed with k2: %q %v", i, vals[i], errs[i])
		}
	}
	var te *client.TransformError
	if !errors.As(errs[4], &te) || te.Topic != "secret" || te.Offset != 4 {
		t.Fatalf("error: %v", errs[4])
	}

	// Tamper: copy message 0 as stored, flip a ciphertext byte, store it
	// as message 6; add a message that was never sealed as 7.
	rmsgs, err := raw.Consume(ctx, "secret", 0, 1, &buf)
	if err != nil {
		t.Fatal(err)
	}
	m := rmsgs.At(0)
	if bytes.Contains(m.Value, []byte("PLAINTEXT")) {
		t.Fatal("stored value holds the plaintext")
	}
	bad := client.Message{Value: bytes.Clone(m.Value), Headers: []client.Header{{Key: m.Headers[0].Key, Value: bytes.Clone(m.Headers[0].Value)}}}
	bad.Value[len(bad.Value)/2] ^= 1
	if _, err := raw.ProduceMessages(ctx, "secret", bad, client.Message{Value: []byte("never sealed")}); err != nil {
		t.Fatal(err)
	}
	cs := client.NewConsumer(cur, "secret", 5)
	want := []struct {
		value string
		err   error
	}{{secret(5), nil}, {"", client.ErrDecrypt}, {"", client.ErrNotSealed}}
	rctx, cancel := context.WithCancel(ctx)
	i := 0
	for m, err := range cs.Messages(rctx) {
		if string(m.Value) != want[i].value || !errors.Is(err, want[i].err) || m.Offset != uint64(5+i) {
			t.Fatalf("consumer at %d: %q %v", 5+i, m.Value, err)
		}
		if i++; i == len(want) {
			cancel()
		}
	}
	cancel()
	if i != len(want) {
		t.Fatalf("consumer yielded %d", i)
	}

	// The broker's files never hold the plaintext.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	files := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files++
		if bytes.Contains(data, []byte("PLAINTEXT-SECRET")) {
			t.Errorf("%s holds the plaintext", path)
		}
		if bytes.Contains(data, []byte("never sealed")) {
			files += 1000 // the unsealed one is there: the grep finds what is stored
		}
		return nil
	})
	if files < 1000 {
		t.Fatalf("grep found no stored message in %d files", files)
	}
}

// NewAESGCM refuses keys that are not AES-256 and a current key it does
// not hold.
func TestNewAESGCMChecksKeys(t *testing.T) {
	if _, err := client.NewAESGCM(map[string][]byte{"a": make([]byte, 16)}, "a"); err == nil {
		t.Error("16-byte key taken")
	}
	if _, err := client.NewAESGCM(map[string][]byte{"a": aesKey(1)}, "b"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Errorf("missing current key: %v", err)
	}
}
