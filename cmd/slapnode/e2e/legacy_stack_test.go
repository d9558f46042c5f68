package e2e

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The slapos-stack fixture (testdata/slapos-stack) is harder than
// slapos-hello, in the ways held-out SlapOS releases are: the software
// extends a stack in another directory whose template (rendered from the
// stack's own directory) the instance profiles extend;
// slapconfiguration.serialised with a json-in-xml software.cfg.json; a
// request of a second software type whose connection parameter the
// frontend reads back and publishes (publish.serialised); a
// check_url_available promise plugin; a cron.d entry; generate.password;
// a jinja2 template rendered in the partition from the whole
// [slap-configuration] section (its dotted options); a command run as the
// partition's user in what earlier parts made.
const slaposStack = "cmd/slapnode/e2e/testdata/slapos-stack/software/frontend/software.cfg"

var (
	stackURLRe      = regexp.MustCompile(`(?m)^  url = (http://\S+)`)
	stackBackendRe  = regexp.MustCompile(`(?m)^  backend-url = (http://\S+)`)
	stackPasswordRe = regexp.MustCompile(`(?m)^  password = (\S+)`)
)

func checkSlaposStack(t *testing.T, cred *syscall.Credential, root, profile, port, backendPort string) {
	t.Helper()
	apply := legacyApply(t, cred, root, profile, "--param", "name=Alice", "--param", "port="+port, "--param", "backend-port="+backendPort)
	r := apply()
	saysAll(t, "first apply", r.stdout, "+ hello (cookbook:cmmi)", "instance frontend/backend in slappart1",
		"switch-softwaretype: software type backend runs", "promise frontend-promise: ok")
	url, backend, password := stackURLRe.FindStringSubmatch(r.stdout), stackBackendRe.FindStringSubmatch(r.stdout), stackPasswordRe.FindStringSubmatch(r.stdout)
	if url == nil || backend == nil || password == nil || len(password[1]) != 12 {
		t.Fatalf("connection parameters not published (url, backend-url, a 12-character password):\n%s", r.stdout)
	}
	if body := get(t, url[1]); body != "Hello Alice, backend at "+backend[1]+"\n" {
		t.Fatalf("frontend answers %q", body)
	}
	if body := get(t, backend[1]); body != "Backend of Alice\n" {
		t.Fatalf("backend answers %q", body)
	}
	part := filepath.Join(root, "instance", "slappart0")
	if b, err := os.ReadFile(filepath.Join(part, "etc", "cron.d", "seed")); err != nil || string(b) != "*/5 * * * * "+filepath.Join(part, "srv", "seed")+"\n" {
		t.Errorf("cron entry: %q %v", b, err)
	}
	ip := strings.Split(strings.TrimPrefix(url[1], "http://"), ":")[0]
	if b, err := os.ReadFile(filepath.Join(part, "etc", "app.conf")); err != nil || string(b) != "name = Alice\nip = "+ip {
		t.Errorf("app.conf (from [slap-configuration]'s dotted options): %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "srv", "seed.txt")); err != nil || string(b) != "seeded\n" {
		t.Errorf("the partition user's command: %q %v", b, err)
	}
	pr := runAs(t, cred, root, "promise", "run")
	if pr.code != 0 || !regexp.MustCompile(`backend-promise\s+ok`).MatchString(pr.stdout) || !regexp.MustCompile(`frontend-promise\s+ok`).MatchString(pr.stdout) {
		t.Errorf("promises (%d):\n%s%s", pr.code, pr.stdout, pr.stderr)
	}

	// Again: nothing changes, the password is kept.
	r = apply()
	saysAll(t, "second apply is not a no-op", r.stdout, "software: already installed", "instance: 0 installed, 0 reinstalled, 0 uninstalled", "services: unchanged frontend", "password = "+password[1])
}

func TestSlaposStackRootless(t *testing.T) {
	requireBuiltins(t)
	cred, root, profile := legacyRootless(t, "testdata/slapos-stack", "software/frontend/software.cfg", slaposStack)
	checkSlaposStack(t, cred, root, profile, "18520", "18521")
}

// On a formatted node: the partitions' files and services are their users'.
func TestSlaposStackFormattedNode(t *testing.T) {
	requireBuiltins(t)
	root := legacyFormatted(t, "stack", "slntestst")
	checkSlaposStack(t, nil, root, slaposStack, "18522", "18523")
	owner := func(p string) string {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		u, err := user.LookupId(fmt.Sprint(st.Sys().(*syscall.Stat_t).Uid))
		if err != nil {
			return err.Error()
		}
		return u.Username
	}
	part := filepath.Join(root, "instance", "slappart0")
	for _, p := range []string{"srv/seed.txt", "etc/.password", "etc/cron.d/seed", "etc/app.conf"} {
		if o := owner(filepath.Join(part, p)); o != "slntestst0" {
			t.Errorf("%s belongs to %s, want slntestst0", p, o)
		}
	}
	if o := owner(filepath.Join(root, "instance", "slappart1", "etc", "service", "backend")); o != "slntestst1" {
		t.Errorf("the backend's wrapper belongs to %s, want slntestst1", o)
	}
}
