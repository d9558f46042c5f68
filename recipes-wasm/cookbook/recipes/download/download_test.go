package download

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func tgz(t *testing.T, members map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"pkg-1.0/", "pkg-1.0/bin/", "pkg-1.0/bin/run", "pkg-1.0/README"} {
		body, ok := members[name]
		if !ok {
			continue
		}
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if strings.HasSuffix(name, "run") {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.WriteHeader(&tar.Header{Name: "pkg-1.0/link", Typeflag: tar.TypeSymlink, Linkname: "README"}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestDownload(t *testing.T) {
	e := recipetest.New(t)
	body := []byte("payload")
	src := filepath.Join(e.Context.ProfileDir, "files", "tool-1.0.bin")
	e.WriteFile(src, string(body))
	out := e.MustInstall("dl", "download", map[string]any{"url": "files/tool-1.0.bin", "sha256": sha(body), "mode": "0755"})
	target := e.Path("parts", "dl", "tool-1.0.bin")
	if out.Outputs["target"] != target || out.Outputs["location"] != e.Path("parts", "dl") || out.Installed[0] != e.Path("parts", "dl") {
		t.Fatalf("result %+v", out)
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o755 || e.ReadFile(target) != "payload" {
		t.Fatalf("downloaded file: %v %v", st, err)
	}
	m := md5.Sum(body)
	out = e.MustInstall("dl2", "download", map[string]any{"url": "file://" + src, "md5sum": hex.EncodeToString(m[:]), "destination": "bin/tool"})
	if out.Outputs["target"] != e.Path("bin", "tool") || out.Installed[0] != e.Path("bin", "tool") {
		t.Fatalf("destination: %+v", out)
	}
	// buildout.hash.cfg's filename = templates/x.in: a path inside the part.
	out = e.MustInstall("dl3", "download", map[string]any{"url": "files/tool-1.0.bin", "sha256": sha(body), "filename": "templates/tool.in"})
	if out.Outputs["target"] != e.Path("parts", "dl3", "templates", "tool.in") || e.ReadFile(e.Path("parts", "dl3", "templates", "tool.in")) != "payload" {
		t.Fatalf("filename with a directory: %+v", out)
	}
	e.MustFail("up", "download", map[string]any{"url": "files/tool-1.0.bin", "sha256": sha(body), "filename": "../escape"}, "cannot name the file")
	e.MustFail("bad", "download", map[string]any{"url": "files/tool-1.0.bin", "sha256": strings.Repeat("0", 64)}, "checksum mismatch")
	e.MustFail("nosum", "download", map[string]any{"url": "files/tool-1.0.bin"}, "set sha256")
}

func TestDownloadUnpacked(t *testing.T) {
	e := recipetest.New(t)
	data := tgz(t, map[string]string{"pkg-1.0/": "", "pkg-1.0/bin/": "", "pkg-1.0/bin/run": "#!/bin/sh\n", "pkg-1.0/README": "hi"})
	arc := filepath.Join(e.Context.ProfileDir, "pkg-1.0.tar.gz")
	e.WriteFile(arc, string(data))
	out := e.MustInstall("src", "download-unpacked", map[string]any{"url": arc, "sha256": sha(data)})
	dest := e.Path("parts", "src")
	if out.Outputs["location"] != dest || out.Installed[0] != dest {
		t.Fatalf("result %+v", out)
	}
	if e.ReadFile(filepath.Join(dest, "README")) != "hi" || e.ReadFile(filepath.Join(dest, "link")) != "hi" {
		t.Fatal("auto strip did not remove pkg-1.0/")
	}
	if st, _ := os.Stat(filepath.Join(dest, "bin", "run")); st.Mode().Perm() != 0o755 {
		t.Fatalf("mode lost: %v", st.Mode())
	}
	out = e.MustInstall("keep", "download-unpacked", map[string]any{"url": arc, "sha256": sha(data), "destination": "src", "strip-top-level-dir": false})
	if e.ReadFile(e.Path("src", "pkg-1.0", "README")) != "hi" {
		t.Fatal("strip-top-level-dir=false stripped")
	}
	// A re-install replaces the tree (no leftovers from the previous one).
	e.WriteFile(e.Path("src", "stale"), "x")
	e.MustInstall("keep", "download-unpacked", map[string]any{"url": arc, "sha256": sha(data), "destination": "src", "strip-top-level-dir": "false"})
	if _, err := os.Stat(e.Path("src", "stale")); !os.IsNotExist(err) {
		t.Fatal("stale file survived a re-install")
	}
	e.Uninstall("keep", "download-unpacked")
	if _, err := os.Stat(e.Path("src")); !os.IsNotExist(err) {
		t.Fatal("uninstall left the tree")
	}
}

func TestZipAndErrors(t *testing.T) {
	e := recipetest.New(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("a/b.txt")
	w.Write([]byte("B"))
	w, _ = zw.Create("c.txt")
	w.Write([]byte("C"))
	zw.Close()
	arc := filepath.Join(e.Context.ProfileDir, "x.zip")
	e.WriteFile(arc, buf.String())
	e.MustInstall("z", "download-unpacked", map[string]any{"url": arc, "sha256": sha(buf.Bytes())})
	if e.ReadFile(e.Path("parts", "z", "a", "b.txt")) != "B" || e.ReadFile(e.Path("parts", "z", "c.txt")) != "C" {
		t.Fatal("zip not unpacked (two top-level entries: no strip)")
	}
	e.MustFail("z2", "download-unpacked", map[string]any{"url": arc, "sha256": sha(buf.Bytes()), "strip-top-level-dir": true}, "has 2 top-level entries")

	evil := func() []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
		tw.Close()
		return b.Bytes()
	}()
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "evil.tar"), string(evil))
	e.MustFail("evil", "download-unpacked", map[string]any{"url": "evil.tar", "sha256": sha(evil)}, "leaves the destination")

	e.WriteFile(filepath.Join(e.Context.ProfileDir, "plain.txt"), "text")
	e.MustFail("txt", "download-unpacked", map[string]any{"url": "plain.txt", "sha256": sha([]byte("text"))}, "is not an archive")
}

func TestTarXzThroughHost(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed: the host-tar path cannot be exercised here")
	}
	e := recipetest.New(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pkg"), 0o755)
	os.WriteFile(filepath.Join(dir, "pkg", "f"), []byte("F"), 0o644)
	arc := filepath.Join(e.Context.ProfileDir, "pkg.tar.xz")
	if out, err := exec.Command("tar", "-cJf", arc, "-C", dir, "pkg").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	data, _ := os.ReadFile(arc)
	e.Host.AllowExec = []string{}
	e.MustFail("xz", "download-unpacked", map[string]any{"url": arc, "sha256": sha(data)}, `allow_exec = ["tar", "xz"]`)
	e.Host.AllowExec = nil
	e.MustInstall("xz", "download-unpacked", map[string]any{"url": arc, "sha256": sha(data)})
	if e.ReadFile(e.Path("parts", "xz", "f")) != "F" {
		t.Fatal("tar.xz not unpacked")
	}
}
