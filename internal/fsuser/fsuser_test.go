package fsuser

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDo(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("fsuser's test needs root, and CI runs as root")
		}
		t.Skip("changing the file system identity needs root")
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	uid, gid, groups := Ids(65534, 65534, nil)
	if uid != 65534 || gid != 65534 || groups == nil {
		t.Fatalf("Ids: %d %d %v", uid, gid, groups)
	}
	err := Do(uid, gid, groups, func() error {
		_, err := os.ReadFile(secret)
		return err
	})
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("reading root's 0600 file as nobody: %v, want permission denied", err)
	}
	// Every thread is root again.
	for range 50 {
		if _, err := os.ReadFile(secret); err != nil {
			t.Fatalf("after Do: %v", err)
		}
	}
	if u, _, _ := Ids(0, 0, nil); u != -1 {
		t.Errorf("Ids of root's own uid: %d, want -1 (nothing to change)", u)
	}
}
