package bincache

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const release = "https://releases.example.net/helloweb/1.0/software.hcl"

var linux = Platform{OS: "linux", Arch: "amd64", Distro: "debian-12"}

// buildTree makes a software directory as a build would leave it.
func buildTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"parts/server/helloweb":   "\x7fELF pretend binary",
		"parts/server/README":     "hello",
		"share/doc/empty":         "",
		".slapnode/parts.journal": "built in " + dir + "/parts/server",
		".completed":              `{"profile_digest":"x"}`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "parts/server/helloweb"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("server/helloweb", filepath.Join(dir, "parts/current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "share/doc"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "share/doc"), 0o755) })
}

// tree describes a directory: path -> mode and content (or link target).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// backends returns the two ways of reaching a cache: a directory, and the
// HTTP server on 127.0.0.1 over a directory. Both also return the backing
// directory, so tests can tamper with it.
func backends() map[string]func(t *testing.T, signer ed25519.PrivateKey) (Store, *DirStore) {
	return map[string]func(t *testing.T, signer ed25519.PrivateKey) (Store, *DirStore){
		"dir": func(t *testing.T, _ ed25519.PrivateKey) (Store, *DirStore) {
			d := &DirStore{Dir: t.TempDir()}
			return d, d
		},
		"http": func(t *testing.T, signer ed25519.PrivateKey) (Store, *DirStore) {
			d := &DirStore{Dir: t.TempDir()}
			srv := httptest.NewServer(&Server{Store: d, UploadKeys: []ed25519.PublicKey{signer.Public().(ed25519.PublicKey)}})
			t.Cleanup(srv.Close)
			return &HTTPStore{URL: srv.URL, SigningKey: signer}, d
		},
	}
}

func TestRoundTripBetweenTwoNodeRoots(t *testing.T) {
	for name, backend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			pub, priv := keys(t)
			store, backing := backend(t, priv)
			rootA, rootB := t.TempDir(), t.TempDir()
			dirA := filepath.Join(rootA, "software", "0123")
			dirB := filepath.Join(rootB, "software", "0123")
			buildTree(t, dirA)

			builder := NewWithStore(Config{SigningKey: priv, Platform: linux, Builder: "nodeA"}, store)
			pushed, why, err := builder.Push(ctx, release, "digest1", dirA)
			if err != nil || !pushed {
				t.Fatalf("push: %v %v %s", pushed, err, why)
			}

			node := NewWithStore(Config{TrustedKeys: []ed25519.PublicKey{pub}, Platform: linux}, store)
			// A partial build left behind is replaced as a whole.
			os.MkdirAll(filepath.Join(dirB, "junk"), 0o755)
			hit, why, err := node.Fetch(ctx, release, "digest1", dirB)
			if err != nil || !hit {
				t.Fatalf("fetch: hit=%v err=%v reason=%s", hit, err, why)
			}
			if !strings.Contains(why, "signed by key "+KeyID(pub)) {
				t.Errorf("reason %q does not name the signing key", why)
			}
			want := tree(t, dirA)
			delete(want, ".completed")
			for k := range want {
				if k == ".slapnode" || strings.HasPrefix(k, ".slapnode/") {
					delete(want, k) // built elsewhere: the state does not apply
				}
			}
			got := tree(t, dirB)
			delete(got, ".")
			delete(want, ".")
			if len(got) != len(want) {
				t.Errorf("unpacked tree has %d entries, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			// Nothing but the software directory is left in software/.
			ents, _ := os.ReadDir(filepath.Dir(dirB))
			if len(ents) != 1 {
				t.Errorf("software/ holds %d entries after fetch, want 1", len(ents))
			}

			t.Run("tampered archive", func(t *testing.T) {
				dirC := filepath.Join(t.TempDir(), "sw")
				sum := onlyArchive(t, backing)
				p := backing.archivePath(sum)
				b, _ := os.ReadFile(p)
				b[len(b)/2] ^= 0xff
				os.Chmod(p, 0o644)
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				hit, why, err := node.Fetch(ctx, release, "digest1", dirC)
				if err != nil || hit {
					t.Fatalf("tampered archive: hit=%v err=%v", hit, err)
				}
				if !strings.Contains(why, "tampered") {
					t.Errorf("reason %q does not say the archive was tampered with", why)
				}
				if _, err := os.Stat(dirC); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused archive left %s behind", dirC)
				}
			})
		})
	}
}

func onlyArchive(t *testing.T, d *DirStore) string {
	t.Helper()
	var sums []string
	filepath.WalkDir(filepath.Join(d.Dir, "shacache"), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			sums = append(sums, de.Name())
		}
		return nil
	})
	if len(sums) != 1 {
		t.Fatalf("%d archives in the store, want 1", len(sums))
	}
	return sums[0]
}

// pushed returns a directory store holding one entry of a build of dirA.
func pushed(t *testing.T, priv ed25519.PrivateKey, digest string) (*DirStore, string) {
	t.Helper()
	d := &DirStore{Dir: t.TempDir()}
	dirA := filepath.Join(t.TempDir(), "a")
	buildTree(t, dirA)
	c := NewWithStore(Config{SigningKey: priv, Platform: linux}, d)
	if ok, why, err := c.Push(context.Background(), release, digest, dirA); err != nil || !ok {
		t.Fatal(ok, why, err)
	}
	return d, dirA
}

func TestEntriesThatAreNeverTrusted(t *testing.T) {
	ctx := context.Background()
	pub, priv := keys(t)
	otherPub, otherPriv := keys(t)
	store, _ := pushed(t, priv, "d1")

	cases := []struct {
		name   string
		cfg    Config
		setup  func(t *testing.T)
		digest string
		want   string
	}{
		{name: "wrong key", cfg: Config{TrustedKeys: []ed25519.PublicKey{otherPub}}, want: "not trusted"},
		{name: "no trusted keys", cfg: Config{}, want: "no trusted keys"},
		{name: "other architecture", cfg: Config{TrustedKeys: []ed25519.PublicKey{pub}, Platform: Platform{OS: "linux", Arch: "arm64", Distro: "debian-12"}}, want: "built for linux/amd64"},
		{name: "other distribution", cfg: Config{TrustedKeys: []ed25519.PublicKey{pub}, Platform: Platform{OS: "linux", Arch: "amd64", Distro: "debian-13"}}, want: "this node runs debian-13"},
		{name: "other profile content", cfg: Config{TrustedKeys: []ed25519.PublicKey{pub}}, digest: "d2", want: "other profile content"},
		{name: "download blacklist", cfg: Config{TrustedKeys: []ed25519.PublicKey{pub}, DownloadBlacklist: []string{"https://releases.example.net/"}}, want: "download blacklist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Platform == (Platform{}) {
				tc.cfg.Platform = linux
			}
			digest := tc.digest
			if digest == "" {
				digest = "d1"
			}
			dir := filepath.Join(t.TempDir(), "sw")
			hit, why, err := NewWithStore(tc.cfg, store).Fetch(ctx, release, digest, dir)
			if err != nil || hit {
				t.Fatalf("hit=%v err=%v", hit, err)
			}
			if !strings.Contains(why, tc.want) {
				t.Errorf("reason %q, want it to contain %q", why, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("skipped entry created %s", dir)
			}
		})
	}

	t.Run("altered entry", func(t *testing.T) {
		s, _ := pushed(t, priv, "d1")
		key := Key(release)
		envs, _ := s.Entries(ctx, key)
		var env Envelope
		json.Unmarshal(envs[0], &env)
		env.Payload = bytes.Replace(env.Payload, []byte(`"arch":"amd64"`), []byte(`"arch":"arm64"`), 1)
		b, _ := json.Marshal(env)
		os.RemoveAll(filepath.Join(s.Dir, "shadir"))
		s.AddEntry(ctx, key, b)
		_, why, _ := NewWithStore(Config{TrustedKeys: []ed25519.PublicKey{pub}, Platform: linux}, s).Fetch(ctx, release, "", filepath.Join(t.TempDir(), "sw"))
		if !strings.Contains(why, "altered after signing") {
			t.Errorf("reason %q", why)
		}
	})

	t.Run("unsigned entry", func(t *testing.T) {
		s := &DirStore{Dir: t.TempDir()}
		payload, _ := json.Marshal(Entry{Schema: Schema, ReleaseURL: release, Key: Key(release)})
		b, _ := json.Marshal(Envelope{Payload: payload})
		s.AddEntry(ctx, Key(release), b)
		_, why, _ := NewWithStore(Config{TrustedKeys: []ed25519.PublicKey{pub}, Platform: linux}, s).Fetch(ctx, release, "", filepath.Join(t.TempDir(), "sw"))
		if !strings.Contains(why, "unsigned") {
			t.Errorf("reason %q", why)
		}
	})

	t.Run("signed by another builder, trusted too, newest wins", func(t *testing.T) {
		s, dirA := pushed(t, priv, "d1")
		os.WriteFile(filepath.Join(dirA, "parts/server/README"), []byte("rebuilt"), 0o644)
		if ok, _, err := NewWithStore(Config{SigningKey: otherPriv, Platform: linux}, s).Push(ctx, release, "d1", dirA); err != nil || !ok {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "sw")
		hit, why, err := NewWithStore(Config{TrustedKeys: []ed25519.PublicKey{pub, otherPub}, Platform: linux}, s).Fetch(ctx, release, "d1", dir)
		if err != nil || !hit {
			t.Fatal(hit, why, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "parts/server/README")); string(b) != "rebuilt" {
			t.Errorf("got the older build (%q)", b)
		}
	})
}

func TestNotRelocatable(t *testing.T) {
	ctx := context.Background()
	pub, priv := keys(t)
	s := &DirStore{Dir: t.TempDir()}
	dirA := filepath.Join(t.TempDir(), "software", "x")
	buildTree(t, dirA)
	os.WriteFile(filepath.Join(dirA, "parts/server/wrapper"), []byte("#!/bin/sh\nexec "+dirA+"/parts/server/helloweb\n"), 0o755)
	c := NewWithStore(Config{SigningKey: priv, TrustedKeys: []ed25519.PublicKey{pub}, Platform: linux}, s)
	ok, why, err := c.Push(ctx, release, "", dirA)
	if err != nil || !ok || !strings.Contains(why, "not relocatable") {
		t.Fatalf("push: %v %v %q", ok, err, why)
	}
	hit, why, _ := c.Fetch(ctx, release, "", filepath.Join(t.TempDir(), "elsewhere"))
	if hit || !strings.Contains(why, "refer to that path") {
		t.Errorf("relocated a non-relocatable build: hit=%v %q", hit, why)
	}
	// The same path (SlapOS's fixed /opt/slapgrid) is fine, state included.
	os.Chmod(filepath.Join(dirA, "share/doc"), 0o755)
	removeAll(dirA)
	hit, why, err = c.Fetch(ctx, release, "", dirA)
	if err != nil || !hit {
		t.Fatalf("same path: hit=%v %v %q", hit, err, why)
	}
	if _, err := os.Stat(filepath.Join(dirA, ".slapnode/parts.journal")); err != nil {
		t.Errorf("the engine state was dropped although the path is the same: %v", err)
	}
}

func TestForceAndUploadPolicy(t *testing.T) {
	ctx := context.Background()
	pub, priv := keys(t)
	s := &DirStore{Dir: t.TempDir()}
	c := NewWithStore(Config{TrustedKeys: []ed25519.PublicKey{pub}, ForceList: []string{"https://releases.example.net/"}, Platform: linux}, s)
	_, _, err := c.Fetch(ctx, release, "", filepath.Join(t.TempDir(), "sw"))
	if !errors.Is(err, ErrForced) {
		t.Fatalf("forced release missing from the cache: err=%v, want ErrForced", err)
	}
	dirA := filepath.Join(t.TempDir(), "a")
	buildTree(t, dirA)
	ok, why, err := NewWithStore(Config{SigningKey: priv, UploadBlacklist: []string{"https://releases."}}, s).Push(ctx, release, "", dirA)
	if ok || err != nil || !strings.Contains(why, "upload blacklist") {
		t.Errorf("blacklisted push: %v %v %q", ok, err, why)
	}
	ok, why, err = NewWithStore(Config{}, s).Push(ctx, release, "", dirA)
	if ok || err != nil || !strings.Contains(why, "no signing key") {
		t.Errorf("push without key: %v %v %q", ok, err, why)
	}
	if keys, _ := s.Keys(); len(keys) != 0 {
		t.Errorf("refused pushes stored entries: %v", keys)
	}
}

func TestServerRefusesStrangers(t *testing.T) {
	ctx := context.Background()
	_, priv := keys(t)
	_, stranger := keys(t)
	d := &DirStore{Dir: t.TempDir()}
	srv := httptest.NewServer(&Server{Store: d, UploadKeys: []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}})
	defer srv.Close()
	dirA := filepath.Join(t.TempDir(), "a")
	buildTree(t, dirA)
	for name, store := range map[string]*HTTPStore{
		"stranger":  {URL: srv.URL, SigningKey: stranger},
		"anonymous": {URL: srv.URL},
	} {
		_, _, err := NewWithStore(Config{SigningKey: stranger, Platform: linux}, store).Push(ctx, release, "", dirA)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s upload: err=%v, want 403", name, err)
		}
	}
	// A content mismatch is refused even from a known uploader.
	err := (&HTTPStore{URL: srv.URL, SigningKey: priv}).PutArchive(ctx, strings.Repeat("0", 64), strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("mismatching archive accepted: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Dir, "shacache")); len(ents) != 0 {
		t.Errorf("refused uploads left %d archives", len(ents))
	}
}

func TestUnpackStaysInside(t *testing.T) {
	mk := func(entries ...*tar.Header) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, h := range entries {
			tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg {
				tw.Write(make([]byte, h.Size))
			}
		}
		tw.Close()
		gz.Close()
		return buf.Bytes()
	}
	outside := t.TempDir()
	cases := map[string][]byte{
		"dotdot":   mk(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"absolute": mk(&tar.Header{Name: "/tmp/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"through a symlink": mk(
			&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "link/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"device": mk(&tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o644}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if err := unpack(bytes.NewReader(b), t.TempDir()); err == nil {
				t.Error("unpacked")
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("wrote outside: %v", ents)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	root := t.TempDir()
	pub, err := WriteKeyPair(filepath.Join(root, "builder"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := keys(t)
	if _, err := WriteKeyPair(filepath.Join(root, "builder")); err == nil {
		t.Error("WriteKeyPair overwrote an existing key")
	}
	if cfg, err := LoadConfig(root); cfg != nil || err != nil {
		t.Fatalf("no cache.hcl: %v %v, want nil, nil", cfg, err)
	}
	src := `binary_cache {
  url          = "cache"
  trusted_keys = ["` + FormatPublicKey(other) + `"]
  signing_key  = "builder.key"
  force        = ["https://releases.example.net/"]
}
`
	os.WriteFile(filepath.Join(root, ConfigFile), []byte(src), 0o644)
	cfg, err := LoadConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != filepath.Join(root, "cache") || len(cfg.TrustedKeys) != 2 || !cfg.TrustedKeys[1].Equal(pub) || len(cfg.ForceList) != 1 {
		t.Errorf("config: %+v", cfg)
	}
	os.Chmod(filepath.Join(root, "builder.key"), 0o644)
	if _, err := LoadConfig(root); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
	os.WriteFile(filepath.Join(root, ConfigFile), []byte("binary_cache {\n  urll = 1\n}\n"), 0o644)
	if _, err := LoadConfig(root); err == nil || !strings.Contains(err.Error(), "cache.hcl:2") {
		t.Errorf("bad config: %v, want a positioned error", err)
	}
}

func TestDistro(t *testing.T) {
	for in, want := range map[string]string{
		"ID=debian\nVERSION_ID=\"12\"\n":     "debian-12",
		"ID=raspbian\nVERSION_ID=\"11.3\"\n": "debian-11",
		"ID=ubuntu\nVERSION_ID=\"24.04\"\n":  "ubuntu-24.04",
		"ID=arch\n":                          "arch",
		"NAME=nothing\n":                     "",
	} {
		if got := distro([]byte(in)); got != want {
			t.Errorf("distro(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzOpen(f *testing.F) {
	pub, priv, _ := GenerateKey()
	env, _ := Sign(&Entry{Schema: Schema, ReleaseURL: release}, priv)
	f.Add(env)
	f.Add([]byte(`{"payload":"e30=","public_key":"","signature":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, signer, err := Open(b, []ed25519.PublicKey{pub})
		if err == nil && (e == nil || !signer.Equal(pub)) {
			t.Fatal("Open returned no error without a verified entry")
		}
	})
}

func FuzzUnpack(f *testing.F) {
	var buf bytes.Buffer
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644)
	pack(&buf, dir)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		into := filepath.Join(parent, "into")
		os.Mkdir(into, 0o755)
		unpack(bytes.NewReader(b), into)
		ents, _ := os.ReadDir(parent)
		if len(ents) != 1 {
			t.Fatalf("unpack wrote next to its directory: %v", ents)
		}
	})
}

// TestServerRefusesAnonymousUploads: a server given no upload keys takes no
// upload at all unless it was told to accept anonymous ones, and then each
// archive is bounded (issue 18 #11: it took anyone's, up to 4 GiB).
func TestServerRefusesAnonymousUploads(t *testing.T) {
	ctx := context.Background()
	_, signer := keys(t)
	dirA := filepath.Join(t.TempDir(), "a")
	buildTree(t, dirA)

	d := &DirStore{Dir: t.TempDir()}
	srv := httptest.NewServer(&Server{Store: d})
	defer srv.Close()
	for name, store := range map[string]*HTTPStore{
		"signed":    {URL: srv.URL, SigningKey: signer},
		"anonymous": {URL: srv.URL},
	} {
		_, _, err := NewWithStore(Config{SigningKey: signer, Platform: linux}, store).Push(ctx, release, "", dirA)
		if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "no anonymous uploads") {
			t.Errorf("%s upload to a keyless server: err=%v, want a 403 saying it takes no anonymous uploads", name, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Dir, "shacache")); len(ents) != 0 {
		t.Errorf("refused uploads left %d archives", len(ents))
	}

	// Accepted when asked for, within the size bound.
	open := &DirStore{Dir: t.TempDir()}
	osrv := httptest.NewServer(&Server{Store: open, AnonymousUploads: true, MaxArchive: 1 << 20})
	defer osrv.Close()
	if pushed, reason, err := NewWithStore(Config{SigningKey: signer, Platform: linux}, &HTTPStore{URL: osrv.URL}).Push(ctx, release, "", dirA); err != nil || !pushed {
		t.Fatalf("anonymous upload to a server accepting them: pushed=%v %s %v", pushed, reason, err)
	}
	big := bytes.Repeat([]byte{'x'}, 2<<20)
	sum := sha256.Sum256(big)
	err := (&HTTPStore{URL: osrv.URL}).PutArchive(ctx, hex.EncodeToString(sum[:]), bytes.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "413") {
		t.Errorf("archive over the bound: err=%v, want a 413", err)
	}
	if _, err := os.Stat(filepath.Join(open.Dir, "shacache", hex.EncodeToString(sum[:]))); err == nil {
		t.Error("the archive over the bound was stored")
	}
}
