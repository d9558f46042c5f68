package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startMaster runs `slapnode master` with extra flags on a free loopback
// port and waits until it answers; it returns its root and listen address.
func startMaster(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	mroot := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	background(t, "master.log", append([]string{"master", "--root", mroot, "--listen", addr}, extra...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return mroot, addr
		}
		if time.Now().After(deadline) {
			t.Fatal("master did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlsFront is a TLS terminator that requires a client certificate signed
// by clientCA and forwards to the plain-HTTP master at target, as an nginx
// before slapproxy would. It serves with a certificate of its own CA,
// written to the returned file.
func tlsFront(t *testing.T, clientCA, target string) (string, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "front CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "front"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "front-ca.crt")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	pool := x509.NewCertPool()
	b, err := os.ReadFile(clientCA)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("client CA %s: %v", clientCA, err)
	}
	u, _ := url.Parse(target)
	srv := &http.Server{
		Handler: httputil.NewSingleHostReverseProxy(u),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String(), caFile
}

// writeSlapOSCfg writes a slapos.cfg for computer id with the given
// [slapos] lines.
func writeSlapOSCfg(t *testing.T, dir, id, master string, lines ...string) string {
	t.Helper()
	cfg := fmt.Sprintf("[slapos]\ncomputer_id = %s\nmaster_url = %s\nsoftware_root = /opt/slapgrid\ninstance_root = /srv/slapgrid\n%s\n\n[slapformat]\npartition_amount = 2\ninterface_name = lo\n\n[networkcache]\ndownload-binary-cache-url = http://cache.example.invalid\n",
		id, master, strings.Join(lines, "\n"))
	p := filepath.Join(dir, "slapos.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSlapOSCfgNodeThroughClientCertificateFront: a node configured only by
// a slapos.cfg with the node's certificate converges against a master that
// requires client certificates (a TLS front before it), the instance
// serves, and the same node without its certificate is refused with a
// message saying what to configure.
func TestSlapOSCfgNodeThroughClientCertificateFront(t *testing.T) {
	requireBuiltins(t)
	mroot, addr := startMaster(t)
	masterURL := "http://" + addr
	dir := t.TempDir()
	if r := run(t, mroot, "master", "certificate", "--computer", "COMP-9", "--out", filepath.Join(dir, "ssl", "computer")); r.code != 0 {
		t.Fatalf("certificate: %s%s", r.stdout, r.stderr)
	}
	if r := run(t, mroot, "master", "certificate", "--ca", "--out", filepath.Join(dir, "master-ca.crt")); r.code != 0 {
		t.Fatalf("ca: %s%s", r.stdout, r.stderr)
	}
	front, frontCA := tlsFront(t, filepath.Join(dir, "master-ca.crt"), masterURL)
	pki := filepath.Join(dir, "ssl", "partition_pki")
	os.MkdirAll(pki, 0o711)
	os.Chmod(pki, 0o711)
	// slapos.cfg alone says where partitions and releases go: node format
	// --cfg lays the node out there, as slapos node format does.
	srv, opt := filepath.Join(dir, "srv", "slapgrid"), filepath.Join(dir, "opt", "slapgrid")
	cfg := writeSlapOSCfg(t, dir, "COMP-9", front,
		"key_file = "+filepath.Join(dir, "ssl", "computer.key"),
		"cert_file = "+filepath.Join(dir, "ssl", "computer.crt"),
		"master_ca_file = "+frontCA,
		"certificate_repository_path = "+pki,
		"instance_root = "+srv, "software_root = "+opt)
	root := t.TempDir()
	stopNode(t, root)
	if r := run(t, root, "node", "format", "--rootless", "--cfg", cfg); r.code != 0 {
		t.Fatalf("format --cfg (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// The first pass registers the node's partitions through the front.
	r := run(t, root, "node", "converge", "--cfg", cfg)
	if r.code != 0 {
		t.Fatalf("first converge (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"node COMP-9 of master " + front, "ignored [networkcache] download-binary-cache-url"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("converge did not say %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "instance_root") || strings.Contains(r.stderr, "software_root") {
		t.Errorf("the node formatted by slapos.cfg is not where slapos.cfg says:\n%s", r.stderr)
	}
	sw, _ := filepath.Abs("../../../examples/helloweb/software.hcl")
	if r := cli(t, masterURL, "supply", sw, "COMP-9"); r.code != 0 {
		t.Fatalf("supply: %s%s", r.stdout, r.stderr)
	}
	if r := cli(t, masterURL, "request", "web", sw, "--node", "COMP-9", "--param", "greeting=through the front"); r.code != 0 {
		t.Fatalf("request: %s%s", r.stdout, r.stderr)
	}
	r = run(t, root, "node", "converge", "--cfg", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "processed slappart0") {
		t.Fatalf("converge (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	info := cli(t, masterURL, "info", "web", "--json")
	var in struct {
		Connection map[string]string `json:"connection"`
		Reported   string            `json:"reported_state"`
	}
	json.Unmarshal([]byte(info.stdout), &in)
	if in.Reported != "started" || !strings.Contains(get(t, in.Connection["url"]), "through the front") {
		t.Fatalf("instance after converge: %s%s", info.stdout, info.stderr)
	}
	if _, err := os.Stat(filepath.Join(srv, "slappart0")); err != nil {
		t.Errorf("the partition is not under slapos.cfg's instance_root: %v", err)
	}
	if ents, _ := os.ReadDir(opt); len(ents) == 0 {
		t.Error("the release is not under slapos.cfg's software_root")
	}
	// The partition's certificate files are where SlapOS puts them (the
	// master behind a plain front hands out empty ones, as slapproxy).
	for _, f := range []string{"slappart0.crt", "slappart0.key"} {
		fi, err := os.Stat(filepath.Join(pki, f))
		if err != nil || fi.Mode().Perm() != 0o400 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}

	// Without its certificate the node is refused, and told why.
	noCert := writeSlapOSCfg(t, t.TempDir(), "COMP-9", front, "master_ca_file = "+frontCA)
	r = run(t, t.TempDir(), "node", "converge", "--cfg", noCert)
	if r.code != 1 || !strings.Contains(r.stderr, "requires a client certificate and this client has none: set key_file and cert_file") {
		t.Fatalf("converge without a certificate (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestRegisteredNodeAgainstAuthenticatingMaster: a master serving HTTPS
// with its own CA and requiring credentials; a node registered with a
// one-time token (node register) converges with the certificate it got,
// each partition gets a certificate of its own (0400, in the repository),
// and a partition's certificate acts for that partition only.
func TestRegisteredNodeAgainstAuthenticatingMaster(t *testing.T) {
	requireBuiltins(t)
	mroot, addr := startMaster(t, "--tls", "--auth")
	masterURL := "https://" + addr
	caFile := filepath.Join(mroot, "master", "ca.crt")
	tok := run(t, mroot, "master", "token", "--register")
	adminDir := t.TempDir()
	adm := run(t, mroot, "master", "certificate", "--admin", "--out", filepath.Join(adminDir, "admin"))
	if tok.code != 0 || adm.code != 0 {
		t.Fatalf("token/certificate: %s%s%s%s", tok.stdout, tok.stderr, adm.stdout, adm.stderr)
	}
	etc := filepath.Join(t.TempDir(), "slapos")
	cfg := filepath.Join(etc, "slapos.cfg")
	reg := exec.Command(slapnode, "node", "register", "node-7", "--token", strings.TrimSpace(tok.stdout), "--master-url", masterURL,
		"--master-ca", caFile, "--partition-number", "2", "--cfg", cfg)
	r := runCmd(t, reg)
	id := regexp.MustCompile(`registered as (COMP-\d+)`).FindStringSubmatch(r.stdout)
	if r.code != 0 || id == nil {
		t.Fatalf("register (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	root := t.TempDir()
	stopNode(t, root)
	if r := run(t, root, "node", "converge", "--cfg", cfg); r.code != 0 {
		t.Fatalf("first converge (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	admin := func(args ...string) result {
		cmd := exec.Command(slapnode, append(args, "--master", masterURL, "--ca", caFile,
			"--cert", filepath.Join(adminDir, "admin.crt"), "--key", filepath.Join(adminDir, "admin.key"))...)
		cmd.Dir = "../../.."
		return runCmd(t, cmd)
	}
	sw, _ := filepath.Abs("../../../examples/helloweb/software.hcl")
	if r := admin("supply", sw, id[1]); r.code != 0 {
		t.Fatalf("supply: %s%s", r.stdout, r.stderr)
	}
	for _, n := range []string{"a", "b"} {
		if r := admin("request", n, sw, "--node", id[1], "--param", "greeting="+n); r.code != 0 {
			t.Fatalf("request %s: %s%s", n, r.stdout, r.stderr)
		}
	}
	if r := run(t, root, "node", "converge", "--cfg", cfg); r.code != 0 {
		t.Fatalf("converge (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	pki := filepath.Join(etc, "ssl", "partition_pki")
	for _, f := range []string{"slappart0.crt", "slappart0.key", "slappart1.crt", "slappart1.key"} {
		b, err := os.ReadFile(filepath.Join(pki, f))
		fi, _ := os.Stat(filepath.Join(pki, f))
		if err != nil || !strings.Contains(string(b), "-----BEGIN") || fi.Mode().Perm() != 0o400 {
			t.Fatalf("%s: %v %q", f, err, b)
		}
	}
	if r := admin("info", "a"); r.code != 0 || !strings.Contains(r.stdout, "url = http://") {
		t.Fatalf("info a: %s%s", r.stdout, r.stderr)
	}
	// slappart0's certificate publishes for slappart0, not for slappart1.
	curl := func(part, target string) string {
		out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", caFile,
			"--cert", filepath.Join(pki, part+".crt"), "--key", filepath.Join(pki, part+".key"),
			"--data-urlencode", "computer_id="+id[1], "--data-urlencode", "computer_partition_id="+target,
			"--data-urlencode", "connection_xml=<marshal><dictionary id=\"i2\"/></marshal>", "--data-urlencode", "slave_reference=None",
			masterURL+"/setComputerPartitionConnectionXml").Output()
		return string(out)
	}
	if code := curl("slappart0", "slappart1"); code != "403" {
		t.Errorf("slappart0's certificate publishing for slappart1: %s, want 403", code)
	}
	if code := curl("slappart0", "slappart0"); code != "200" {
		t.Errorf("slappart0's certificate publishing for itself: %s, want 200", code)
	}
}
