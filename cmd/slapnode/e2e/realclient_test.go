package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// slaposClient returns a command running SlapOS's own `slapos` command
// line from a slapos.core source checkout named by SLAPNODE_SLAPOS_CORE
// (with, optionally, SLAPNODE_SLAPOS_PYTHONPATH for the dependencies the
// host's python3 lacks, such as xml_marshaller), or skips: slapos.core and
// its dependencies are not Debian packages, and CI has no index to install
// them from.
func slaposClient(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	src := os.Getenv("SLAPNODE_SLAPOS_CORE")
	if src == "" {
		t.Skip("SLAPNODE_SLAPOS_CORE (a slapos.core source checkout whose dependencies python3 can import) is not set: the real slapos client is not run")
	}
	py := "/usr/bin/python3"
	path := src
	if extra := os.Getenv("SLAPNODE_SLAPOS_PYTHONPATH"); extra != "" {
		path += ":" + extra
	}
	probe := exec.Command(py, "-c", "import slapos.cli.entry")
	probe.Env = append(os.Environ(), "PYTHONPATH="+path)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("SLAPNODE_SLAPOS_CORE=%s: slapos.cli cannot be imported (install its dependencies: lxml, netaddr, netifaces, cliff, zope.interface, psutil, supervisor, uritemplate, xml_marshaller): %v\n%s", src, err, out)
	}
	return func(args ...string) (string, error) {
		cmd := exec.Command(py, append([]string{"-W", "ignore", "-c", "import sys; from slapos.cli.entry import main; sys.argv[0] = 'slapos'; sys.exit(main())"}, args...)...)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+path, "PYTHONWARNINGS=ignore")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// TestRealSlapOSClientOverHTTPS: SlapOS's own `slapos` client, configured
// with the admin certificate slapnode's master issued (cert_file and
// key_file), supplies a release, requests an instance with parameters,
// reads its connection parameters once a node configured only by a
// slapos.cfg with its own certificate has converged, and lists and shows
// services and computers, all over HTTPS with client certificates. Without
// a certificate the client refuses to start, as it does against a SlapOS
// Master.
func TestRealSlapOSClientOverHTTPS(t *testing.T) {
	slapos := slaposClient(t)
	requireBuiltins(t)
	mroot, addr := startMaster(t, "--tls", "--auth", "--computer-id", "COMP-R")
	url := "https://" + addr + "/"
	dir := t.TempDir()
	ca := filepath.Join(mroot, "master", "ca.crt")
	if r := run(t, mroot, "master", "certificate", "--admin", "--out", filepath.Join(dir, "admin")); r.code != 0 {
		t.Fatalf("admin certificate: %s%s", r.stdout, r.stderr)
	}
	if r := run(t, mroot, "master", "certificate", "--computer", "COMP-R", "--out", filepath.Join(dir, "computer")); r.code != 0 {
		t.Fatalf("computer certificate: %s%s", r.stdout, r.stderr)
	}
	client := filepath.Join(dir, "client.cfg")
	os.WriteFile(client, []byte("[slapos]\nmaster_url = "+url+"\n\n[slapconsole]\ncert_file = "+filepath.Join(dir, "admin.crt")+
		"\nkey_file = "+filepath.Join(dir, "admin.key")+"\nmaster_ca_file = "+ca+"\n"), 0o644)
	pki := filepath.Join(dir, "pki")
	os.Mkdir(pki, 0o711)
	os.Chmod(pki, 0o711)
	node := filepath.Join(dir, "slapos.cfg")
	os.WriteFile(node, []byte("[slapos]\ncomputer_id = COMP-R\nmaster_url = "+url+
		"\nkey_file = "+filepath.Join(dir, "computer.key")+"\ncert_file = "+filepath.Join(dir, "computer.crt")+
		"\nmaster_ca_file = "+ca+"\ncertificate_repository_path = "+pki+
		"\nsoftware_root = "+filepath.Join(dir, "opt")+"\ninstance_root = "+filepath.Join(dir, "srv")+
		"\n\n[slapformat]\npartition_amount = 2\ninterface_name = lo\n"), 0o644)
	sr := filepath.Join(dir, "sr")
	os.Mkdir(sr, 0o755)
	os.WriteFile(filepath.Join(sr, "software.hcl"), []byte("software \"greeter\" { version = \"1\" }\ninstance \"default\" { profile = \"instance.hcl\" }\n"), 0o644)
	os.WriteFile(filepath.Join(sr, "instance.hcl"), []byte("publish { greeting = \"hello ${parameter.name}\" }\n"), 0o644)
	swURL := filepath.Join(sr, "software.hcl")

	root := t.TempDir()
	stopNode(t, root)
	if r := run(t, root, "node", "format", "--rootless", "--cfg", node); r.code != 0 {
		t.Fatalf("format --cfg: %s%s", r.stdout, r.stderr)
	}
	if r := run(t, root, "node", "converge", "--cfg", node); r.code != 0 {
		t.Fatalf("first converge: %s%s", r.stdout, r.stderr)
	}
	step := func(want string, args ...string) string {
		t.Helper()
		out, err := slapos(append(args, "--cfg", client)...)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("slapos %s: %v, want %q in:\n%s", strings.Join(args, " "), err, want, out)
		}
		return out
	}
	step("Done", "supply", swURL, "COMP-R")
	step("Instance requested", "request", "greeter-1", swURL, "--parameters", "name=bob")
	if r := run(t, root, "node", "converge", "--cfg", node); r.code != 0 {
		t.Fatalf("converge: %s%s", r.stdout, r.stderr)
	}
	step("'greeting': 'hello bob'", "request", "greeter-1", swURL, "--parameters", "name=bob")
	step(`"greeter-1": "`+swURL+`"`, "service", "list")
	step(`"greeting": "hello bob"`, "service", "info", "greeter-1")
	step("COMP-R", "computer", "list")
	step("Computer Reference: COMP-R", "computer", "info", "COMP-R")

	noCert := filepath.Join(dir, "nocert.cfg")
	os.WriteFile(noCert, []byte("[slapos]\nmaster_url = "+url+"\n"), 0o644)
	if out, err := slapos("service", "list", "--cfg", noCert); err == nil {
		t.Errorf("the client without a certificate listed services:\n%s", out)
	}
}
