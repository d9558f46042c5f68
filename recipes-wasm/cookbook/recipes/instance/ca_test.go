package instance

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

// The certificate authority and a request, with the host's openssl: the
// CA service the recipe writes makes the CA and signs the request, the
// request's links point at the signed certificate and its key, and the
// wrapper waits for them.
func TestCertificateAuthority(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl on this host")
	}
	e := recipetest.New(t)
	e.Host.AllowExec = []string{"sh"}
	dir := e.Path("srv", "ca")
	for _, d := range []string{"requests", "private", "certs", "newcerts", "crl"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ca := map[string]any{
		"openssl-binary": openssl, "ca-dir": dir, "requests-directory": filepath.Join(dir, "requests"),
		"wrapper": e.Path("bin", "certificate_authority"), "ca-private": filepath.Join(dir, "private"),
		"ca-certs": filepath.Join(dir, "certs"), "ca-newcerts": filepath.Join(dir, "newcerts"), "ca-crl": filepath.Join(dir, "crl"),
	}
	out := e.MustInstall("certificate-authority", "certificate-authority", ca)
	if out.Outputs["wrapper"] != e.Path("bin", "certificate_authority") || e.ReadFile(filepath.Join(dir, "serial")) != "01" {
		t.Fatalf("CA: %+v", out)
	}
	req := map[string]any{}
	for k, v := range ca {
		req[k] = v
	}
	req["key-file"] = e.Path("etc", "nginx.key")
	req["cert-file"] = e.Path("etc", "nginx.crt")
	req["executable"] = "/bin/echo"
	req["wrapper"] = e.Path("bin", "nginx-with-ca")
	out = e.MustInstall("ca-nginx", "certificate-authority-request", req)
	sum := sha512.Sum512([]byte("ca-nginx"))
	hash := hex.EncodeToString(sum[:])
	request := e.ReadFile(filepath.Join(dir, "requests", hash))
	if !strings.Contains(request, "name = ca-nginx\n") || !strings.Contains(request, "certificate_file = "+filepath.Join(dir, "certs", hash+".crt")) {
		t.Fatalf("request file:\n%s", request)
	}
	if l, err := os.Readlink(e.Path("etc", "nginx.crt")); err != nil || filepath.Join(e.Path("etc"), l) != filepath.Join(dir, "certs", hash+".crt") {
		t.Fatalf("cert-file link: %q %v", l, err)
	}
	if len(out.Installed) != 3 {
		t.Errorf("installed %v", out.Installed)
	}

	// The service makes the CA and signs the request at once.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := exec.CommandContext(ctx, e.Path("bin", "certificate_authority"))
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Process.Kill(); svc.Wait() }()
	cert := filepath.Join(dir, "certs", hash+".crt")
	for {
		if _, err := os.Stat(cert); err == nil {
			if st, _ := os.Stat(cert); st.Size() > 0 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("the CA did not sign the request")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	verify, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(dir, "cacert.pem"), e.Path("etc", "nginx.crt")).CombinedOutput()
	if err != nil || !strings.Contains(string(verify), "OK") {
		t.Fatalf("openssl verify: %s %v", verify, err)
	}
	subject, _ := exec.Command(openssl, "x509", "-noout", "-subject", "-in", cert).CombinedOutput()
	if !strings.Contains(string(subject), "CN = ca-nginx") || !strings.Contains(string(subject), "C = XX") {
		t.Errorf("subject: %s", subject)
	}
	// The wrapper starts the executable once the files are there.
	got, err := exec.Command(e.Path("bin", "nginx-with-ca"), "ready").CombinedOutput()
	if err != nil || string(got) != "ready\n" {
		t.Errorf("wrapper: %q %v", got, err)
	}

	// A given key and certificate are checked, and must belong together.
	k2 := filepath.Join(t.TempDir(), "k")
	c2 := filepath.Join(t.TempDir(), "c")
	if b, err := exec.Command(openssl, "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-keyout", k2, "-out", c2, "-days", "1", "-subj", "/CN=given").CombinedOutput(); err != nil {
		t.Fatalf("%s %v", b, err)
	}
	kb, _ := os.ReadFile(k2)
	cb, _ := os.ReadFile(c2)
	given := map[string]any{}
	for k, v := range req {
		given[k] = v
	}
	given["name"] = "given"
	given["key-file"] = e.Path("etc", "given.key")
	given["cert-file"] = e.Path("etc", "given.crt")
	given["key-content"] = string(kb)
	given["cert-content"] = string(cb)
	out = e.MustInstall("given", "certificate-authority-request", given)
	if got := e.ReadFile(e.Path("etc", "given.crt")); got != string(cb) || len(out.Installed) != 2 {
		t.Errorf("given certificate not installed: %+v", out)
	}
	given["key-content"] = e.ReadFile(filepath.Join(dir, "private", hash+".key"))
	e.MustFail("mismatch", "certificate-authority-request", given, "don't patch each other")
}
