package bincache_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/slapnode/slapnode/node/bincache"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// newEngine is a partition engine on a fresh root.
func newEngine(t *testing.T) *partition.Engine {
	t.Helper()
	requireCookbook(t)
	root := t.TempDir()
	h, err := wasmhost.New(context.Background(), wasmhost.Config{DownloadDir: filepath.Join(root, "cache", "download")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return &partition.Engine{Root: root, NodeID: "test", Host: h}
}

// TestBinaryCacheRoundTrip: node A builds a release and pushes it; node B,
// trusting A's key, unpacks it instead of building — and refuses it with
// another key.
func TestBinaryCacheRoundTrip(t *testing.T) {
	store := &bincache.DirStore{Dir: t.TempDir()}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "software.hcl")
	if err := os.WriteFile(path, []byte(`
part "page" {
  recipe  = "cookbook:write-file"
  output  = "${software.path}/share/page.html"
  content = "built by a recipe"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	install := func(e *partition.Engine) *partition.Software {
		t.Helper()
		s, err := e.LoadSoftware(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
			t.Fatal(err)
		}
		return s
	}

	a := newEngine(t)
	a.BinaryCache = bincache.NewWithStore(bincache.Config{SigningKey: priv, Builder: "A"}, store)
	sa := install(a)
	if sa.FromCache || sa.Report.Counts[partition.Install] != 1 {
		t.Fatalf("node A: %s (from cache %v)", sa.Report.Summary(), sa.FromCache)
	}

	b := newEngine(t)
	b.BinaryCache = bincache.NewWithStore(bincache.Config{TrustedKeys: []ed25519.PublicKey{pub}}, store)
	sb := install(b)
	if !sb.FromCache || sb.Report != nil {
		t.Fatalf("node B built instead of unpacking (report %v)", sb.Report)
	}
	if got, _ := os.ReadFile(filepath.Join(sb.Path, "share", "page.html")); string(got) != "built by a recipe" {
		t.Fatalf("unpacked page: %q", got)
	}

	other, _, _ := ed25519.GenerateKey(rand.Reader)
	c := newEngine(t)
	c.BinaryCache = bincache.NewWithStore(bincache.Config{TrustedKeys: []ed25519.PublicKey{other}}, store)
	sc := install(c)
	if sc.FromCache || sc.Report == nil || sc.Report.Counts[partition.Install] != 1 {
		t.Fatal("an entry signed by an untrusted key was used")
	}
}
