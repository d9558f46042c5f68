package local

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPartitionCertificateFiles: certificates land as SlapOS writes them
// (0400, owned by the partition user), and root follows nothing planted in
// the repository: a symbolic or hard link to a victim leaves the victim
// intact, and a repository others could write to is refused.
func TestPartitionCertificateFiles(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "partition_pki")
	os.Mkdir(repo, 0o711)
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "victim")
	os.WriteFile(victim, []byte("precious"), 0o600)

	var cred *syscall.Credential
	wantUID := uint32(os.Geteuid())
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		wantUID = 65534
	}
	// Planted: the certificate is a symbolic link to the victim, the key a
	// hard link to it.
	os.Symlink(victim, filepath.Join(repo, "slappart0.crt"))
	if err := os.Link(victim, filepath.Join(repo, "slappart0.key")); err != nil {
		t.Fatal(err)
	}
	changed, err := WritePartitionCertificate(repo, "slappart0", cred, "CERT\n", "KEY\n")
	if err != nil || !changed {
		t.Fatalf("write: %v %v", changed, err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the victim was overwritten: %q", b)
	}
	for name, want := range map[string]string{"slappart0.crt": "CERT\n", "slappart0.key": "KEY\n"} {
		p := filepath.Join(repo, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o400 || st.Uid != wantUID || st.Nlink != 1 {
			t.Errorf("%s: mode %v uid %d links %d, want a regular 0400 file of uid %d", name, fi.Mode(), st.Uid, st.Nlink, wantUID)
		}
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s holds %q", name, b)
		}
	}
	if changed, err := WritePartitionCertificate(repo, "slappart0", cred, "CERT\n", "KEY\n"); err != nil || changed {
		t.Errorf("rewriting the same certificate: changed=%v %v", changed, err)
	}
	if ents, _ := os.ReadDir(repo); len(ents) != 2 {
		t.Errorf("%d files in the repository, want 2 (no temporary file left)", len(ents))
	}
	if err := RemovePartitionCertificate(repo, "slappart0"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(repo); len(ents) != 0 {
		t.Errorf("%d files left after removal", len(ents))
	}
	// A repository others may write to is refused, as is a link to one.
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := WritePartitionCertificate(open, "slappart0", cred, "C", "K"); err == nil || !strings.Contains(err.Error(), "writable by it only") {
		t.Errorf("world-writable repository: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(repo, link)
	if _, err := WritePartitionCertificate(link, "slappart0", cred, "C", "K"); err == nil {
		t.Error("a repository that is a symbolic link was followed")
	}
	if _, err := WritePartitionCertificate(repo, "../escape", cred, "C", "K"); err == nil {
		t.Error("a partition id with a slash was accepted")
	}
}
