package partition

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nofollow"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// Software is a software release: its profile and where it is installed.
type Software struct {
	URL     string // absolute path (or URL) of the software profile: its identity
	Path    string // <root>/software/<md5(URL)>
	Profile *profile.Profile
	Info    profile.SoftwareInfo
	Types   map[string]*profile.InstanceType
	Report  *Report // nil when the release was already complete
	// FromCache says the release was unpacked from the binary cache.
	FromCache bool
	// Recheck compares every part with the state even when the release is
	// complete (unchanged parts are still skipped), as a buildout re-run
	// does; by default a complete release is not looked at again.
	Recheck bool
	// Legacy is set for a SlapOS release written in buildout
	// (software.cfg), converted in memory (legacy.go).
	Legacy *Legacy
}

// SoftwareDir is where a software release with this URL is installed by
// default, the SlapOS way: <root>/software/<md5(url)>.
func SoftwareDir(root, url string) string {
	return filepath.Join(root, "software", SoftwareName(url))
}

// SoftwareName is the name of a release's directory: the md5 of its URL,
// as slapgrid names it under its software_root.
func SoftwareName(url string) string {
	sum := md5.Sum([]byte(url))
	return hex.EncodeToString(sum[:])
}

// SoftwareDir is where this engine installs the release at url:
// SoftwareRoot/<md5(url)>, ROOT/software/<md5(url)> by default.
func (e *Engine) SoftwareDir(url string) string {
	if e.SoftwareRoot != "" {
		return filepath.Join(e.SoftwareRoot, SoftwareName(url))
	}
	return SoftwareDir(e.Root, url)
}

type completion struct {
	Digest    string    `json:"profile_digest"`
	Completed time.Time `json:"completed"`
	// Files are the profile files the release was built from, with the
	// sha256 of their content, and Types its number of software types: with
	// them a complete release is recognised without parsing its profile.
	Files map[string]string `json:"files,omitempty"`
	Types int               `json:"software_types"`
}

func (s *Software) completion() completion {
	c := completion{Digest: s.Profile.Digest, Completed: time.Now().UTC(), Files: map[string]string{}, Types: len(s.Types)}
	for _, f := range s.Profile.Files {
		if b, err := os.ReadFile(f); err == nil {
			sum := sha256.Sum256(b)
			c.Files[f] = hex.EncodeToString(sum[:])
		}
	}
	return c
}

// Completed reports whether the release of pathOrURL is installed and none
// of its profile files changed since — without parsing the profile (a node
// polling a master checks every supplied release on every pass). It also
// says how many software types the release has.
func (e *Engine) Completed(pathOrURL string) (complete bool, types int) {
	url, err := SoftwareURL(pathOrURL)
	if err != nil {
		return false, 0
	}
	var c completion
	b, err := os.ReadFile(filepath.Join(e.SoftwareDir(url), ".completed"))
	if err != nil || json.Unmarshal(b, &c) != nil || len(c.Files) == 0 || c.Files[url] == "" {
		return false, 0
	}
	for f, want := range c.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return false, 0
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want {
			return false, 0
		}
	}
	return true, c.Types
}

// SoftwareURL turns what a user typed into a release identity: URLs as they
// are, paths made absolute.
func SoftwareURL(pathOrURL string) (string, error) {
	if strings.Contains(pathOrURL, "://") {
		return pathOrURL, nil
	}
	return filepath.Abs(pathOrURL)
}

// LoadSoftware loads a software profile and its instance types without
// installing anything.
func (e *Engine) LoadSoftware(pathOrURL string) (*Software, error) {
	url, err := SoftwareURL(pathOrURL)
	if err != nil {
		return nil, err
	}
	if strings.Contains(url, "://") {
		return nil, fmt.Errorf("software %s: only local software profiles can be installed by this node yet; give a path", url)
	}
	if IsLegacyProfile(url) {
		return e.loadLegacySoftware(url)
	}
	p, diags := profile.LoadWith(url, profile.Software, profile.LoadOptions{Cores: e.parseCores()})
	if p == nil || len(p.Files) == 0 {
		return nil, p.Err(diags)
	}
	s := &Software{URL: url, Path: e.SoftwareDir(url), Profile: p}
	ev := p.Evaluator(e.softwareVars(s))
	info, d := p.Software(ev)
	s.Info = info
	diags = append(diags, d...)
	types, d := p.InstanceTypes(ev)
	diags = append(diags, d...)
	s.Types = types
	if diags.HasErrors() {
		// Report the mistakes of the instance profiles with these: every
		// mistake at once, whatever file it is in.
		err := p.Err(diags).(*profile.Error)
		var cerr *profile.Error
		if errors.As(e.Check(context.Background(), s), &cerr) {
			err = profile.JoinErrors(err, cerr)
		}
		return nil, err
	}
	if s.Info.Name == "" {
		s.Info.Name = filepath.Base(filepath.Dir(url))
	}
	return s, nil
}

func (e *Engine) softwareVars(s *Software) map[string]cty.Value {
	name := ""
	if s.Info.Name != "" {
		name = s.Info.Name
	}
	return map[string]cty.Value{
		"software": cty.ObjectVal(map[string]cty.Value{
			"path": cty.StringVal(s.Path), "url": cty.StringVal(s.URL), "name": cty.StringVal(name),
		}),
		"profile": cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(s.Profile.Dir)}),
		"node":    e.nodeVar(),
	}
}

func (e *Engine) nodeVar() cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal(e.NodeID), "root": cty.StringVal(e.Root)})
}

func (e *Engine) cacheDir() string { return filepath.Join(e.Root, "cache", "download") }

// InstallSoftware installs the software parts of s into s.Path. A release
// already completed with the same profile content is skipped unless force;
// with plan set, nothing is changed.
func (e *Engine) InstallSoftware(ctx context.Context, s *Software, force, plan bool) error {
	marker := filepath.Join(s.Path, ".completed")
	if !plan {
		// The marker's temporary files, from writers killed before their
		// rename.
		atomicfile.CleanTemp(s.Path)
	}
	if !force && !s.Recheck {
		var c completion
		if b, err := os.ReadFile(marker); err == nil && json.Unmarshal(b, &c) == nil && c.Digest == s.Profile.Digest {
			return nil
		}
	}
	closed := false
	if !plan {
		_, markerErr := os.Lstat(marker)
		if err := os.MkdirAll(s.Path, 0o755); err != nil {
			return fmt.Errorf("software directory: %w", err)
		}
		if errors.Is(markerErr, fs.ErrNotExist) {
			// Never completed, so no partition runs it yet: closed to
			// everyone but the node while it is built, so that no
			// partition user reaches what a build step makes writable
			// by others, nor races a build step with a link planted
			// there. shareTree opens it once the build succeeded.
			if err := closeTree(s.Path); err != nil {
				return fmt.Errorf("software directory: %w", err)
			}
			closed = true
		}
		// Not complete until this install succeeds.
		if err := os.Remove(marker); err != nil && !os.IsNotExist(err) {
			return err
		}
		e.dropRecheck(s.URL)
		_, statErr := os.Stat(filepath.Join(s.Path, ".slapnode", "parts.journal"))
		if e.BinaryCache != nil && !force && os.IsNotExist(statErr) {
			// Only a release never built here is fetched: one built (or
			// being rebuilt) here is updated part by part.
			done := e.BeginStep("looking for " + s.Info.Name + " in the binary cache")
			hit, why, err := e.BinaryCache.Fetch(ctx, s.URL, s.Profile.Digest, s.Path)
			done()
			if err != nil {
				return fmt.Errorf("software %s: binary cache: %w", s.URL, err)
			}
			if why != "" {
				e.progress("binary cache: %s", why)
			}
			if hit {
				s.FromCache = true
				if err := e.adoptJournal(s.Path); err != nil {
					return fmt.Errorf("software %s: %w", s.Path, err)
				}
				if err := e.shareSoftware(s.Path); err != nil {
					return err
				}
				return atomicfile.WriteJSON(marker, s.completion(), 0o644)
			}
		}
	}
	t := &Target{
		Kind: "software", Name: s.Info.Name, Dir: s.Path, ProfileDir: s.Profile.Dir,
		Vars: e.softwareVars(s),
		Context: map[string]any{
			"kind":        "software",
			"software":    map[string]any{"path": s.Path, "url": s.URL},
			"profile_dir": s.Profile.Dir,
			"cache_dir":   e.cacheDir(),
			"node":        map[string]any{"id": e.NodeID, "root": e.Root},
		},
		Mounts: e.mounts(wasmhost.Mount{HostPath: s.Path}, s.Profile),
		Force:  force,
	}
	res, err := e.Apply(ctx, s.Profile, nil, t, plan)
	if err != nil {
		return err
	}
	s.Report = res.Report
	if plan {
		return nil
	}
	if changed := res.Report.Counts[Install] + res.Report.Counts[Reinstall]; changed > 0 || closed {
		if err := e.shareSoftware(s.Path); err != nil {
			return err
		}
	}
	if e.BinaryCache != nil && e.BinaryCache.CanPush() && res.Report.Counts[Install]+res.Report.Counts[Reinstall] > 0 {
		// Sharing the build is a favour to other nodes: its failure is a
		// warning, not a failed install.
		done := e.BeginStep("uploading " + s.Info.Name + " to the binary cache")
		_, why, err := e.BinaryCache.Push(ctx, s.URL, s.Profile.Digest, s.Path)
		done()
		if err != nil {
			why = "not uploaded: " + err.Error()
		}
		if why != "" {
			e.progress("binary cache: %s", why)
		}
	}
	if err := atomicfile.WriteJSON(marker, s.completion(), 0o644); err != nil {
		return err
	}
	e.saveRecheck(s, res)
	return nil
}

// mounts lists what a recipe sees: its writable directory, and read-only the
// directories of every profile file (templates and sources live there).
func (e *Engine) mounts(rw wasmhost.Mount, profiles ...*profile.Profile) []wasmhost.Mount {
	m := []wasmhost.Mount{rw}
	seen := map[string]bool{rw.HostPath: true}
	for _, p := range profiles {
		for _, f := range p.Files {
			d := filepath.Dir(f)
			if seen[d] || within(rw.HostPath, d) {
				continue
			}
			seen[d] = true
			m = append(m, wasmhost.Mount{HostPath: d, ReadOnly: true})
		}
	}
	return m
}

// shareSoftware opens a built software tree to the partitions (shareTree)
// and says what it removed.
func (e *Engine) shareSoftware(dir string) error {
	removed, err := shareTree(dir)
	for _, p := range removed {
		e.progress("software %s: removed %s, which was not the node's: someone wrote it while the tree was built, through a directory the build made writable by others", dir, p)
	}
	if err != nil {
		return fmt.Errorf("software %s: %w", dir, err)
	}
	return nil
}

// closeTree makes dir, a software directory being built, 0700 (through a
// descriptor of dir itself, not following a link there).
func closeTree(dir string) error {
	d, err := nofollow.OpenNoFollow(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chmod(".", 0o700)
}
