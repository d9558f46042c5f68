package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// countingServer serves content at /file and counts the requests.
func countingServer(t *testing.T, content []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Write(content)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newDownloadHost(t *testing.T, dir string) *Host {
	t.Helper()
	h, err := New(context.Background(), Config{DownloadDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func TestHostDownloadConcurrent(t *testing.T) {
	content := []byte(strings.Repeat("release archive ", 1<<14))
	sum := sha(content)
	srv, requests := countingServer(t, content)
	dir := t.TempDir()
	// Two hosts on one directory stand for two node processes.
	hosts := []*Host{newDownloadHost(t, dir), newDownloadHost(t, dir)}
	var wg sync.WaitGroup
	paths := make([]string, 16)
	errs := make([]error, 16)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = hosts[i%2].Download(context.Background(), srv.URL+"/file", sum)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("download %d: %v", i, errs[i])
		}
		b, err := os.ReadFile(paths[i])
		if err != nil || sha(b) != sum {
			t.Fatalf("download %d: %s is not the verified file (%v)", i, paths[i], err)
		}
	}
	// Within one process the transfers are shared: at most one per host.
	if n := requests.Load(); n < 1 || n > 2 {
		t.Errorf("%d requests for one file from two hosts, want 1 or 2", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestHostDownloadCorruptedEntryIsRefetched(t *testing.T) {
	content := []byte("the real content")
	sum := sha(content)
	srv, requests := countingServer(t, content)
	h := newDownloadHost(t, t.TempDir())
	ctx := context.Background()
	p, err := h.Download(ctx, srv.URL+"/file", sum)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Download(ctx, srv.URL+"/file", sum); err != nil || requests.Load() != 1 {
		t.Fatalf("a good cache entry was fetched again (%d requests, %v)", requests.Load(), err)
	}
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := h.Download(ctx, srv.URL+"/file", sum)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p2); string(b) != string(content) {
		t.Errorf("corrupted entry returned: %q", b)
	}
	if requests.Load() != 2 {
		t.Errorf("%d requests, want 2: the corrupted entry must be fetched again", requests.Load())
	}
}

func TestHostDownloadRefusals(t *testing.T) {
	srv, _ := countingServer(t, []byte("not what was pinned"))
	dir := t.TempDir()
	h := newDownloadHost(t, dir)
	ctx := context.Background()
	wrong := sha([]byte("something else"))
	if _, err := h.Download(ctx, srv.URL+"/file", wrong); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("mismatching download: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sha256", wrong[:2], wrong)); err == nil {
		t.Error("a mismatching download was cached")
	}
	if _, err := h.Download(ctx, srv.URL+"/file", "abc"); err == nil {
		t.Error("a short checksum was accepted")
	}
	if _, err := h.DownloadPinned(ctx, srv.URL+"/file"); err == nil || !strings.Contains(err.Error(), "#sha256=") {
		t.Errorf("unpinned URL: %v", err)
	}
	local := filepath.Join(t.TempDir(), "base.hcl")
	os.WriteFile(local, []byte("x = 1\n"), 0o644)
	p, err := h.DownloadPinned(ctx, "file://"+local+"#sha256="+sha([]byte("x = 1\n")))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "x = 1\n" {
		t.Errorf("pinned file URL: got %q", b)
	}
}

func TestGCDownloadCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(content string, age time.Duration) string {
		sum := sha([]byte(content))
		p := filepath.Join(dir, "sha256", sum[:2], sum)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, now.Add(-age), now.Add(-age))
		return sum
	}
	old := put("old", 40*24*time.Hour)
	big := put(strings.Repeat("b", 1000), 2*time.Hour)
	recent := put("recent", time.Hour)
	rotten := put("rotten", time.Hour)
	rp := filepath.Join(dir, "sha256", rotten[:2], rotten)
	os.Chmod(rp, 0o644)
	os.WriteFile(rp, []byte("rotted"), 0o644)
	os.Chtimes(rp, now.Add(-time.Hour), now.Add(-time.Hour))
	md5Dir := filepath.Join(dir, "md5", "aa")
	os.MkdirAll(md5Dir, 0o755)
	os.WriteFile(filepath.Join(md5Dir, "aa"+strings.Repeat("0", 30)), []byte(old), 0o644)

	list, err := ListDownloadCache(dir)
	if err != nil || len(list) != 4 || list[0].SHA256 != old || len(list[0].MD5) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	opts := GCOptions{MaxAge: 30 * 24 * time.Hour, MaxBytes: 100, Verify: true, Now: now}
	dry := opts
	dry.DryRun = true
	rep, err := GCDownloadCache(dir, dry)
	if err != nil || len(rep.Removed) != 2 || len(rep.Corrupted) != 1 {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	if after, _ := ListDownloadCache(dir); len(after) != 4 {
		t.Fatalf("dry run removed files: %d left", len(after))
	}
	rep, err = GCDownloadCache(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := ListDownloadCache(dir)
	if len(after) != 1 || after[0].SHA256 != recent {
		t.Errorf("kept %+v, want only %s", after, recent)
	}
	if rep.Removed[0].SHA256 != old || rep.Removed[1].SHA256 != big || rep.Corrupted[0].SHA256 != rotten {
		t.Errorf("report %+v", rep)
	}
	if ents, _ := os.ReadDir(md5Dir); len(ents) != 0 {
		t.Errorf("md5 index of a removed file kept: %v", ents)
	}
}

// A hostile profile's module URL answering without end is cut at
// MaxHostDownload, with an error saying so, and leaves nothing in the cache.
func TestHostDownloadIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<20)
		for i := 0; i <= MaxHostDownload>>20; i++ {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	h := newDownloadHost(t, dir)
	_, err := h.Download(context.Background(), srv.URL+"/endless.wasm", strings.Repeat("0", 64))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("an endless answer: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
}
