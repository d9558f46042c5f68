package partition

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nofollow"
	"github.com/slapnode/slapnode/runtime/builtin"
)

// The recheck cache. `apply --recheck` of a complete release compares
// every part with its journal, which means parsing and evaluating the
// profile again: at 1000 parts most of the recheck's time. What that
// evaluation produced for the comparison — each part's name, recipe and
// signature, in order — is a function of the profile's files, the target's
// variables, the recipe modules and slapnode itself, so it is cached per
// release in ROOT/state/recheck/<md5(url)>.json (the node's own state
// directory, 0700, authenticated with the journal key) by every apply that
// evaluated the profile, together with what else the comparison reads: the
// journal's digest, the paths every part installed, and for the parts whose
// signature covers files' content (wrapper's hash-files) the signature
// before that content and the files. A recheck whose inputs all match
// compares the cached signatures (the content ones recomputed from the
// files as they are now) with the journal and checks the installed paths,
// without parsing; any difference, or any doubt, and it evaluates the
// profile as before (docs/profiles.md §4).

// recheckFormat is bumped when the cache's meaning changes.
const recheckFormat = 1

// recheckData is what an apply collects for the cache.
type recheckData struct {
	parts       []recheckPart
	modules     map[string]recheckModule
	uncacheable bool // a pending value, a request: not a function of the key
	basis       string
}

// recheckPart is one recipe part, in the order the apply took them.
type recheckPart struct {
	Name   string `json:"name"`
	Recipe string `json:"recipe"`
	Sig    string `json:"sig"`
	// Base is the signature before the content of the files Content
	// names (contentSignature), which a recheck reads again.
	Base      string   `json:"base,omitempty"`
	Content   []string `json:"content,omitempty"`
	Installed []string `json:"installed,omitempty"`
}

// recheckModule is a module the parts' signatures cover, by digest.
type recheckModule struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	SHA256 string `json:"sha256,omitempty"` // the profile's pin
	Digest string `json:"digest"`
}

// recheckKey is what the evaluation depended on, besides the modules.
type recheckKey struct {
	Format     int    `json:"format"`
	Build      string `json:"build"` // slapnode's own build (buildID)
	URL        string `json:"url"`
	Path       string `json:"path"`
	ProfileDir string `json:"profile_dir"`
	NodeID     string `json:"node_id"`
	Root       string `json:"root"`
	// Files and Digest are the profile's files in load order and their
	// digest as profile.Load computes it.
	Files  []string `json:"files"`
	Digest string   `json:"digest"`
}

type recheckCache struct {
	Key     recheckKey           `json:"key"`
	Info    profile.SoftwareInfo `json:"info"`
	Modules []recheckModule      `json:"modules"`
	Parts   []recheckPart        `json:"parts"`
	// Journal is the sha256 of the journal file, Dir the identity of the
	// software directory it is about, Basis the journal's basis.
	Journal string `json:"journal"`
	Dir     string `json:"dir"`
	Basis   string `json:"basis"`
}

// finish completes the data of an apply whose journal j is closed: the
// paths each part installed, the journal's basis. A journal that does not
// hold exactly the parts the apply took is not what the cache describes.
func (d *recheckData) finish(j *journal) {
	if len(j.parts) != len(d.parts) {
		d.uncacheable = true
		return
	}
	for i, p := range d.parts {
		rec := j.parts[p.Name]
		if rec == nil || rec.Signature != p.Sig {
			d.uncacheable = true
			return
		}
		d.parts[i].Installed = rec.Installed
	}
	d.basis = j.basis()
}

func (r *run) cacheModule(m *modRef) {
	if _, ok := r.recheck.modules[m.Name]; ok {
		return
	}
	rm := recheckModule{Name: m.Name, Source: m.source, Digest: m.Digest}
	if spec := r.specs[m.Name]; spec != nil {
		rm.SHA256 = spec.SHA256
	}
	r.recheck.modules[m.Name] = rm
}

// buildID identifies the running slapnode: its build settings and its
// executable file (a rebuilt binary is another file, or the same one
// modified), so that no cache outlives the code that wrote it. "" when it
// cannot be told: nothing is cached then.
var buildID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	st, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	h := sha256.New()
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(h, "%s\x00%s\x00", bi.GoVersion, bi.Main.Version)
		for _, s := range bi.Settings {
			fmt.Fprintf(h, "%s=%s\x00", s.Key, s.Value)
		}
	}
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d:%d\x00%d.%d", exe, st.Size(), st.ModTime().UnixNano(), sys.Dev, sys.Ino, sys.Ctim.Sec, sys.Ctim.Nsec)
	return hex.EncodeToString(h.Sum(nil))
})

// recheckPath is where the cache of the release at url is.
func (e *Engine) recheckPath(url string) string {
	return filepath.Join(e.Root, "state", "recheck", SoftwareName(url)+".json")
}

func (e *Engine) recheckKey(s *Software) recheckKey {
	return recheckKey{Format: recheckFormat, Build: buildID(), URL: s.URL, Path: s.Path, ProfileDir: s.Profile.Dir,
		NodeID: e.NodeID, Root: e.Root, Files: s.Profile.Files, Digest: s.Profile.Digest}
}

// dropRecheck removes the cache of a release about to be built: until the
// build succeeds, what it says may not be true any more.
func (e *Engine) dropRecheck(url string) {
	if e.Root != "" {
		os.Remove(e.recheckPath(url))
	}
}

// saveRecheck writes the cache of a release s just applied (res). A cache:
// failing to write it costs the next recheck its speed, nothing else.
func (e *Engine) saveRecheck(s *Software, res *Result) {
	d := res.recheck
	if e.Root == "" || d == nil || d.uncacheable || s.Legacy != nil || len(s.Types) > 0 || s.Profile == nil {
		return
	}
	key := e.recheckKey(s)
	if key.Build == "" || callsFileFuncs(s.Profile) {
		return
	}
	for _, m := range d.modules {
		if _, ok := currentDigest(m); !ok {
			return
		}
	}
	journal, err := os.ReadFile(filepath.Join(s.Path, ".slapnode", journalName))
	if err != nil {
		return
	}
	sum := sha256.Sum256(journal)
	c := recheckCache{Key: key, Info: s.Info, Parts: d.parts, Journal: hex.EncodeToString(sum[:]),
		Dir: dirIdentity(s.Path), Basis: d.basis}
	for _, m := range d.modules {
		c.Modules = append(c.Modules, m)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return
	}
	mac, err := e.recheckMAC(s.URL, true)
	if err != nil {
		return
	}
	mac.Write(body)
	data := make([]byte, 0, len(body)+hex.EncodedLen(sha256.Size)+1)
	data = hex.AppendEncode(data, mac.Sum(nil))
	data = append(data, '\n')
	data = append(data, body...)
	root, err := nofollow.Open(e.Root)
	if err != nil {
		return
	}
	defer root.Close()
	dir, err := root.MkdirAll(filepath.Join("state", "recheck"), 0o700)
	if err != nil {
		return
	}
	defer dir.Close()
	if tighten(dir, ".", 0o700) != nil {
		return
	}
	// Atomic, without the fsyncs: whatever version of the file a power
	// loss leaves is checked against everything it describes before it
	// is believed.
	_ = atomicfile.ReplaceIn(dir, filepath.Base(e.recheckPath(s.URL)), data, 0o600, -1, -1)
}

// recheckMAC is the HMAC that authenticates the cache of the release at
// url: under the journal key, bound to the release.
func (e *Engine) recheckMAC(url string, create bool) (hash.Hash, error) {
	key, err := e.stateKey(create)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("no journal key")
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "recheck:%s\x00", SoftwareName(url))
	return m, nil
}

// RecheckUnchanged is `apply --recheck` of the complete release at
// pathOrURL when nothing changed, told from its recheck cache without
// parsing or evaluating the profile: the release, its Report saying every
// part is unchanged (as an apply that evaluated it says), and no Profile.
// It returns nil when the cache is missing, unreadable, or any of its
// inputs differ, when a part's signature or content differs from its
// journal, or when a path a part installed is missing: the caller then
// applies the release as usual, which says what changes.
func (e *Engine) RecheckUnchanged(pathOrURL string) *Software {
	url, err := SoftwareURL(pathOrURL)
	if err != nil || e.Root == "" || strings.Contains(url, "://") || IsLegacyProfile(url) {
		return nil
	}
	c, ok := e.readRecheck(url)
	if !ok {
		return nil
	}
	path := e.SoftwareDir(url)
	k := c.Key
	if k.Format != recheckFormat || k.Build == "" || k.Build != buildID() || k.URL != url || k.Path != path ||
		k.ProfileDir != filepath.Dir(url) || k.NodeID != e.NodeID || k.Root != e.Root {
		return nil
	}
	var done completion
	if b, err := os.ReadFile(filepath.Join(path, ".completed")); err != nil || json.Unmarshal(b, &done) != nil || done.Digest != k.Digest {
		return nil
	}
	if d, ok := filesDigest(k.Files); !ok || d != k.Digest {
		return nil
	}
	for _, m := range c.Modules {
		if d, ok := currentDigest(m); !ok || d != m.Digest {
			return nil
		}
	}
	if c.Dir == "" || dirIdentity(path) != c.Dir {
		return nil
	}
	journal, err := os.ReadFile(filepath.Join(path, ".slapnode", journalName))
	if err != nil {
		return nil
	}
	if sum := sha256.Sum256(journal); hex.EncodeToString(sum[:]) != c.Journal {
		return nil
	}
	d, err := nofollow.Open(path)
	if err != nil {
		return nil
	}
	defer d.Close()
	rep := &Report{Target: c.Info.Name, Counts: map[ActionKind]int{}, Basis: c.Basis}
	if len(c.Parts) > 0 {
		rep.Actions = make([]Action, 0, len(c.Parts))
	}
	for _, p := range c.Parts {
		if p.Base != "" && contentSignature(p.Base, path, p.Content) != p.Sig {
			return nil
		}
		if missingPath(d, path, p.Installed) != "" {
			return nil
		}
		rep.add(Action{Part: p.Name, Kind: Unchanged, Recipe: p.Recipe})
	}
	return &Software{URL: url, Path: path, Info: c.Info, Report: rep, Recheck: true}
}

// readRecheck reads and authenticates the cache of the release at url.
func (e *Engine) readRecheck(url string) (recheckCache, bool) {
	var c recheckCache
	f, err := os.Open(e.recheckPath(url))
	if err != nil {
		return c, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJournal+1))
	if err != nil || len(data) > maxJournal {
		return c, false
	}
	sum, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return c, false
	}
	mac, err := e.recheckMAC(url, false)
	if err != nil {
		return c, false
	}
	mac.Write(body)
	want := hex.AppendEncode(nil, mac.Sum(nil))
	if !hmac.Equal(sum, want) {
		return c, false
	}
	if json.Unmarshal(body, &c) != nil {
		return c, false
	}
	return c, true
}

// filesDigest is profile.Load's Digest of the profile files, read again.
func filesDigest(files []string) (string, bool) {
	if len(files) == 0 {
		return "", false
	}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) > profile.MaxFileSize {
			return "", false
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// currentDigest is the digest module m has now, as Engine.module computes
// it: a built-in module's recorded at build time, a downloaded one's its
// pin (the download is checked against it), a file's its content's.
func currentDigest(m recheckModule) (string, bool) {
	switch {
	case strings.HasPrefix(m.Source, "builtin:"):
		return builtin.Digest(strings.TrimPrefix(m.Source, "builtin:"))
	case strings.Contains(m.Source, "://"):
		return strings.ToLower(m.SHA256), m.SHA256 != ""
	}
	b, err := readModule(m.Source)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), true
}

// fileFuncs are the functions that read files besides the profile's own
// (Profile.Digest does not cover what they read).
var fileFuncs = map[string]bool{"file": true, "fileexists": true, "templatefile": true}

// callsFileFuncs reports whether any expression of the profile may read a
// file: a profile that does is not cached. A file the parser did not
// give as native syntax counts as one that does.
func callsFileFuncs(p *profile.Profile) bool {
	for _, f := range p.Sources() {
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return true
		}
		found := false
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if fc, ok := n.(*hclsyntax.FunctionCallExpr); ok {
				name := fc.Name
				if i := strings.LastIndex(name, "::"); i >= 0 {
					name = name[i+2:]
				}
				if fileFuncs[name] {
					found = true
				}
			}
			return nil
		})
		if found {
			return true
		}
	}
	return false
}
