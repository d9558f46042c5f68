package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The slapos-tally fixture (cmd/slapnode/testdata/slapos-tally) is written
// in the older style of software/html5as: one instance profile rendered by
// jinja2 at software time with the options' old names (template,
// rendered), import-list `file NAME SECTION:OPTION` of a downloaded macro
// library ({% from %} without context, a macro taking a dict, dictsort),
// context of every kind (import, key with ${:x}, section, jsonkey, raw),
// namespace(), loops with `if`, a section whose options reference
// download parts (installed because the context reads them); the
// software's cmmi has no configure (configure-command = true), a -p1 patch
// with its md5sum, make-options with @@LOCATION@@, pre-install and
// post-install; the partition renders its type's profile from a jinja2
// file the software downloaded, with `import json_module json`. Type
// "default" serves on the partition's IPv6 address (ipv6-random), a second
// service on IPv4 inheriting the first with <=, plain slapos.recipe.template
// with inline at instance time, hash-existing-files, the executable
// promises of slapos.cookbook:check_url_available and check_port_listening
// in etc/promise, symbolic.link of the software's binary, plain publish; type "readonly" publishes with
// publish.serialised.
const slaposTally = "cmd/slapnode/testdata/slapos-tally/software.cfg"

var (
	tallyURLRe = regexp.MustCompile(`(?m)^  url = (http://\S+)`)
	adminURLRe = regexp.MustCompile(`(?m)^  admin-url = (http://\S+)`)
)

func checkSlaposTally(t *testing.T, cred *syscall.Credential, root, profile, port, adminPort string) {
	t.Helper()
	apply := legacyApply(t, cred, root, profile, "--param", "port="+port, "--param", "admin-port="+adminPort)
	r := apply()
	saysAll(t, "first apply", r.stdout, "+ tally (cookbook:cmmi)", "switch-softwaretype: software type default runs",
		"promise tally-url: ok", "promise tally-port: ok", "services: started tally, tally-admin",
		"counters = visits errors", "greeting = Hello", "software-type = default")
	url, admin := tallyURLRe.FindStringSubmatch(r.stdout), adminURLRe.FindStringSubmatch(r.stdout)
	if url == nil || admin == nil || !strings.HasPrefix(url[1], "http://[") {
		t.Fatalf("connection parameters not published (url on IPv6, admin-url):\n%s", r.stdout)
	}
	first := get(t, url[1])
	if !regexp.MustCompile(`^Hello #\d+ \(patched\)\n$`).MatchString(first) {
		t.Fatalf("tally answers %q (the patch, the greeting)", first)
	}
	if body := get(t, admin[1]); !regexp.MustCompile(`^admin #\d+ \(patched\)\n$`).MatchString(body) {
		t.Fatalf("admin answers %q", body)
	}
	out := runAs(t, cred, root, "output")
	if out.code != 0 || !strings.Contains(out.stdout, url[1]) {
		t.Errorf("slapnode output (%d):\n%s%s", out.code, out.stdout, out.stderr)
	}
	pr := runAs(t, cred, root, "promise", "run")
	for _, p := range []string{"tally-url", "tally-port"} {
		if !regexp.MustCompile(p + `\s+ok`).MatchString(pr.stdout) {
			t.Errorf("promise run: %s not ok (%d):\n%s%s", p, pr.code, pr.stdout, pr.stderr)
		}
	}

	r = apply()
	saysAll(t, "second apply is not a no-op", r.stdout, "software: already installed", "instance: 0 installed, 0 reinstalled, 0 uninstalled", "services: unchanged tally, tally-admin")

	r = apply("--param", "greeting=Salut")
	saysAll(t, "after greeting=Salut", r.stdout, "services: restarted tally; unchanged tally-admin", "greeting = Salut")
	if body := get(t, url[1]); !strings.HasPrefix(body, "Salut #") {
		t.Fatalf("tally answers %q after the change", body)
	}
	part := filepath.Join(root, "instance", "slappart0")
	if b, err := os.ReadFile(filepath.Join(part, "var", "tally", "tally.env")); err != nil || !strings.Contains(string(b), `TALLY_GREETING="Salut"`) {
		t.Errorf("tally.env (plain slapos.recipe.template inline): %q %v", b, err)
	}

	// symbolic.link from the partition to the software (the host's ln).
	if l, err := os.Readlink(filepath.Join(part, "bin", "tally")); err != nil || !strings.HasSuffix(l, "/parts/tally/bin/tally") {
		t.Errorf("bin/tally links to %q (%v)", l, err)
	}

	r = runAs(t, cred, root, "apply", profile, "--name", "ro", "--type", "readonly")
	if r.code != 0 || !strings.Contains(r.stdout, "counters = 2") || !strings.Contains(r.stdout, "software-type = readonly") {
		t.Fatalf("readonly type (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestSlaposTallyRootless(t *testing.T) {
	requireBuiltins(t)
	cred, root, profile := legacyRootless(t, "../testdata/slapos-tally", "software.cfg", slaposTally)
	checkSlaposTally(t, cred, root, profile, "18540", "18541")
}

func TestSlaposTallyFormattedNode(t *testing.T) {
	requireBuiltins(t)
	root := legacyFormatted(t, "tally", "slntesttl")
	checkSlaposTally(t, nil, root, slaposTally, "18542", "18543")
}
