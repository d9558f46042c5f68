package slap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, n: 1}
}

// issue writes a certificate and its key under dir and returns their paths.
func (ca *testCA) issue(t *testing.T, dir, name string, server bool) (string, string) {
	ca.n++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return cf, kf
}

func (ca *testCA) write(t *testing.T, dir string) string {
	p := filepath.Join(dir, "ca.crt")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644)
	return p
}

// TestClientCertificates: against a master that requires client
// certificates, a client with one signed by the trusted CA gets through;
// one without, or with a foreign one, or that does not trust the master,
// gets an ErrAuth that says what to configure — never "unreachable".
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, stranger := newTestCA(t), newTestCA(t)
	srvCert, srvKey := ca.issue(t, dir, "server", true)
	nodeCert, nodeKey := ca.issue(t, dir, "node", false)
	badCert, badKey := stranger.issue(t, dir, "stranger", false)
	caFile := ca.write(t, dir)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<marshal><list id=\"i2\"/></marshal>"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()
	call := func(f TLSFiles) error {
		c, err := NewClient(srv.URL, WithTLS(f))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SoftwareReleaseList(ctx, "x")
		return err
	}
	if err := call(TLSFiles{CertFile: nodeCert, KeyFile: nodeKey, CAFile: caFile}); err != nil {
		t.Fatalf("with the node's certificate: %v", err)
	}
	for name, c := range map[string]struct {
		f    TLSFiles
		want string
	}{
		"no certificate":      {TLSFiles{CAFile: caFile}, "requires a client certificate and this client has none"},
		"foreign certificate": {TLSFiles{CertFile: badCert, KeyFile: badKey, CAFile: caFile}, "refused this client's certificate"},
		"untrusted master":    {TLSFiles{CertFile: nodeCert, KeyFile: nodeKey}, "its certificate is not trusted"},
	} {
		err := call(c.f)
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an ErrAuth saying %q", name, err, c.want)
		}
	}
	// A large POST without a certificate: with TLS 1.3 the client may be
	// writing when the server closes (a broken pipe); still explained.
	c, _ := NewClient(srv.URL, WithTLS(TLSFiles{CAFile: caFile}))
	cfg := &ComputerConfiguration{Reference: "COMP-1"}
	for i := 0; i < 5000; i++ {
		cfg.Partitions = append(cfg.Partitions, PartitionConfiguration{Reference: "slappart" + strings.Repeat("x", 40) + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")})
	}
	for i := 0; i < 5; i++ {
		err := c.LoadComputerConfiguration(ctx, cfg)
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "requires a client certificate") {
			t.Fatalf("large POST without a certificate: %v", err)
		}
	}
	if _, err := NewClient(srv.URL, WithTLS(TLSFiles{CertFile: nodeCert})); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}
