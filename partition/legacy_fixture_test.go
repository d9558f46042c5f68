package partition

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"
)

// The slapos-hello fixture (examples/slapos-hello) builds its server from
// hello-1.0.tar.gz, made from src/ by fixtureTarball; software.cfg pins
// its md5sum, as SlapOS releases pin their sources.
const fixtureDir = "../examples/slapos-hello"

var regenFixture = flag.Bool("regen-fixture", false, "rewrite examples/slapos-hello/hello-1.0.tar.gz and its md5sum from src/")

// fixtureTarball packs src/hello-1.0 reproducibly: sorted names, fixed
// times and owners, so that the same sources give the same md5sum.
func fixtureTarball(t *testing.T) []byte {
	t.Helper()
	src := filepath.Join(fixtureDir, "src")
	var names []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != src {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.ModTime = time.Unix(0, 0)
	tw := tar.NewWriter(gz)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range names {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(src, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if st.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h.Typeflag, h.Size, h.Mode = tar.TypeReg, int64(len(b)), 0o644
		if st.Mode()&0o111 != 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var md5sumLine = regexp.MustCompile(`(?m)^md5sum = (\S+)$`)

// TestFixtureTarball checks that the fixture's tarball is its sources, and
// that software.cfg pins the tarball's md5sum.
func TestFixtureTarball(t *testing.T) {
	tgz := fixtureTarball(t)
	sum := md5.Sum(tgz)
	want := hex.EncodeToString(sum[:])
	cfgPath := filepath.Join(fixtureDir, "software.cfg")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if *regenFixture {
		if err := os.WriteFile(filepath.Join(fixtureDir, "hello-1.0.tar.gz"), tgz, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg = md5sumLine.ReplaceAll(cfg, []byte("md5sum = "+want))
		if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(filepath.Join(fixtureDir, "hello-1.0.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tgz) {
		t.Errorf("hello-1.0.tar.gz is not src/ packed: run go test ./partition -run TestFixtureTarball -args -regen-fixture")
	}
	m := md5sumLine.FindSubmatch(cfg)
	if m == nil || string(m[1]) != want {
		t.Errorf("software.cfg pins md5sum %q, the tarball's is %s: run go test ./partition -run TestFixtureTarball -args -regen-fixture", m, want)
	}
	// The HCL port of the release pins the same tarball.
	hclPath := filepath.Join(fixtureDir, "software.hcl")
	hcl, err := os.ReadFile(hclPath)
	if err != nil {
		t.Fatal(err)
	}
	if *regenFixture {
		hcl = md5sumAttr.ReplaceAll(hcl, []byte(`md5sum = "`+want+`"`))
		os.WriteFile(hclPath, hcl, 0o644)
	}
	if m := md5sumAttr.FindSubmatch(hcl); m == nil || string(m[1]) != want {
		t.Errorf("software.hcl pins md5sum %q, the tarball's is %s", m, want)
	}
}

var md5sumAttr = regexp.MustCompile(`md5sum = "([0-9a-f]*)"`)
