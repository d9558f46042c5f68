package slap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
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

// CertificateError returns a *CertificateError when err, from a call of
// c, failed over certificates, and nil otherwise.
func (c *Client) CertificateError(ctx context.Context, err error) error {
	return c.certificateError(ctx, err)
}

// certificateError recognises a certificate failure in a transport error.
// With TLS 1.3 a server refusing the client's certificate says so after
// the client's side of the handshake is done, so the client may be writing
// its request when the connection closes and see only a broken pipe: over
// https, a transport error is checked again with a bare handshake and read
// (probeTLS), which receives the server's alert.
func (c *Client) certificateError(ctx context.Context, err error) error {
	if cerr := CertificateProblem(c.base, c.hasCert, err); cerr != nil {
		return cerr
	}
	if !strings.HasPrefix(c.base, "https://") || ctx.Err() != nil {
		return nil
	}
	var cfg *tls.Config
	if tr, ok := c.http.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	} else if c.http.Transport == nil {
		cfg = &tls.Config{}
	} else {
		return nil
	}
	if perr := probeTLS(ctx, c.base, cfg); perr != nil {
		return CertificateProblem(c.base, c.hasCert, perr)
	}
	return nil
}

// probeTLS opens a TLS connection to the master and reads from it for a
// moment, and returns what the server said if it closed with an alert.
func probeTLS(ctx context.Context, base string, cfg *tls.Config) error {
	u, err := url.Parse(base)
	if err != nil {
		return nil
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"http/1.1"}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	return err
}

// CertificateProblem returns a *CertificateError when err, from a request
// to master, is a TLS handshake that failed over certificates (hasCert:
// the client presented one), and nil otherwise.
func CertificateProblem(master string, hasCert bool, err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return &CertificateError{Master: master, Err: err,
			Reason: "its certificate is not trusted: give the CA that signed it (slapos.cfg master_ca_file, --ca; for slapnode's master: the ca.crt beside its database)"}
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" {
		return nil
	}
	alert := oe.Err.Error()
	switch {
	case !hasCert && (strings.Contains(alert, "certificate required") || strings.Contains(alert, "bad certificate") || strings.Contains(alert, "handshake failure")):
		return &CertificateError{Master: master, Err: err,
			Reason: "it requires a client certificate and this client has none: set key_file and cert_file in slapos.cfg (slapnode node register writes them), or give --cert and --key"}
	case strings.Contains(alert, "certificate"), strings.Contains(alert, "handshake failure"):
		return &CertificateError{Master: master, Err: err,
			Reason: "it refused this client's certificate (revoked, expired, or not signed by a CA it trusts): register the node again (slapnode node register) or ask the master's operator"}
	}
	return nil
}

// Registration is what a master answers `slapos node register`: the new
// node's certificate and key (PEM) and its computer id.
type Registration struct {
	ComputerID  string
	Certificate string // PEM, as the master sent it (text may precede it)
	Key         string
}

// RegisterNode asks the master at webURL for a new node titled title, with
// a registration token, as `slapos node register --token` does
// (Person_requestComputer; slapnode's master makes tokens with 'slapnode
// master token --register'). h carries the TLS settings (nil: a default
// client).
func RegisterNode(ctx context.Context, h *http.Client, webURL, title, token string) (*Registration, error) {
	if h == nil {
		h = &http.Client{Timeout: 60 * time.Second}
	}
	u := strings.TrimRight(webURL, "/") + "/Person_requestComputer"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"title": {title}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Access-Token", token)
	req.Header.Set("User-Agent", UserAgent)
	resp, err := h.Do(req)
	if err != nil {
		if cerr := CertificateProblem(webURL, false, err); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("master %s unreachable: %w", webURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		msg := strings.TrimSpace(string(body))
		if m := errorParagraph.FindSubmatch(body); m != nil {
			msg = html.UnescapeString(string(m[1]))
		}
		if strings.Contains(msg, "Certificate still active.") {
			msg = fmt.Sprintf("the node name %q is already in use: choose another, or revoke its certificate on the master", title)
		}
		return nil, &HTTPError{Endpoint: "Person_requestComputer", Status: resp.StatusCode, Message: msg}
	}
	var r struct{ Certificate, Key string }
	if err := json.Unmarshal(body, &r); err != nil || r.Certificate == "" || r.Key == "" {
		return nil, fmt.Errorf("the master's answer to Person_requestComputer is not a certificate and key: %.200s", body)
	}
	reg := &Registration{Certificate: r.Certificate, Key: r.Key}
	reg.ComputerID = computerIDOf(r.Certificate)
	if reg.ComputerID == "" {
		return nil, errors.New("the certificate the master sent names no computer (COMP-…)")
	}
	return reg, nil
}

// computerIDOf reads the computer id out of a node certificate: its
// subject's common name, or, as SlapOS's client does, the text between
// "COMP-" and "/email" of the dump preceding the PEM.
func computerIDOf(cert string) string {
	rest := []byte(cert)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && strings.HasPrefix(c.Subject.CommonName, "COMP-") {
			return c.Subject.CommonName
		}
	}
	if k := strings.Index(cert, "COMP-"); k >= 0 {
		if i := strings.Index(cert[k:], "/email"); i > 0 {
			return cert[k : k+i]
		}
	}
	return ""
}
