package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The slapos-hello fixture is a SlapOS release written as SlapOS releases
// are (software.cfg, jinja2 instance profiles, slapos.cookbook recipes):
// `slapnode apply software.cfg` builds it and instantiates it.
const slaposHello = "examples/slapos-hello/software.cfg"

var (
	helloURLRe  = regexp.MustCompile(`url-hello = (http://\S+)`)
	statusURLRe = regexp.MustCompile(`url-status = (http://\S+)`)
)

// checkSlaposHello applies the fixture and checks what the issue asks: the
// service answers, the promises pass, the connection parameters are
// published; a second apply changes nothing; a parameter change restarts
// only what depends on it.
func checkSlaposHello(t *testing.T, cred *syscall.Credential, root, profile string, ports ...string) {
	t.Helper()
	apply := legacyApply(t, cred, root, profile, "--param", "port="+ports[0], "--param", "status-port="+ports[1])
	r := apply()
	saysAll(t, "first apply", r.stdout, "+ hello (cookbook:cmmi)", "promise hello-listening: ok", "promise status-listening: ok", "name = World")
	hello, status := helloURLRe.FindStringSubmatch(r.stdout), statusURLRe.FindStringSubmatch(r.stdout)
	if hello == nil || status == nil {
		t.Fatalf("connection parameters not published:\n%s", r.stdout)
	}
	if body := get(t, hello[1]); body != "Hello World!\n" {
		t.Fatalf("hello answers %q", body)
	}
	if body := get(t, status[1]); body != "OK\n" {
		t.Fatalf("status answers %q", body)
	}

	r = apply()
	saysAll(t, "second apply is not a no-op", r.stdout, "software: already installed", "instance: 0 installed, 0 reinstalled, 0 uninstalled", "services: unchanged hello, status")

	r = apply("--param", "name=Alice")
	saysAll(t, "after name=Alice", r.stdout, "1 reinstalled", "services: restarted hello; unchanged status", "name = Alice")
	if body := get(t, hello[1]); body != "Hello Alice!\n" {
		t.Fatalf("hello answers %q after the change", body)
	}

	// The other software type, in a partition of its own.
	r = runAs(t, cred, root, "apply", profile, "--name", "static", "--type", "static")
	if r.code != 0 || !strings.Contains(r.stdout, "promise greeting-written: ok") || !strings.Contains(r.stdout, "software-type = static") {
		t.Fatalf("static type (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestSlaposReleaseRootless(t *testing.T) {
	requireBuiltins(t)
	cred, root, profile := legacyRootless(t, "../../../examples/slapos-hello", "software.cfg", slaposHello)
	checkSlaposHello(t, cred, root, profile, "18490", "18491")
}

// TestSlaposReleaseFormattedNode applies the fixture on a node prepared by
// `slapnode node format`: the services run as the partition's user.
func TestSlaposReleaseFormattedNode(t *testing.T) {
	requireBuiltins(t)
	root := legacyFormatted(t, "legacy", "slntestlg")
	checkSlaposHello(t, nil, root, slaposHello, "18492", "18493")
	checkServiceUser(t, root, "hello", "slntestlg0")
}

// A release whose source is an http URL builds offline from a download
// cache directory; a missing source is named with its URL and md5sum.
func TestSlaposReleaseOffline(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	stopNode(t, root)
	rel := filepath.Join(t.TempDir(), "release")
	if err := os.CopyFS(rel, os.DirFS("../../../examples/slapos-hello")); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(rel, "software.cfg"))
	url := "http://127.0.0.1:9/dist/hello-1.0.tar.gz" // the discard port: nothing to download from
	cfg = []byte(strings.Replace(string(cfg), "${:_profile_base_location_}/hello-1.0.tar.gz", url, 1))
	os.WriteFile(filepath.Join(rel, "software.cfg"), cfg, 0o644)
	md5 := regexp.MustCompile(`md5sum = (\S+)`).FindSubmatch(cfg)[1]
	cache := t.TempDir()
	r := run(t, root, "plan", filepath.Join(rel, "software.cfg"), "--offline", "--download-cache", cache)
	if r.code != 0 {
		t.Fatalf("plan offline (%d): %s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, root, "apply", filepath.Join(rel, "software.cfg"), "--offline", "--download-cache", cache, "--param", "port=18494", "--param", "status-port=18495")
	if r.code == 0 || !strings.Contains(r.stderr, url) || !strings.Contains(r.stderr, "md5sum "+string(md5)) || !strings.Contains(r.stderr, "hello-1.0.tar.gz") {
		t.Fatalf("missing source (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	tgz, _ := os.ReadFile(filepath.Join(rel, "hello-1.0.tar.gz"))
	os.WriteFile(filepath.Join(cache, "hello-1.0.tar.gz"), tgz, 0o644)
	r = run(t, root, "apply", filepath.Join(rel, "software.cfg"), "--offline", "--download-cache", cache, "--param", "port=18494", "--param", "status-port=18495")
	if r.code != 0 {
		t.Fatalf("offline apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if m := helloURLRe.FindStringSubmatch(r.stdout); m == nil || get(t, m[1]) != "Hello World!\n" {
		t.Fatalf("no working URL:\n%s", r.stdout)
	}
}

// The same release ported to HCL (docs/porting.md) behaves the same.
func TestSlaposHelloHCL(t *testing.T) {
	requireBuiltins(t)
	root := t.TempDir()
	stopNode(t, root)
	r := run(t, root, "apply", "examples/slapos-hello/software.hcl", "--param", "port:=18498", "--param", "status-port:=18499", "--param", "name=HCL")
	if r.code != 0 || !strings.Contains(r.stdout, "promise hello-listening: ok") {
		t.Fatalf("apply (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if m := helloURLRe.FindStringSubmatch(r.stdout); m == nil || get(t, m[1]) != "Hello HCL!\n" {
		t.Fatalf("no working URL:\n%s", r.stdout)
	}
	r = run(t, root, "apply", "examples/slapos-hello/software.hcl", "--name", "static", "--type", "static")
	if r.code != 0 || !strings.Contains(r.stdout, "promise greeting-written: ok") {
		t.Fatalf("static (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
