package master

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/slap"
)

// tlsMaster serves m over HTTPS with a certificate from its own CA and
// returns its URL and a pool trusting that CA.
func tlsMaster(t *testing.T, m *Master) (string, *x509.CertPool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cert, err := m.ServerCertificate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := m.CACertificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatal("bad CA PEM")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- m.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String(), pool
}

func certClient(t *testing.T, base string, pool *x509.CertPool, certPEM, keyPEM string) *slap.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: pool}
	if certPEM != "" {
		pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	c, err := slap.NewClient(base, slap.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertificates: an authenticating master over HTTPS takes the
// certificates it issued — a node's for its computer, a partition's for
// that partition only — hands each busy partition a certificate of its own
// (revoked when the partition is freed), and refuses revoked and foreign
// certificates with a 401 saying so.
func TestCertificates(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp, RequireAuth: true})
	ctx := context.Background()
	base, pool := tlsMaster(t, m)
	adminCert, adminKey, err := m.IssueCertificate(ctx, ScopeAdmin, "", "")
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := m.IssueCertificate(ctx, ScopeComputer, comp, "")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, _ := m.IssueCertificate(ctx, ScopeComputer, "OTHER", "")
	admin := certClient(t, base, pool, adminCert, adminKey)
	node := certClient(t, base, pool, nodeCert, nodeKey)
	if _, err := certClient(t, base, pool, "", "").FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("no certificate: %v", err)
	}
	if err := certClient(t, base, pool, otherCert, otherKey).LoadComputerConfiguration(ctx, formatConfig(2)); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("another node's certificate registering this computer: %v", err)
	}
	if err := node.LoadComputerConfiguration(ctx, formatConfig(2)); err != nil {
		t.Fatal(err)
	}
	if err := node.Supply(ctx, sr, comp, ""); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("a node supplying: %v", err)
	}
	if err := admin.Supply(ctx, sr, comp, ""); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"a", "b"} {
		if _, err := admin.Request(ctx, slap.Request{SoftwareURL: sr, Reference: title}); err != nil {
			t.Fatal(err)
		}
	}
	// Each busy partition gets a certificate of its own, the same one on
	// every call.
	pc, pk, err := node.Certificate(ctx, comp, "slappart0")
	if err != nil || !strings.Contains(pc, "BEGIN CERTIFICATE") || !strings.Contains(pk, "PRIVATE KEY") {
		t.Fatalf("partition certificate: %q %q %v", pc, pk, err)
	}
	if again, _, _ := node.Certificate(ctx, comp, "slappart0"); again != pc {
		t.Error("the partition certificate changed between two calls")
	}
	part := certClient(t, base, pool, pc, pk)
	if err := part.SetConnectionParameters(ctx, comp, "slappart0", "", map[string]any{"k": "v"}); err != nil {
		t.Errorf("partition publishing for itself: %v", err)
	}
	if err := part.SetConnectionParameters(ctx, comp, "slappart1", "", map[string]any{"k": "v"}); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("partition publishing for another: %v", err)
	}
	if _, _, err := part.Certificate(ctx, comp, "slappart1"); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("partition reading another's certificate: %v", err)
	}
	if _, err := part.FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("partition reading the whole computer: %v", err)
	}
	// Freeing the partition revokes its certificate.
	if _, err := admin.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "a", State: slap.StateDestroyed}); err != nil {
		t.Fatal(err)
	}
	if out, err := node.Destroyed(ctx, comp, "slappart0"); err != nil || out != "OK" {
		t.Fatalf("destroyed: %q %v", out, err)
	}
	_, err = part.RegisterComputerPartition(ctx, comp, "slappart0")
	var he *slap.HTTPError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(he.Message, "revoked") {
		t.Errorf("a freed partition's certificate: %v, want a 401 saying it may be revoked", err)
	}
	// Revoking a node's certificates.
	if n, err := m.RevokeCertificates(ctx, ScopeComputer, comp, ""); err != nil || n != 1 {
		t.Errorf("revoke: %d %v", n, err)
	}
	if _, err := node.FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("revoked node certificate: %v", err)
	}
	// A certificate from another CA is refused the same way.
	other := openTest(t, Options{})
	fc, fk, _ := other.IssueCertificate(ctx, ScopeAdmin, "", "")
	if _, err := certClient(t, base, pool, fc, fk).FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("foreign certificate: %v", err)
	}
	list, _ := m.Certificates(ctx)
	if len(list) != 4 { // admin, two nodes, slappart0
		t.Errorf("%d certificates listed", len(list))
	}
}

// TestPartitionCertificateOverHTTPIsEmpty: over plain HTTP the master
// answers empty strings, as slapproxy does (keys never travel in clear).
func TestPartitionCertificateOverHTTPIsEmpty(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	c, _ := startMaster(t, m)
	ctx := context.Background()
	c.LoadComputerConfiguration(ctx, formatConfig(1))
	c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "a"})
	cert, key, err := c.Certificate(ctx, comp, "slappart0")
	if err != nil || cert != "" || key != "" {
		t.Errorf("certificate over HTTP: %q %q %v", cert, key, err)
	}
}

// TestRegisterComputer: Person_requestComputer with a one-time register
// token (X-Access-Token, as slapos node register sends it) makes COMP-N and
// its certificate; the token does not work twice.
func TestRegisterComputer(t *testing.T) {
	m := openTest(t, Options{RequireAuth: true})
	ctx := context.Background()
	base, pool := tlsMaster(t, m)
	tok, err := m.CreateCredential(ctx, ScopeRegister, "", "")
	if err != nil {
		t.Fatal(err)
	}
	h := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	post := func() (*http.Response, map[string]string) {
		req, _ := http.NewRequest("POST", base+"/Person_requestComputer", strings.NewReader(url.Values{"title": {"my node"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Access-Token", tok)
		resp, err := h.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, out := post()
	if resp.StatusCode != 200 {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	// The SlapOS client reads the computer id out of the text.
	c := out["certificate"]
	k := strings.Index(c, "COMP-")
	if k < 0 || !strings.HasPrefix(c[k:], "COMP-1/email") {
		t.Fatalf("certificate text %q does not name COMP-1 as SlapOS's client reads it", c[:min(len(c), 80)])
	}
	node := certClient(t, base, pool, c, out["key"])
	if err := node.LoadComputerConfiguration(ctx, &slap.ComputerConfiguration{Reference: "COMP-1"}); err != nil {
		t.Errorf("the registered node formatting itself: %v", err)
	}
	if resp, _ := post(); resp.StatusCode != 403 {
		t.Errorf("second use of the token: %d, want 403", resp.StatusCode)
	}
}

// TestGenerateAndRevokeComputerCertificate: the SlapOS Master's
// generateComputerCertificate and revokeComputerCertificate (slap.py's
// Computer.generateCertificate and revokeCertificate) answer as there: one
// valid certificate per node ("Certificate still active." while it is),
// a marshalled {certificate, key}, "No certificate" when there is none to
// revoke; a node acts for itself only, and never over plain HTTP.
func TestGenerateAndRevokeComputerCertificate(t *testing.T) {
	m := openTest(t, Options{RequireAuth: true})
	ctx := context.Background()
	base, pool := tlsMaster(t, m)
	adminCert, adminKey, _ := m.IssueCertificate(ctx, ScopeAdmin, "", "")
	nodeCert, nodeKey, _ := m.IssueCertificate(ctx, ScopeComputer, comp, "")
	otherCert, otherKey, _ := m.IssueCertificate(ctx, ScopeComputer, "OTHER", "")
	call := func(certPEM, keyPEM, path, computer string) (int, string) {
		t.Helper()
		pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			t.Fatal(err)
		}
		h := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
		resp, err := h.PostForm(base+"/"+path, url.Values{"computer_id": {computer}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	node := certClient(t, base, pool, nodeCert, nodeKey)
	if err := node.LoadComputerConfiguration(ctx, formatConfig(1)); err != nil {
		t.Fatal(err)
	}
	if code, body := call(nodeCert, nodeKey, "generateComputerCertificate", comp); code != 404 || !strings.Contains(body, "Certificate still active") {
		t.Errorf("generate while a certificate is valid: %d %s", code, body)
	}
	if code, body := call(otherCert, otherKey, "revokeComputerCertificate", comp); code != 403 {
		t.Errorf("another node revoking this one's certificate: %d %s", code, body)
	}
	if code, body := call(nodeCert, nodeKey, "revokeComputerCertificate", comp); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if _, err := node.FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("the revoked certificate still works: %v", err)
	}
	if code, body := call(adminCert, adminKey, "revokeComputerCertificate", comp); code != 404 || !strings.Contains(body, "No certificate") {
		t.Errorf("revoke with none valid: %d %s", code, body)
	}
	code, body := call(adminCert, adminKey, "generateComputerCertificate", comp)
	if code != 200 {
		t.Fatalf("generate: %d %s", code, body)
	}
	v, err := slap.Unmarshal([]byte(body))
	d, _ := v.(map[string]any)
	newCert, _ := d["certificate"].(string)
	newKey, _ := d["key"].(string)
	if err != nil || !strings.Contains(newCert, "BEGIN CERTIFICATE") || !strings.Contains(newKey, "PRIVATE KEY") {
		t.Fatalf("generate answered %v %s", err, body)
	}
	if _, err := certClient(t, base, pool, newCert, newKey).FullComputerInformation(ctx, comp); err != nil {
		t.Errorf("the new certificate: %v", err)
	}
	if code, _ := call(adminCert, adminKey, "generateComputerCertificate", "NOPE"); code != 404 {
		t.Errorf("generate for an unknown computer: %d", code)
	}

	// Over plain HTTP the key would travel in clear: refused.
	plain := openTest(t, Options{DefaultComputer: comp})
	c, srv := startMaster(t, plain)
	c.LoadComputerConfiguration(ctx, formatConfig(1))
	resp, err := http.PostForm(srv.URL+"/generateComputerCertificate", url.Values{"computer_id": {comp}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "HTTPS only") {
		t.Errorf("generate over HTTP: %d %s", resp.StatusCode, b)
	}
}
