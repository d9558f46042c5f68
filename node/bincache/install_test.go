package bincache_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/bincache"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/builtin"
)

const helloweb = "../../examples/helloweb/software.hcl"

func requireCookbook(tb testing.TB) {
	tb.Helper()
	if len(builtin.Names()) == 0 {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			tb.Fatal("built without the WebAssembly modules")
		}
		tb.Skip("built without the WebAssembly modules: run 'make wasm' first")
	}
}

// openNode opens a node root whose WebAssembly compilation cache is shared
// (wazero), so that only the release's own install is measured.
func openNode(tb testing.TB, root, wazero string) *local.Node {
	tb.Helper()
	if wazero != "" {
		os.MkdirAll(filepath.Join(root, "cache"), 0o755)
		if err := os.Symlink(wazero, filepath.Join(root, "cache", "wazero")); err != nil {
			tb.Fatal(err)
		}
	}
	n, err := local.Open(context.Background(), root, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func load(tb testing.TB, n *local.Node) *partition.Software {
	tb.Helper()
	sw, err := n.Engine.LoadSoftware(helloweb)
	if err != nil {
		tb.Fatal(err)
	}
	return sw
}

// markComplete does what the installer does after a cache hit.
func markComplete(tb testing.TB, sw *partition.Software) {
	tb.Helper()
	b, _ := json.Marshal(map[string]any{"profile_digest": sw.Profile.Digest, "completed": time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(sw.Path, ".completed"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestHelloWebBuiltOnceUnpackedElsewhere builds helloweb in one node root,
// pushes it through the cache server on 127.0.0.1, and installs it in a
// second node root from the cache.
func TestHelloWebBuiltOnceUnpackedElsewhere(t *testing.T) {
	requireCookbook(t)
	ctx := context.Background()
	pub, priv, _ := bincache.GenerateKey()
	otherPub, _, _ := bincache.GenerateKey()
	store := &bincache.DirStore{Dir: t.TempDir()}
	srv := httptest.NewServer(&bincache.Server{Store: store, UploadKeys: []ed25519.PublicKey{pub}})
	defer srv.Close()
	wazero := t.TempDir()

	a := openNode(t, t.TempDir(), wazero)
	swA := load(t, a)
	if err := a.Engine.InstallSoftware(ctx, swA, false, false); err != nil {
		t.Fatal(err)
	}
	builder, err := bincache.New(bincache.Config{URL: srv.URL, SigningKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	ok, why, err := builder.Push(ctx, swA.URL, swA.Profile.Digest, swA.Path)
	if err != nil || !ok {
		t.Fatalf("push: %v %s", err, why)
	}
	t.Logf("push: %s", why)

	b := openNode(t, t.TempDir(), wazero)
	swB := load(t, b)
	node, _ := bincache.New(bincache.Config{URL: srv.URL, TrustedKeys: []ed25519.PublicKey{pub}})
	hit, why, err := node.Fetch(ctx, swB.URL, swB.Profile.Digest, swB.Path)
	if err != nil || !hit {
		t.Fatalf("fetch: hit=%v %v %s", hit, err, why)
	}
	markComplete(t, swB)
	if err := b.Engine.InstallSoftware(ctx, swB, false, false); err != nil || swB.Report != nil {
		t.Fatalf("the unpacked release was built again (%v, %+v)", err, swB.Report)
	}
	built, _ := os.ReadFile(filepath.Join(swA.Path, "parts/server/helloweb"))
	got, err := os.ReadFile(filepath.Join(swB.Path, "parts/server/helloweb"))
	if err != nil || !bytes.Equal(built, got) || len(got) == 0 {
		t.Fatalf("unpacked server differs from the built one (%v)", err)
	}
	if fi, _ := os.Stat(filepath.Join(swB.Path, "parts/server/helloweb")); fi == nil || fi.Mode()&0o111 == 0 {
		t.Error("the unpacked server is not executable")
	}

	t.Run("wrong key", func(t *testing.T) {
		c := openNode(t, t.TempDir(), wazero)
		swC := load(t, c)
		stranger, _ := bincache.New(bincache.Config{URL: srv.URL, TrustedKeys: []ed25519.PublicKey{otherPub}})
		hit, why, err := stranger.Fetch(ctx, swC.URL, swC.Profile.Digest, swC.Path)
		if hit || err != nil || !strings.Contains(why, "not trusted") {
			t.Errorf("hit=%v err=%v reason=%q", hit, err, why)
		}
	})
	t.Run("tampered archive", func(t *testing.T) {
		var archive string
		filepath.WalkDir(filepath.Join(store.Dir, "shacache"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				archive = p
			}
			return nil
		})
		data, _ := os.ReadFile(archive)
		data[len(data)-10] ^= 0x55
		os.WriteFile(archive, data, 0o644)
		c := openNode(t, t.TempDir(), wazero)
		swC := load(t, c)
		hit, why, err := node.Fetch(ctx, swC.URL, swC.Profile.Digest, swC.Path)
		if hit || err != nil || !strings.Contains(why, "tampered") {
			t.Errorf("hit=%v err=%v reason=%q", hit, err, why)
		}
	})
}

// BenchmarkHelloWebInstall compares installing helloweb from source (the C
// compiler runs) with unpacking it from a binary cache directory. Each
// iteration uses a fresh node root; the WebAssembly compilation cache is
// shared and warm, as on a node that has installed anything before.
func BenchmarkHelloWebInstall(b *testing.B) {
	requireCookbook(b)
	ctx := context.Background()
	pub, priv, _ := bincache.GenerateKey()
	wazero := b.TempDir()
	store := b.TempDir()
	first := openNode(b, b.TempDir(), wazero)
	sw := load(b, first)
	if err := first.Engine.InstallSoftware(ctx, sw, false, false); err != nil {
		b.Fatal(err)
	}
	pusher, _ := bincache.New(bincache.Config{URL: store, SigningKey: priv})
	if ok, why, err := pusher.Push(ctx, sw.URL, sw.Profile.Digest, sw.Path); err != nil || !ok {
		b.Fatal(why, err)
	}
	b.Run("source", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			n := openNode(b, b.TempDir(), wazero)
			s := load(b, n)
			b.StartTimer()
			if err := n.Engine.InstallSoftware(ctx, s, false, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bincache", func(b *testing.B) {
		c, _ := bincache.New(bincache.Config{URL: store, TrustedKeys: []ed25519.PublicKey{pub}})
		for b.Loop() {
			b.StopTimer()
			n := openNode(b, b.TempDir(), wazero)
			s := load(b, n)
			b.StartTimer()
			if hit, why, err := c.Fetch(ctx, s.URL, s.Profile.Digest, s.Path); err != nil || !hit {
				b.Fatal(why, err)
			}
			markComplete(b, s)
		}
	})
}
