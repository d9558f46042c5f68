package users

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fixturePasswd = `root:x:0:0:root:/root:/bin/bash
# a comment kept as is
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sys999:x:999:999::/nonexistent:/usr/sbin/nologin
`
const fixtureGroup = `root:x:0:
daemon:x:1:
sys999:x:999:
`
const fixtureShadow = `root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
`
const fixtureGshadow = `root:*::
daemon:*::
`

// etcCopy makes a user database in a temporary directory, so that the
// logic is tested without root and without touching /etc.
func etcCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"passwd": fixturePasswd, "group": fixtureGroup, "shadow": fixtureShadow, "gshadow": fixtureGshadow,
		"login.defs": "SYS_UID_MIN 100\nSYS_UID_MAX 999\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnsureUserCreatesUpdatesAndIsIdempotent(t *testing.T) {
	dir := etcCopy(t)
	tx, err := Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	soft, created, err := tx.EnsureGroup("slapsoft", 0)
	if err != nil || !created {
		t.Fatalf("EnsureGroup: %d %v %v", soft, created, err)
	}
	if soft != 998 {
		t.Errorf("slapsoft gid = %d, want 998 (highest free system id, 999 taken)", soft)
	}
	u, changed, err := tx.EnsureUser(Spec{Name: "slapuser0", Home: "/srv/x/slappart0", Groups: []string{"slapsoft"}})
	if err != nil || !changed {
		t.Fatalf("EnsureUser: %v %v", changed, err)
	}
	if u.Uid != 997 || u.Gid != 997 || u.Home != "/srv/x/slappart0" || u.Shell != "/bin/sh" || len(u.Groups) != 1 || u.Groups[0] != "slapsoft" {
		t.Errorf("user = %+v", u)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	passwd := read(t, dir, "passwd")
	if !strings.HasPrefix(passwd, fixturePasswd) || !strings.Contains(passwd, "slapuser0:x:997:997:slapnode partition user:/srv/x/slappart0:/bin/sh\n") {
		t.Errorf("passwd:\n%s", passwd)
	}
	if g := read(t, dir, "group"); !strings.Contains(g, "slapsoft:x:998:slapuser0\n") || !strings.Contains(g, "slapuser0:x:997:\n") {
		t.Errorf("group:\n%s", g)
	}
	if s := read(t, dir, "shadow"); !strings.Contains(s, "\nslapuser0:!:") {
		t.Errorf("shadow has no locked entry:\n%s", s)
	}
	if s := read(t, dir, "gshadow"); !strings.Contains(s, "slapsoft:!::slapuser0\n") {
		t.Errorf("gshadow:\n%s", s)
	}
	if b := read(t, dir, "passwd-"); b != fixturePasswd {
		t.Errorf("backup passwd- = %q", b)
	}
	st, _ := os.Stat(filepath.Join(dir, "shadow"))
	if st.Mode().Perm() != 0o640 {
		t.Errorf("shadow mode %v, want kept 0640", st.Mode().Perm())
	}

	// Same request again: nothing to write.
	tx, err = Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed, err := tx.EnsureUser(Spec{Name: "slapuser0", Home: "/srv/x/slappart0", Groups: []string{"slapsoft"}}); err != nil || changed {
		t.Fatalf("second EnsureUser: changed=%v err=%v", changed, err)
	}
	if tx.Changed() {
		t.Error("transaction changed on a no-op")
	}
	// A different home is corrected, and an unlocked password is locked.
	if _, changed, err := tx.EnsureUser(Spec{Name: "slapuser0", Home: "/srv/y/slappart0", Groups: []string{"slapsoft"}}); err != nil || !changed {
		t.Fatalf("EnsureUser with new home: changed=%v err=%v", changed, err)
	}
	i := tx.shadow.find("slapuser0")
	f := tx.shadow.fields(i)
	f[1] = "$6$hash"
	tx.shadow.set(i, f)
	if _, changed, err := tx.EnsureUser(Spec{Name: "slapuser0", Home: "/srv/y/slappart0"}); err != nil || !changed {
		t.Fatalf("EnsureUser relocking: changed=%v err=%v", changed, err)
	}
	if got := tx.shadow.fields(tx.shadow.find("slapuser0"))[1]; got != "!$6$hash" {
		t.Errorf("password field %q, want locked !$6$hash", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(t, dir, "passwd"), ":/srv/y/slappart0:") {
		t.Error("home not updated")
	}
}

func TestRemove(t *testing.T) {
	dir := etcCopy(t)
	tx, err := Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tx.EnsureGroup("slapsoft", 0); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"slapuser0", "slapuser1"} {
		if _, _, err := tx.EnsureUser(Spec{Name: n, Home: "/h/" + n, Groups: []string{"slapsoft"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.RemoveGroup("slapuser0"); err == nil {
		t.Error("removing a primary group of an existing user succeeded")
	}
	if !tx.RemoveUser("slapuser0") {
		t.Error("RemoveUser: not found")
	}
	if ok, err := tx.RemoveGroup("slapuser0"); !ok || err != nil {
		t.Errorf("RemoveGroup: %v %v", ok, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	g := read(t, dir, "group")
	if strings.Contains(g, "slapuser0") || !strings.Contains(g, "slapsoft:x:998:slapuser1\n") {
		t.Errorf("group after removal:\n%s", g)
	}
	if strings.Contains(read(t, dir, "shadow"), "slapuser0") || strings.Contains(read(t, dir, "gshadow"), "slapuser0") {
		t.Error("shadow files still name slapuser0")
	}
}

func TestNoFreeID(t *testing.T) {
	dir := etcCopy(t)
	if err := os.WriteFile(filepath.Join(dir, "login.defs"), []byte("SYS_UID_MIN 998\nSYS_UID_MAX 999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if _, _, err := tx.EnsureUser(Spec{Name: "a", Home: "/a"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = tx.EnsureUser(Spec{Name: "b", Home: "/b"})
	if !errors.Is(err, ErrNoFreeID) || !strings.Contains(err.Error(), "login.defs") {
		t.Errorf("err = %v, want ErrNoFreeID naming login.defs", err)
	}
}

// TestLockExcludesOtherProcesses holds the lckpwdf lock in a child process
// (fcntl locks are per process) and checks that Begin gives up with
// ErrLocked.
func TestLockExcludesOtherProcesses(t *testing.T) {
	if dir := os.Getenv("SLNTEST_HOLD_LOCK"); dir != "" {
		if _, err := lockDB(dir); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		_, _ = os.Stdin.Read(make([]byte, 1)) // hold until the parent closes stdin
		os.Exit(0)
	}
	dir := etcCopy(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLockExcludesOtherProcesses$")
	cmd.Env = append(os.Environ(), "SLNTEST_HOLD_LOCK="+dir)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper said %q", line)
	}
	old := LockTimeout
	LockTimeout = 200 * time.Millisecond
	defer func() { LockTimeout = old }()
	if _, err := Begin(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("Begin while locked elsewhere: %v, want ErrLocked", err)
	}
	stdin.Close()
	_ = cmd.Wait()
	tx, err := Begin(dir)
	if err != nil {
		t.Fatalf("Begin after release: %v", err)
	}
	tx.Close()
}

// sweep removes users and groups named slntestusr* left by an earlier failed
// run.
func sweep(t *testing.T) {
	tx, err := Begin("/etc")
	if err != nil {
		t.Fatal(err)
	}
	us, gs := tx.Names("slntestusr")
	for _, u := range us {
		tx.RemoveUser(u)
	}
	for _, g := range gs {
		if _, err := tx.RemoveGroup(g); err != nil {
			t.Log(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestSystemDatabase creates a real user in /etc (root only) and checks that
// the system's own tools see it as useradd would have made it.
func TestSystemDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("editing /etc needs root; the logic is covered on a copy by the other tests")
	}
	sweep(t)
	t.Cleanup(func() { sweep(t) })
	tx, err := Begin("/etc")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tx.EnsureGroup("slntestusrsoft", 0); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, _, err := tx.EnsureUser(Spec{Name: "slntestusr0", Home: home, Groups: []string{"slntestusrsoft"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("slntestusr0")
	if err != nil {
		t.Fatal(err)
	}
	if u.HomeDir != home || u.Uid != u.Gid {
		t.Errorf("user = %+v", u)
	}
	out, err := exec.Command("id", "-Gn", "slntestusr0").CombinedOutput()
	if err != nil || strings.Fields(string(out))[0] != "slntestusr0" || !strings.Contains(string(out), "slntestusrsoft") {
		t.Errorf("id -Gn: %q %v", out, err)
	}
	if out, err := exec.Command("passwd", "-S", "slntestusr0").CombinedOutput(); err == nil && !strings.Contains(string(out), " L ") {
		t.Errorf("passwd -S says the password is not locked: %q", out)
	}
	if out, err := exec.Command("pwck", "-r", "-q").CombinedOutput(); err != nil && strings.Contains(string(out), "slntest") {
		t.Errorf("pwck complains about our entries: %s", out)
	}
}
