package client

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
)

// Transformer changes message values on their way to the broker and back
// (WithTransformer): Seal before a message is buffered or sent, Open on
// every message read. AESGCM is one: client-side encryption. Both methods
// may be called from many goroutines at once.
type Transformer interface {
	// Seal replaces m.Value with the value to store. It may append
	// headers (a key id) to m.Headers; it must not write the elements
	// already there, nor keep m.Value (the sender's).
	Seal(topic string, m *Message) error
	// Open appends the original value of the stored message m to dst and
	// returns the result, or fails. m and its fields alias the read
	// buffer: read them, do not keep them.
	Open(dst []byte, topic string, m *Message) ([]byte, error)
}

// WithTransformer makes the Client seal the value of every message it
// produces (Produce, ProduceMessages, Producers) with t and open the value
// of every message it consumes (Consume, Consumers). ProduceBatch sends its
// batch as it is. A message Open refuses is not yielded with garbage: its
// Value is nil and its error, a *TransformError, is Messages.Err(i) (a
// Consumer yields it with the message and goes on).
func WithTransformer(t Transformer) Option {
	return func(c *config) {
		if t == nil {
			c.badf("WithTransformer: nil Transformer")
		}
		c.transformer = t
	}
}

// TransformError is a message the Transformer could not seal or open:
// Topic, Offset (0 when sealing) and the Transformer's error (for AESGCM:
// ErrKeyNotFound, ErrDecrypt, ErrNotSealed).
type TransformError struct {
	Topic  string
	Offset uint64
	Err    error
}

func (e *TransformError) Error() string {
	if e.Offset == 0 {
		return fmt.Sprintf("client: topic %q: %v", e.Topic, e.Err)
	}
	return fmt.Sprintf("client: topic %q offset %d: %v", e.Topic, e.Offset, e.Err)
}

func (e *TransformError) Unwrap() error { return e.Err }

// Errors of AESGCM.
var (
	// ErrKeyNotFound: the message was sealed with a key id the AESGCM
	// does not hold (a key not given to this consumer, or retired).
	ErrKeyNotFound = errors.New("client: encryption key not found")
	// ErrDecrypt: the ciphertext does not authenticate under its key (it
	// was altered, sealed for another topic, or the key is wrong).
	ErrDecrypt = errors.New("client: message failed to decrypt (tampered or wrong key)")
	// ErrNotSealed: the message carries no key id header: it was not
	// encrypted by an AESGCM.
	ErrNotSealed = errors.New("client: message is not encrypted")
)

// KeyIDHeader is the header that carries the id of the key an AESGCM
// sealed a message with.
const KeyIDHeader = "haraqa-key-id"

// AESGCM is a Transformer that encrypts values with AES-256-GCM. Each
// message is sealed under the current key with a fresh random 12-byte
// nonce; the stored value is nonce || ciphertext || 16-byte tag, the key's
// id is in the KeyIDHeader header, and the topic and key id are
// authenticated with it (a value copied to another topic does not open).
// Any key it holds opens the messages sealed with it, so keys rotate: add
// the new key, make it current, keep the old ones for as long as messages
// sealed with them are read.
type AESGCM struct {
	current string
	curID   []byte // current's bytes, the header value of every sealed message (read only)
	keys    map[string]cipher.AEAD
}

// NewAESGCM returns an AESGCM holding keys (id → 32-byte key) that seals
// with keys[current].
func NewAESGCM(keys map[string][]byte, current string) (*AESGCM, error) {
	a := &AESGCM{current: current, curID: []byte(current), keys: make(map[string]cipher.AEAD, len(keys))}
	for id, k := range keys {
		if id == "" || len(id) > 255 {
			return nil, fmt.Errorf("client: AES-GCM key id %q: want 1..255 bytes", id)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("client: AES-GCM key %q: %d bytes, want 32 (AES-256)", id, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		a.keys[id] = aead
	}
	if _, ok := a.keys[current]; !ok {
		return nil, fmt.Errorf("client: AES-GCM current key %q: %w", current, ErrKeyNotFound)
	}
	return a, nil
}

const gcmNonce = 12

// aad appends to b what a sealed value is bound to: the topic and the
// key id.
func aad(b []byte, topic string, id []byte) []byte {
	b = append(b, topic...)
	b = append(b, 0)
	return append(b, id...)
}

// Seal encrypts m.Value under the current key.
func (a *AESGCM) Seal(topic string, m *Message) error {
	aead := a.keys[a.current]
	out := make([]byte, gcmNonce, gcmNonce+len(m.Value)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return err
	}
	m.Value = aead.Seal(out, out[:gcmNonce], m.Value, aad(make([]byte, 0, len(topic)+1+len(a.curID)), topic, a.curID))
	m.Headers = append(m.Headers, Header{Key: KeyIDHeader, Value: a.curID})
	return nil
}

// Open decrypts m.Value with the key its header names.
func (a *AESGCM) Open(dst []byte, topic string, m *Message) ([]byte, error) {
	i := slices.IndexFunc(m.Headers, func(h Header) bool { return h.Key == KeyIDHeader })
	if i < 0 {
		return dst, ErrNotSealed
	}
	id := m.Headers[i].Value
	aead, ok := a.keys[string(id)]
	if !ok {
		return dst, fmt.Errorf("%w: key id %q", ErrKeyNotFound, id)
	}
	if len(m.Value) < gcmNonce+aead.Overhead() {
		return dst, ErrDecrypt
	}
	out, err := aead.Open(dst, m.Value[:gcmNonce], m.Value[gcmNonce:], aad(make([]byte, 0, len(topic)+1+len(id)), topic, id))
	if err != nil {
		return dst, fmt.Errorf("%w: key id %q", ErrDecrypt, id)
	}
	return out, nil
}
