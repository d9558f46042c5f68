// Package bincache is slapnode's binary cache, SlapOS's shacache/shadir
// idea: once a software release is built, its software directory can be
// archived and uploaded with a signed (ed25519) metadata entry keyed by the
// release URL digest; a node installing the same release looks there first,
// verifies the signature against its trusted keys and the platform (OS,
// architecture, distribution), and unpacks instead of building.
//
// The cache is a plain directory (DirStore) or an HTTP service (Server,
// `slapnode cache serve`, reached through HTTPStore). A Client applies the
// node's policy: trusted keys, upload and download blacklists and the list
// of releases that must come from the cache (URL prefixes, as in SlapOS).
// Nothing unsigned, untrusted, incompatible or not matching its checksum is
// ever unpacked; every skipped entry is reported with the reason.
package bincache

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Config is a node's binary cache configuration (see LoadConfig for the
// file form).
type Config struct {
	// URL is the cache: http(s)://HOST:PORT of a cache server, or a
	// directory (a path or file:// URL).
	URL string
	// TrustedKeys sign the entries this node accepts. With none, nothing
	// is ever downloaded.
	TrustedKeys []ed25519.PublicKey
	// SigningKey, when set, signs the entries this node uploads (and
	// authenticates its uploads to a server). Without it, Push uploads
	// nothing.
	SigningKey ed25519.PrivateKey
	// URL prefixes of releases never uploaded, never downloaded, and
	// only ever installed from the cache (SlapOS's
	// upload-to-binary-cache-url-blacklist,
	// download-from-binary-cache-url-blacklist and
	// download-from-binary-cache-force-url-list).
	UploadBlacklist, DownloadBlacklist, ForceList []string
	// Platform of this node; zero means CurrentPlatform().
	Platform Platform
	// HTTPClient for a cache server; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Builder names this node in the entries it uploads (default: host name).
	Builder string
}

// Client fetches and pushes software directories.
type Client struct {
	cfg   Config
	store Store
}

// ErrForced is returned (wrapped) by Fetch when a release on the force list
// could not be taken from the cache: the node must not build it.
var ErrForced = errors.New("binary cache forced for this release")

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("binary cache: no url: set url to http(s)://HOST:PORT or a directory")
	}
	if cfg.Platform == (Platform{}) {
		cfg.Platform = CurrentPlatform()
	}
	if cfg.Builder == "" {
		cfg.Builder, _ = os.Hostname()
	}
	c := &Client{cfg: cfg}
	switch {
	case strings.HasPrefix(cfg.URL, "http://") || strings.HasPrefix(cfg.URL, "https://"):
		c.store = &HTTPStore{URL: cfg.URL, Client: cfg.HTTPClient, SigningKey: cfg.SigningKey}
	case strings.HasPrefix(cfg.URL, "file://"):
		u, err := url.Parse(cfg.URL)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			return nil, fmt.Errorf("binary cache url %q: a file URL must name a local directory, file:///PATH", cfg.URL)
		}
		c.store = &DirStore{Dir: u.Path}
	case strings.Contains(cfg.URL, "://"):
		return nil, fmt.Errorf("binary cache url %q: use http(s)://, file:// or a directory path", cfg.URL)
	default:
		abs, err := filepath.Abs(cfg.URL)
		if err != nil {
			return nil, err
		}
		c.store = &DirStore{Dir: abs}
	}
	return c, nil
}

// NewWithStore returns a client using an explicit store (tests, or a
// store the caller built).
func NewWithStore(cfg Config, s Store) *Client {
	if cfg.Platform == (Platform{}) {
		cfg.Platform = CurrentPlatform()
	}
	return &Client{cfg: cfg, store: s}
}

// Store returns the client's store.
func (c *Client) Store() Store { return c.store }

// CanPush says whether Push would upload anything at all (a signing key is
// configured).
func (c *Client) CanPush() bool { return c.cfg.SigningKey != nil }

func matchPrefix(list []string, u string) string {
	for _, p := range list {
		if p != "" && strings.HasPrefix(u, p) {
			return p
		}
	}
	return ""
}

type candidate struct {
	e      *Entry
	signer ed25519.PublicKey
}

// Fetch installs releaseURL into softwareDir from the cache when a trusted,
// compatible entry exists. hit says whether it did; reason says what was
// unpacked, or why every entry was skipped. profileDigest (the loaded
// profile's Digest; "" to accept any) must match the entry's, so a local
// profile edited since the upload is built again.
//
// softwareDir is replaced as a whole, and only once the archive is
// verified and completely unpacked next to it. The completion marker is
// left to the caller. Cache problems (unreachable server, bad entries) are
// reasons, not errors: the node builds from source instead — except for a
// release on the force list, where they are an error wrapping ErrForced.
func (c *Client) Fetch(ctx context.Context, releaseURL, profileDigest, softwareDir string) (hit bool, reason string, err error) {
	forced := matchPrefix(c.cfg.ForceList, releaseURL) != ""
	skip := func(why string) (bool, string, error) {
		if forced {
			return false, why, fmt.Errorf("%w (%s), but %s; not building it", ErrForced, releaseURL, why)
		}
		return false, why, nil
	}
	if p := matchPrefix(c.cfg.DownloadBlacklist, releaseURL); p != "" {
		if forced {
			return false, "", fmt.Errorf("binary cache: %s is both forced and in the download blacklist (%s): remove one", releaseURL, p)
		}
		return false, "in the download blacklist (" + p + ")", nil
	}
	if len(c.cfg.TrustedKeys) == 0 {
		return skip("no trusted keys configured, so no entry can be trusted")
	}
	key := Key(releaseURL)
	envs, err := c.store.Entries(ctx, key)
	if err != nil {
		return skip("cache unavailable: " + err.Error())
	}
	if len(envs) == 0 {
		return skip("no entry for this release in the cache")
	}
	var reasons []string
	var cands []candidate
	for _, env := range envs {
		e, signer, err := Open(env, c.cfg.TrustedKeys)
		if err != nil {
			reasons = append(reasons, "entry skipped: "+err.Error())
			continue
		}
		if why := c.usable(e, releaseURL, key, profileDigest, softwareDir); why != "" {
			reasons = append(reasons, fmt.Sprintf("entry %s skipped: %s", short(e.ArchiveSHA256), why))
			continue
		}
		cands = append(cands, candidate{e, signer})
	}
	// Newest first: a rebuild replaces an older build of the same release.
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].e.Created.After(cands[j].e.Created) })
	for _, cd := range cands {
		if err := c.install(ctx, cd.e, softwareDir); err != nil {
			if ctx.Err() != nil {
				return false, "", ctx.Err()
			}
			var local *localError
			if errors.As(err, &local) {
				return false, "", err
			}
			reasons = append(reasons, fmt.Sprintf("entry %s skipped: %v", short(cd.e.ArchiveSHA256), err))
			continue
		}
		return true, fmt.Sprintf("unpacked archive %s (%d files) built on %s %s, signed by key %s",
			short(cd.e.ArchiveSHA256), cd.e.Files, cd.e.Builder, cd.e.Created.Format(time.RFC3339), KeyID(cd.signer)), nil
	}
	return skip(strings.Join(reasons, "; "))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// usable says why a verified entry cannot be used here, or "".
func (c *Client) usable(e *Entry, releaseURL, key, digest, softwareDir string) string {
	switch {
	case e.ReleaseURL != releaseURL || e.Key != key:
		return fmt.Sprintf("it is for release %s, filed under this release's key", e.ReleaseURL)
	case !validSum(e.ArchiveSHA256) || e.ArchiveSize <= 0:
		return "it names no valid archive"
	}
	if why := e.Platform.compatible(c.cfg.Platform); why != "" {
		return why
	}
	if digest != "" && e.ProfileDigest != digest {
		return fmt.Sprintf("built from other profile content (digest %s, this profile is %s)", short(e.ProfileDigest), short(digest))
	}
	if filepath.Clean(e.SoftwareDir) != filepath.Clean(softwareDir) && !e.Relocatable {
		return fmt.Sprintf("built in %s and its files refer to that path; this node installs in %s", e.SoftwareDir, softwareDir)
	}
	return ""
}

// localError marks failures of this node (disk, permissions) rather than
// of the entry: trying another entry would not help.
type localError struct{ err error }

func (l *localError) Error() string { return l.err.Error() }
func (l *localError) Unwrap() error { return l.err }

func local(err error) error {
	if err == nil {
		return nil
	}
	return &localError{err}
}

// install downloads, verifies and unpacks one entry's archive, then swaps
// it in place of softwareDir.
func (c *Client) install(ctx context.Context, e *Entry, softwareDir string) error {
	parent := filepath.Dir(softwareDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return local(fmt.Errorf("binary cache: %w", err))
	}
	tmp, err := os.CreateTemp(parent, ".bincache-*.tar.gz")
	if err != nil {
		return local(fmt.Errorf("binary cache: %w", err))
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	src, err := c.store.GetArchive(ctx, e.ArchiveSHA256)
	if err != nil {
		return err
	}
	h := sha256.New()
	// One byte more than announced is enough to tell an oversized archive.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(src, e.ArchiveSize+1))
	src.Close()
	if err != nil {
		return fmt.Errorf("downloading archive: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != e.ArchiveSize || got != e.ArchiveSHA256 {
		return fmt.Errorf("archive does not match its signed entry (sha256 %s, %d bytes; the entry says %s, %d bytes): tampered with or corrupted", short(got), n, short(e.ArchiveSHA256), e.ArchiveSize)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return local(err)
	}
	dir, err := os.MkdirTemp(parent, ".bincache-unpack-*")
	if err != nil {
		return local(fmt.Errorf("binary cache: %w", err))
	}
	keep := false
	defer func() {
		if !keep {
			removeAll(dir)
		}
	}()
	if err := unpack(tmp, dir); err != nil {
		return fmt.Errorf("unpacking archive: %w", err)
	}
	if filepath.Clean(e.SoftwareDir) != filepath.Clean(softwareDir) {
		// The engine state names the builder's paths; without it the
		// engine treats every part as new the next time the profile
		// changes, which is right for a directory it did not build.
		if err := removeAll(filepath.Join(dir, stateDir)); err != nil {
			return local(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return local(err)
	}
	var old string
	if _, err := os.Lstat(softwareDir); err == nil {
		o, err := os.MkdirTemp(parent, ".bincache-old-*")
		if err != nil {
			return local(err)
		}
		os.Remove(o)
		if err := os.Rename(softwareDir, o); err != nil {
			return local(fmt.Errorf("binary cache: moving the previous %s aside: %w", softwareDir, err))
		}
		old = o
	}
	if err := os.Rename(dir, softwareDir); err != nil {
		if old != "" {
			os.Rename(old, softwareDir)
		}
		return local(fmt.Errorf("binary cache: %w", err))
	}
	keep = true
	if old != "" {
		removeAll(old)
	}
	return nil
}

// removeAll removes a tree even when it holds read-only directories (as
// unpacked archives may).
func removeAll(p string) error {
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// Push archives softwareDir and uploads it with an entry signed by the
// configured key. pushed is false, with the reason, when the policy says
// not to (no signing key, upload blacklist); err reports failures.
func (c *Client) Push(ctx context.Context, releaseURL, profileDigest, softwareDir string) (pushed bool, reason string, err error) {
	if p := matchPrefix(c.cfg.UploadBlacklist, releaseURL); p != "" {
		return false, "in the upload blacklist (" + p + ")", nil
	}
	if c.cfg.SigningKey == nil {
		return false, "no signing key configured", nil
	}
	if fi, err := os.Stat(softwareDir); err != nil || !fi.IsDir() {
		return false, "", fmt.Errorf("binary cache push: %s is not an installed software directory", softwareDir)
	}
	// SlapOS's convention: a software directory holding shared parts is
	// not self-contained.
	if _, err := os.Stat(filepath.Join(softwareDir, ".shared")); err == nil {
		return false, "the software directory has a .shared marker", nil
	}
	// Next to the software directory: the node's software root has room
	// for what it installs, /tmp may not.
	tmp, err := os.CreateTemp(filepath.Dir(softwareDir), ".bincache-push-*.tar.gz")
	if err != nil {
		return false, "", fmt.Errorf("binary cache push: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	res, err := pack(cw, softwareDir)
	if err != nil {
		return false, "", fmt.Errorf("binary cache push: archiving %s: %w", softwareDir, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// The same build, already published with this key for this platform:
	// pushing again (after an automatic push at install) adds nothing.
	pub := c.cfg.SigningKey.Public().(ed25519.PublicKey)
	if envs, err := c.store.Entries(ctx, Key(releaseURL)); err == nil {
		for _, env := range envs {
			if old, _, err := Open(env, []ed25519.PublicKey{pub}); err == nil &&
				old.ArchiveSHA256 == sum && old.ProfileDigest == profileDigest && old.Platform == c.cfg.Platform {
				return false, "already in the binary cache (archive " + short(sum) + ")", nil
			}
		}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return false, "", err
	}
	if err := c.store.PutArchive(ctx, sum, tmp); err != nil {
		return false, "", fmt.Errorf("binary cache push: %w", err)
	}
	e := &Entry{
		Schema: Schema, ReleaseURL: releaseURL, Key: Key(releaseURL), ProfileDigest: profileDigest,
		Platform: c.cfg.Platform, SoftwareDir: filepath.Clean(softwareDir), Relocatable: res.Relocatable,
		ArchiveSHA256: sum, ArchiveSize: cw.n, Files: res.Files, Created: time.Now().UTC(), Builder: c.cfg.Builder,
	}
	env, err := Sign(e, c.cfg.SigningKey)
	if err != nil {
		return false, "", err
	}
	if err := c.store.AddEntry(ctx, e.Key, env); err != nil {
		return false, "", fmt.Errorf("binary cache push: %w", err)
	}
	rel := ""
	if !res.Relocatable {
		rel = "; not relocatable: nodes must install it in " + e.SoftwareDir
	}
	return true, fmt.Sprintf("uploaded archive %s (%d files, %d bytes) signed by key %s%s",
		short(sum), res.Files, cw.n, KeyID(c.cfg.SigningKey.Public().(ed25519.PublicKey)), rel), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Listing is one entry as `slapnode cache ls` shows it.
type Listing struct {
	Entry   *Entry
	KeyID   string
	Trusted bool   // signature verified against the client's trusted keys
	Problem string // why the entry would be skipped on this node, "" if usable
}

// List returns the entries of releaseURL with what this node thinks of
// each.
func (c *Client) List(ctx context.Context, releaseURL, profileDigest, softwareDir string) ([]Listing, error) {
	key := Key(releaseURL)
	envs, err := c.store.Entries(ctx, key)
	if err != nil {
		return nil, err
	}
	var out []Listing
	for _, env := range envs {
		e, pub, err := peek(env)
		if err != nil {
			out = append(out, Listing{Problem: "malformed: " + err.Error()})
			continue
		}
		l := Listing{Entry: e, KeyID: KeyID(pub)}
		if _, _, err := Open(env, c.cfg.TrustedKeys); err != nil {
			l.Problem = err.Error()
		} else {
			l.Trusted = true
			l.Problem = c.usable(e, releaseURL, key, profileDigest, softwareDir)
		}
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Entry == nil || out[j].Entry == nil {
			return out[j].Entry == nil && out[i].Entry != nil
		}
		return out[i].Entry.Created.After(out[j].Entry.Created)
	})
	return out, nil
}
