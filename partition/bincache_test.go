package partition

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/slapnode/slapnode/bincache"
)

// TestBinaryCacheRoundTrip: node A builds a release and pushes it; node B,
// trusting A's key, unpacks it instead of building — and refuses it with
// another key.
func TestBinaryCacheRoundTrip(t *testing.T) {
	store := &bincache.DirStore{Dir: t.TempDir()}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := writeProfile(t, t.TempDir(), `
part "page" {
  recipe  = "cookbook:write-file"
  output  = "${software.path}/share/page.html"
  content = "built by a recipe"
}
`)
	a := newEngine(t)
	a.BinaryCache = bincache.NewWithStore(bincache.Config{SigningKey: priv, Builder: "A"}, store)
	sa := install(t, a, path)
	if sa.FromCache || sa.Report.Counts[Install] != 1 {
		t.Fatalf("node A: %s (from cache %v)", sa.Report.Summary(), sa.FromCache)
	}

	b := newEngine(t)
	b.BinaryCache = bincache.NewWithStore(bincache.Config{TrustedKeys: []ed25519.PublicKey{pub}}, store)
	sb, err := b.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.InstallSoftware(context.Background(), sb, false, false); err != nil {
		t.Fatal(err)
	}
	if !sb.FromCache || sb.Report != nil {
		t.Fatalf("node B built instead of unpacking (report %v)", sb.Report)
	}
	if got, _ := os.ReadFile(filepath.Join(sb.Path, "share", "page.html")); string(got) != "built by a recipe" {
		t.Fatalf("unpacked page: %q", got)
	}

	other, _, _ := ed25519.GenerateKey(rand.Reader)
	c := newEngine(t)
	c.BinaryCache = bincache.NewWithStore(bincache.Config{TrustedKeys: []ed25519.PublicKey{other}}, store)
	sc, _ := c.LoadSoftware(path)
	if err := c.InstallSoftware(context.Background(), sc, false, false); err != nil {
		t.Fatal(err)
	}
	if sc.FromCache || sc.Report == nil || sc.Report.Counts[Install] != 1 {
		t.Fatal("an entry signed by an untrusted key was used")
	}
}
