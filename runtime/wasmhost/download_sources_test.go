package wasmhost

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// A download cache directory serves an http(s) download in every layout
// SlapOS users have: zc.buildout's (the md5 of the URL, at the top or in a
// namespace directory), the URL's basename (dist/ too), or the checksum.
// A file whose checksum is not the one asked for is never used.
func TestDownloadSources(t *testing.T) {
	content := []byte("hello-1.0 source tarball")
	url := "https://downloads.example.org/src/hello-1.0.tar.gz"
	urlSum := md5hex([]byte(url))
	for name, rel := range map[string]string{
		"buildout hash":      urlSum,
		"buildout namespace": filepath.Join("cmmi", urlSum),
		"basename":           "hello-1.0.tar.gz",
		"dist basename":      filepath.Join("dist", "hello-1.0.tar.gz"),
		"md5":                md5hex(content),
	} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			p := filepath.Join(src, rel)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, content, 0o644)
			d := &downloader{dir: t.TempDir(), inflight: map[string]*flight{}, sources: []string{src}, offline: true}
			open, err := d.network(downloadRequest{URL: url, MD5: md5hex(content)}, nil)
			if err != nil || open == nil {
				t.Fatalf("not found: %v", err)
			}
			res, err := d.transfer(context.Background(), downloadRequest{URL: url, MD5: md5hex(content)}, open)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(res.Path); string(b) != string(content) {
				t.Errorf("cached %q", b)
			}
		})
	}
	// The right name with other content is not used; offline then names
	// the URL, the checksum it must have and where to put it.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hello-1.0.tar.gz"), []byte("something else"), 0o644)
	d := &downloader{dir: t.TempDir(), inflight: map[string]*flight{}, sources: []string{src}, offline: true}
	_, err := d.network(downloadRequest{URL: url, MD5: md5hex(content)}, nil)
	if err == nil || !strings.Contains(err.Error(), "md5sum "+md5hex(content)) || !strings.Contains(err.Error(), src) || !strings.Contains(err.Error(), "as hello-1.0.tar.gz") {
		t.Errorf("offline miss: %v", err)
	}
	// Online, a miss goes to the network.
	d.offline = false
	remote := opener(func(context.Context) (io.ReadCloser, error) { return nil, nil })
	if o, err := d.network(downloadRequest{URL: url, MD5: md5hex(content)}, remote); err != nil || o == nil {
		t.Errorf("online miss: %v", err)
	}
}

// The host's own downloads (extends, modules) use the sources too, and
// offline never reaches the network.
func TestHostDownloadOffline(t *testing.T) {
	content := []byte("a pinned profile")
	srv, requests := countingServer(t, content)
	h := newDownloadHost(t, t.TempDir())
	src := t.TempDir()
	h.SetDownloadSources([]string{src}, true)
	_, err := h.Download(context.Background(), srv.URL+"/profile.hcl", sha(content))
	if err == nil || !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), "sha256 "+sha(content)) {
		t.Fatalf("offline miss: %v", err)
	}
	os.WriteFile(filepath.Join(src, "profile.hcl"), content, 0o644)
	p, err := h.Download(context.Background(), srv.URL+"/profile.hcl", sha(content))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(content) || requests.Load() != 0 {
		t.Errorf("got %q after %d requests", b, requests.Load())
	}
}

// A failed transfer names the checksum the file must have.
func TestDownloadErrorNamesChecksum(t *testing.T) {
	h := newDownloadHost(t, t.TempDir())
	_, err := h.Download(context.Background(), "http://127.0.0.1:1/nothing.tar.gz", strings.Repeat("ab", 32))
	if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1/nothing.tar.gz") || !strings.Contains(err.Error(), "sha256 "+strings.Repeat("ab", 32)) {
		t.Errorf("err = %v", err)
	}
}
