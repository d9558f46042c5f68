package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

func writeTar(t *testing.T, path string, names ...string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o640, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
	}
	tw.WriteHeader(&tar.Header{Name: "top/hard", Typeflag: tar.TypeLink, Linkname: names[0]})
	tw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPlainTarAndStrip(t *testing.T) {
	dir := t.TempDir()
	arc := filepath.Join(dir, "a.tar")
	writeTar(t, arc, "top/a", "top/sub/b")
	if f, err := Detect(arc); err != nil || f != Tar {
		t.Fatalf("Detect = %v %v", f, err)
	}
	var ctx recipe.Context
	dest := filepath.Join(dir, "out")
	if err := Unpack(ctx, arc, dest, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "sub/b", "hard"} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != "x" {
			t.Fatalf("%s: %q %v", p, b, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(dest, "a")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	if err := Unpack(ctx, arc, dest, Options{Strip: "false"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "top", "a")); err != nil {
		t.Fatal("strip=false stripped")
	}
	if err := Unpack(ctx, arc, dest, Options{Strip: "maybe"}); err == nil {
		t.Fatal("bad strip value accepted")
	}
	if _, err := os.Stat(dest + ".unpack-tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary directory left behind")
	}
}

func TestBzip2(t *testing.T) {
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("bzip2 not installed: cannot make a .tar.bz2 (the standard library only decodes bzip2)")
	}
	dir := t.TempDir()
	arc := filepath.Join(dir, "a.tar")
	writeTar(t, arc, "top/a")
	if out, err := exec.Command("bzip2", arc).CombinedOutput(); err != nil {
		t.Fatalf("bzip2: %v %s", err, out)
	}
	if f, _ := Detect(arc + ".bz2"); f != TarBzip2 {
		t.Fatalf("Detect = %v", f)
	}
	if err := Unpack(recipe.Context{}, arc+".bz2", filepath.Join(dir, "out"), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "a")); err != nil {
		t.Fatal(err)
	}
}

func TestSafeJoin(t *testing.T) {
	for name, ok := range map[string]bool{"a/b": true, "./a": true, "../a": false, "a/../../b": false, "/etc/passwd": false} {
		if _, err := safeJoin("/d", name); (err == nil) != ok {
			t.Errorf("safeJoin(%q) error = %v, want ok=%v", name, err, ok)
		}
	}
}
