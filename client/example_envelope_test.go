package client_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/haraqa/haraqa/client"
)

// KMS is the part of a key management service an envelope Transformer
// needs: it wraps and unwraps data keys under a master key that never
// leaves the service (AWS KMS Encrypt/Decrypt, GCP KMS, Vault transit).
type KMS interface {
	Wrap(dataKey []byte) ([]byte, error)
	Unwrap(wrapped []byte) ([]byte, error)
}

// Envelope seals each value with a fresh AES-256 data key and stores the
// data key wrapped by the KMS in a header: the broker holds ciphertext
// and wrapped keys only, and reading needs the KMS's permission. (A real
// one would cache data keys to save KMS calls.)
type Envelope struct{ KMS KMS }

const wrappedKeyHeader = "kms-wrapped-key"

func (e Envelope) Seal(topic string, m *client.Message) error {
	key := make([]byte, 32)
	rand.Read(key)
	wrapped, err := e.KMS.Wrap(key)
	if err != nil {
		return err
	}
	aead, _ := newGCM(key)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(m.Value)+aead.Overhead())
	rand.Read(nonce)
	m.Value = aead.Seal(nonce, nonce, m.Value, []byte(topic))
	m.Headers = append(m.Headers, client.Header{Key: wrappedKeyHeader, Value: wrapped})
	return nil
}

func (e Envelope) Open(dst []byte, topic string, m *client.Message) ([]byte, error) {
	i := slices.IndexFunc(m.Headers, func(h client.Header) bool { return h.Key == wrappedKeyHeader })
	if i < 0 {
		return dst, client.ErrNotSealed
	}
	key, err := e.KMS.Unwrap(m.Headers[i].Value)
	if err != nil {
		return dst, fmt.Errorf("%w: %v", client.ErrKeyNotFound, err)
	}
	aead, _ := newGCM(key)
	n := aead.NonceSize()
	if len(m.Value) < n {
		return dst, client.ErrDecrypt
	}
	out, err := aead.Open(dst, m.Value[:n], m.Value[n:], []byte(topic))
	if err != nil {
		return dst, client.ErrDecrypt
	}
	return out, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// localKMS stands in for the service in this example: it wraps data keys
// with a master key held in memory.
type localKMS struct{ master []byte }

func (k localKMS) Wrap(dataKey []byte) ([]byte, error) {
	return Envelope{}.sealWith(k.master, dataKey)
}

func (k localKMS) Unwrap(wrapped []byte) ([]byte, error) {
	aead, _ := newGCM(k.master)
	n := aead.NonceSize()
	if len(wrapped) < n {
		return nil, errors.New("wrapped key too short")
	}
	return aead.Open(nil, wrapped[:n], wrapped[n:], nil)
}

func (Envelope) sealWith(key, plain []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// Envelope encryption with a KMS as a Transformer: pass it to Dial with
// client.WithTransformer(Envelope{KMS: kms}) and every produce seals, every
// consume opens. Here Seal and Open are called directly.
func ExampleTransformer_envelope() {
	t := Envelope{KMS: localKMS{master: make([]byte, 32)}}
	m := client.Message{Value: []byte("card 4111-1111")}
	if err := t.Seal("payments", &m); err != nil {
		panic(err)
	}
	fmt.Println("stored value holds the plaintext:", string(m.Value) == "card 4111-1111")
	plain, err := t.Open(nil, "payments", &m)
	fmt.Println(string(plain), err)
	_, err = t.Open(nil, "other-topic", &m) // bound to its topic
	fmt.Println(err)
	// Output:
	// stored value holds the plaintext: false
	// card 4111-1111 <nil>
	// client: message failed to decrypt (tampered or wrong key)
}
