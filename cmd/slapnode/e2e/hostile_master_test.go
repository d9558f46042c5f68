package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile reproductions of issue 18 #10, #11 and #13 against the real
// binary: what an unprivileged local user (a partition's user, played by
// nobody) could do to the master and the binary cache, and what a master
// database in a world-readable directory looked like.

const hmNobody = 65534

// hmCurl runs curl as nobody and returns the HTTP status and body.
func hmCurl(t *testing.T, args ...string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed (.ci/deps installs it)")
		}
		t.Skip("curl is not installed")
	}
	cmd := exec.Command("curl", append([]string{"-s", "-w", "\n%{http_code}", "-m", "10"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: hmNobody, Gid: hmNobody}}
	cmd.Dir = "/"
	out, _ := cmd.Output()
	s := string(out)
	i := strings.LastIndex(s, "\n")
	if i < 0 {
		return s, ""
	}
	return s[i+1:], s[:i]
}

func hmRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the hostile master tests play another local user, which needs root, and CI runs as root")
		}
		t.Skip("playing another local user needs root")
	}
}

// TestHostileMasterLocalUserCannotWrite: on a loopback master run by root
// (no --auth), nobody's curl can neither publish connection parameters for
// a partition nor read the computer; root's own client still can (#10).
func TestHostileMasterLocalUserCannotWrite(t *testing.T) {
	hmRequireRoot(t)
	_, addr := startMaster(t)
	base := "http://" + addr
	node := t.TempDir()
	// The master's operator (root) registers a node and requests an
	// instance without any credential.
	if r := run(t, node, "node", "converge", "--master", base, "--node-id", "COMP-H", "--partitions", "2"); r.code != 0 {
		t.Fatalf("converge: %s%s", r.stdout, r.stderr)
	}
	stopNode(t, node)
	if r := cli(t, base, "request", "victim", "https://example.invalid/software.cfg", "--node", "COMP-H", "--no-validate"); r.code != 0 {
		t.Fatalf("request: %s%s", r.stdout, r.stderr)
	}
	evil := `<marshal><dictionary id="i2"><string>url</string><string>https://evil.example/</string></dictionary></marshal>`
	code, body := hmCurl(t, "-X", "POST", "--data-urlencode", "computer_id=COMP-H", "--data-urlencode", "computer_partition_id=slappart0",
		"--data-urlencode", "connection_xml="+evil, "--data-urlencode", "slave_reference=None", base+"/setComputerPartitionConnectionXml")
	if code != "401" || !strings.Contains(body, "no credential") {
		t.Errorf("nobody publishing slappart0's connection parameters: %s %s", code, body)
	}
	if code, _ := hmCurl(t, base+"/getFullComputerInformation?computer_id=COMP-H"); code != "401" {
		t.Errorf("nobody reading the computer: %s, want 401", code)
	}
	if code, _ := hmCurl(t, base+"/api/v1/instances"); code != "401" {
		t.Errorf("nobody reading the JSON API: %s, want 401", code)
	}
	if info := cli(t, base, "info", "victim"); info.code != 0 || strings.Contains(info.stdout, "evil") {
		t.Errorf("victim after the attempt: %s%s", info.stdout, info.stderr)
	}
}

// TestHostileCacheServeRefusesAnonymousUploads: `cache serve` without
// --upload-key takes no upload from anyone (#11).
func TestHostileCacheServeRefusesAnonymousUploads(t *testing.T) {
	hmRequireRoot(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	background(t, "cache.log", "cache", "serve", "--dir", dir, "--listen", addr)
	sum := sha256.Sum256([]byte("planted"))
	url := "http://" + addr + "/shacache/" + hex.EncodeToString(sum[:])
	var code, body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = hmCurl(t, "-X", "PUT", "--data-binary", "planted", url); code != "000" && code != "" {
			break
		}
	}
	if code != "403" || !strings.Contains(body, "no anonymous uploads") {
		t.Errorf("anonymous upload: %s %s, want 403", code, body)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "shacache")); len(ents) != 0 {
		t.Errorf("the refused upload left %d file(s)", len(ents))
	}
}

// TestHostileMasterDatabaseIsPrivate: --db in a world-readable directory
// gives a database (and WAL) others cannot read (#13).
func TestHostileMasterDatabaseIsPrivate(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	db := filepath.Join(dir, "master.db")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	background(t, "master.log", "master", "--db", db, "--listen", addr, "--root", t.TempDir())
	deadline := time.Now().Add(20 * time.Second)
	for cli(t, "http://"+addr, "supply", "https://example.invalid/software.cfg", "COMP-X").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("master did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []string{db, db + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %o, readable by others", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if os.Geteuid() == 0 {
		cmd := exec.Command("cat", db)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: hmNobody, Gid: hmNobody}}
		if err := cmd.Run(); err == nil {
			t.Error("nobody read the master database")
		}
	}
}
