package master

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slapnode test master"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestServeTLS(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp, RequireAuth: true})
	tok, err := m.CreateCredential(context.Background(), ScopeAdmin, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	h := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c, _ := slap.NewClient("https://"+ln.Addr().String(), slap.WithHTTPClient(h), slap.WithToken(tok))
	if err := c.LoadComputerConfiguration(context.Background(), formatConfig(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FullComputerInformation(context.Background(), comp); err != nil {
		t.Fatal(err)
	}
	plain, _ := slap.NewClient("http://"+ln.Addr().String(), slap.WithToken(tok))
	if err := plain.Ping(context.Background()); err == nil {
		t.Error("plain HTTP answered on a TLS listener")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}

func TestServeRefusesPublicPlainHTTP(t *testing.T) {
	m := openTest(t, Options{})
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0:", err)
	}
	defer ln.Close()
	if err := m.Serve(context.Background(), ln, nil); !errors.Is(err, ErrInsecureListen) {
		t.Errorf("Serve on %s without TLS: %v", ln.Addr(), err)
	}
}

// TestDatabaseIsPrivate: whatever directory --db names and whatever the
// umask, the database and the files SQLite keeps beside it are readable by
// the master's user only (issue 18 #13: it was created 0644).
func TestDatabaseIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "master.db")
	m, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A write makes SQLite create the WAL and shared-memory files.
	if _, err := m.CreateCredential(context.Background(), ScopeAdmin, "", ""); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o, want no access for group and others", filepath.Base(p), perm)
		}
	}
	if seen < 2 {
		t.Errorf("only %d database files found, want the database and its WAL", seen)
	}
	m.Close()
	// A database left 0644 by an older slapnode is tightened on open.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m2.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened database has mode %o, want 0600", fi.Mode().Perm())
	}
}
