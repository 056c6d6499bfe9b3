package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/haraqa/haraqa/client"
	"github.com/spf13/pflag"
)

// tlsFlags are the TLS settings for a tls://HOST:PORT broker address.
type tlsFlags struct {
	ca, cert, key string
	insecure      bool
}

func (a *app) addTLSFlags(pf *pflag.FlagSet) {
	pf.StringVar(&a.tls.ca, "tls-ca", "", "PEM file of the CA certificates to trust for a tls:// address (default: the system's)")
	pf.StringVar(&a.tls.cert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	pf.StringVar(&a.tls.key, "tls-key", "", "PEM private key of --tls-cert")
	pf.BoolVar(&a.tls.insecure, "tls-insecure", false, "do not verify the broker's certificate (testing only)")
}

// tlsOptions returns the client option for the TLS flags, none when no
// TLS flag is set and the address is not tls://.
func (a *app) tlsOptions() ([]client.Option, error) {
	f := a.tls
	set := f.ca != "" || f.cert != "" || f.key != "" || f.insecure
	addr := a.address()
	if !strings.HasPrefix(addr, "tls://") {
		if set {
			return nil, usageError{err: fmt.Errorf("--tls-* flags need a tls://HOST:PORT broker address, not %q", addr), cmd: "hrq"}
		}
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: f.insecure}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, usageError{err: fmt.Errorf("--tls-ca: %v", err), cmd: "hrq"}
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageError{err: fmt.Errorf("--tls-ca %s: no PEM certificate in it", f.ca), cmd: "hrq"}
		}
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usageError{err: fmt.Errorf("--tls-cert and --tls-key go together"), cmd: "hrq"}
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, usageError{err: fmt.Errorf("--tls-cert/--tls-key: %v", err), cmd: "hrq"}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return []client.Option{client.WithTLSConfig(cfg)}, nil
}
