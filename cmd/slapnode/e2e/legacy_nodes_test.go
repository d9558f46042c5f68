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

// legacyRootless prepares a node root for a rootless apply of a fixture
// release: run as root, the test applies as nobody, who owns the root and
// gets a world-readable copy of the fixture directory (fixtureDir, relative
// to this package) in which rel names the software.cfg. It returns the
// credential to run slapnode with (nil when not root), the root and the
// profile to apply (profile itself when not root); the node is stopped when
// the test ends.
func legacyRootless(t *testing.T, fixtureDir, rel, profile string) (*syscall.Credential, string, string) {
	t.Helper()
	root := t.TempDir()
	var cred *syscall.Credential
	path := profile
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		os.Chmod(filepath.Dir(root), 0o755)
		if err := os.Chown(root, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(filepath.Dir(root), filepath.Base(fixtureDir))
		if err := os.CopyFS(dir, os.DirFS(fixtureDir)); err != nil {
			t.Fatal(err)
		}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil {
				os.Chmod(p, info.Mode().Perm()|0o055)
			}
			return nil
		})
		path = filepath.Join(dir, rel)
	}
	t.Cleanup(func() { runAs(t, cred, root, "node", "stop") })
	return cred, root, path
}

// legacyFormatted formats a node as root (skipping otherwise) with two
// partitions whose users are userBase0 and userBase1, software user
// userBase+"soft" and cgroups under slntest-NAME; everything it made is
// removed when the test ends.
func legacyFormatted(t *testing.T, name, userBase string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("node format creates users and cgroups: needs root")
	}
	root := filepath.Join(os.TempDir(), fmt.Sprintf("slntest-%s-%d", name, os.Getpid()))
	os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "node.hcl"), []byte(fmt.Sprintf(`
partitions {
  count          = 2
  user_base_name = %q
}
software_user = "%ssoft"
cgroup {
  parent = "slntest-%s"
}
`, userBase, userBase, name)), 0o644)
	t.Cleanup(func() {
		run(t, root, "node", "stop")
		if r := run(t, root, "node", "unformat", "--purge"); r.code != 0 {
			t.Errorf("unformat: %s%s", r.stdout, r.stderr)
		}
		os.RemoveAll(root)
	})
	if r := run(t, root, "node", "format"); r.code != 0 {
		t.Fatalf("format (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	return root
}

// checkServiceUser checks that service svc of slappart0 runs as user want.
func checkServiceUser(t *testing.T, root, svc, want string) {
	t.Helper()
	st := run(t, root, "status")
	pid := regexp.MustCompile(`slappart0\s+` + regexp.QuoteMeta(svc) + `\s+RUNNING\s+(\d+)`).FindStringSubmatch(st.stdout)
	if pid == nil {
		t.Fatalf("status:\n%s", st.stdout)
	}
	status, _ := os.ReadFile("/proc/" + pid[1] + "/status")
	uid := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindStringSubmatch(string(status))
	if u, err := user.LookupId(uid[1]); err != nil || u.Username != want {
		t.Fatalf("%s runs as uid %s (%v), want %s", svc, uid[1], err, want)
	}
}

// legacyApply returns a function applying a fixture release with the
// given arguments and any more, failing the test when apply fails.
func legacyApply(t *testing.T, cred *syscall.Credential, root string, args ...string) func(extra ...string) result {
	return func(extra ...string) result {
		t.Helper()
		r := runAs(t, cred, root, append(append([]string{"apply"}, args...), extra...)...)
		if r.code != 0 {
			t.Fatalf("apply %v exited %d\nstdout:\n%s\nstderr:\n%s", extra, r.code, r.stdout, r.stderr)
		}
		return r
	}
}

// saysAll reports each of wants that out does not contain; what names
// the output (e.g. "the first apply").
func saysAll(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s does not say %q:\n%s", what, want, out)
		}
	}
}
