package slap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// TLSFiles are the files a client authenticates with over HTTPS, as
// slapos.cfg names them: the node's (or a person's) certificate and key,
// and the CA that signed the master's certificate.
type TLSFiles struct {
	CertFile, KeyFile string
	// CAFile verifies the master; empty means the system's roots.
	// SlapOS's own client never verifies the master (requests'
	// verify=False); slapnode does.
	CAFile string
}

// HTTPClient returns an HTTP client presenting the certificate of f and
// verifying the master with f.CAFile (or the system's roots).
func (f TLSFiles) HTTPClient() (*http.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Timeout: 60 * time.Second, Transport: tr}, nil
}

// Config is the tls.Config of f.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both a certificate file and a key file (cert_file %q, key_file %q)", f.CertFile, f.KeyFile)
	}
	if f.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("master CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("master CA %s: no PEM certificate in it", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// WithTLS authenticates with the certificate of f and verifies the master
// with its CA.
func WithTLS(f TLSFiles) ClientOption {
	return func(c *Client) {
		h, err := f.HTTPClient()
		if err != nil {
			c.optErr = err
			return
		}
		c.http, c.hasCert = h, f.CertFile != ""
	}
}

// CertificateError is a TLS handshake that failed over certificates: the
// master wants one and the client has none, refuses the client's, or the
// client does not trust the master's. It is an ErrAuth, not an
// unreachable master: retrying will not help.
type CertificateError struct {
	Master string
	Reason string // what to do
	Err    error
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("master %s: %s (%v)", e.Master, e.Reason, e.Err)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// Is makes a CertificateError an ErrAuth.
func (e *CertificateError) Is(target error) bool { return target == ErrAuth }

// certificateError recognises a certificate failure in a transport error.
func (c *Client) certificateError(err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return &CertificateError{Master: c.base, Err: err,
			Reason: "its certificate is not trusted: give the CA that signed it (slapos.cfg master_ca_file, --ca; for slapnode's master: the ca.crt beside its database)"}
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" {
		return nil
	}
	alert := oe.Err.Error()
	switch {
	case !c.hasCert && (strings.Contains(alert, "certificate required") || strings.Contains(alert, "bad certificate") || strings.Contains(alert, "handshake failure")):
		return &CertificateError{Master: c.base, Err: err,
			Reason: "it requires a client certificate and this client has none: set key_file and cert_file in slapos.cfg (slapnode node register writes them), or give --cert and --key"}
	case strings.Contains(alert, "certificate"), strings.Contains(alert, "handshake failure"):
		return &CertificateError{Master: c.base, Err: err,
			Reason: "it refused this client's certificate (revoked, expired, or not signed by a CA it trusts): register the node again (slapnode node register) or ask the master's operator"}
	}
	return nil
}
