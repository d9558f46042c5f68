package buildout

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Value is one option value of a merged configuration with the file that
// set it last (what `buildout annotate` prints as the source).
type Value struct {
	Text   string
	Source string
}

// Section is the merged options of one section.
type Section map[string]*Value

// Config is the merge of a file and its `extends` closure, before macros
// and substitution (buildout's `_raw` data; `buildout annotate` prints it).
type Config struct {
	Root     string
	Sections map[string]Section
	// Files is every file of the closure, in the order they were read.
	Files []string
}

// LoadOptions configures Load.
type LoadOptions struct {
	// Env evaluates `[name:expr]` conditions; nil means DefaultCondEnv.
	Env *CondEnv
	// ExtendsCache is the directory holding `extends` URLs, each saved under
	// the md5 hex digest of its URL (zc.buildout's extends-cache layout).
	// URLs are never downloaded: a missing entry is an error.
	ExtendsCache string
	// Directory is [buildout] directory; default: the root file's directory.
	Directory string
	// Executable is [buildout] executable; default: /usr/bin/python3.
	Executable string
	// NoProfileBase disables SlapOS's `_profile_base_location_` option.
	NoProfileBase bool
	// ReadFile, when set, reads the files of the closure instead of
	// os.ReadFile (the engine reads a partition's profiles with the
	// partition user's rights).
	ReadFile func(path string) ([]byte, error)
}

// ErrExtendsCycle is wrapped by the error of a file that extends itself.
var ErrExtendsCycle = errors.New("recursive extends")

// ErrNotCached is wrapped by the error of an `extends` URL absent from the
// extends cache.
var ErrNotCached = errors.New("extends URL not in the local cache")

// ProfileBaseOption is the option SlapOS's buildout fork adds to a
// section: the directory (or URL base) of the last file (in merge order)
// whose definition of the section uses ${:_profile_base_location_} in one
// of its values. A <= macro copies it to the sections using it, unless
// they have their own. A section that never uses it has none. This is
// the fork's _open (slapos.buildout 2.5.2+slapos010): a file's section
// gets the option when one of its values holds the reference.
const ProfileBaseOption = "_profile_base_location_"

// usesProfileBase reports whether a file's definition of a section uses
// ${:_profile_base_location_} (and so gets the option, in the fork).
func usesProfileBase(opts []*Option) bool {
	for _, o := range opts {
		if strings.Contains(o.Value, "${:"+ProfileBaseOption+"}") {
			return true
		}
	}
	return false
}

type loader struct {
	opts  LoadOptions
	memo  map[string]map[string]Section
	files []string
	seen  map[string]bool
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "file://")
}

// Load reads path and its extends closure and merges them as zc.buildout's
// _open does: the first `extends` entry is the base, the next ones are
// merged onto it in order, and the extending file is merged last, with
// `+=`/`-=` applied against what is below. Files of the closure are read
// once (memoized): a file merges the same way whoever includes it.
func Load(path string, opts LoadOptions) (*Config, error) {
	if opts.Env == nil {
		opts.Env = DefaultCondEnv()
	}
	if opts.Executable == "" {
		opts.Executable = "/usr/bin/python3"
	}
	abs := path
	if !isURL(path) {
		var err error
		if abs, err = filepath.Abs(path); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
	}
	if opts.Directory == "" {
		opts.Directory = filepath.Dir(abs)
	}
	l := &loader{opts: opts, memo: map[string]map[string]Section{}, seen: map[string]bool{}}
	res, err := l.open("", abs, nil, Pos{})
	if err != nil {
		return nil, err
	}
	data := map[string]Section{"buildout": defaultBuildout(opts)}
	update(data, res)
	finishBuildout(data, opts)
	return &Config{Root: abs, Sections: data, Files: l.files}, nil
}

func defaultBuildout(opts LoadOptions) Section {
	s := Section{}
	for k, v := range buildoutDefaults {
		s[k] = &Value{Text: v, Source: "DEFAULT_VALUE"}
	}
	for k, v := range map[string]string{
		"bin-directory": "bin", "develop-eggs-directory": "develop-eggs", "eggs-directory": "eggs",
		"executable": opts.Executable, "parts-directory": "parts",
	} {
		s[k] = &Value{Text: v, Source: "DEFAULT_VALUE"}
	}
	s["directory"] = &Value{Text: opts.Directory, Source: "COMPUTED_VALUE"}
	return s
}

// finishBuildout reproduces the adjustments zc.buildout's Buildout.__init__
// makes to the merged data before any substitution: the default [versions]
// section and pins, and absolute paths for the standard directories.
func finishBuildout(data map[string]Section, opts LoadOptions) {
	b := data["buildout"]
	if _, ok := b["versions"]; !ok {
		b["versions"] = &Value{Text: "versions", Source: "DEFAULT_VALUE"}
		if _, ok := data["versions"]; !ok {
			data["versions"] = Section{}
		}
	}
	if vname := b["versions"].Text; vname != "" {
		vs, ok := data[vname]
		if !ok {
			vs = Section{}
			data[vname] = vs
		}
		for k, v := range map[string]string{"zc.buildout": ">=2.13.2", "zc.recipe.egg": ">=2.0.6"} {
			if _, ok := vs[k]; !ok {
				vs[k] = &Value{Text: v, Source: "DEFAULT_VALUE"}
			}
		}
	}
	for _, name := range []string{"download-cache", "eggs-directory", "extends-cache"} {
		v, ok := b[name]
		if !ok || strings.Contains(v.Text, "${") || filepath.IsAbs(v.Text) {
			continue
		}
		base := opts.Directory
		switch v.Source {
		case "DEFAULT_VALUE", "COMPUTED_VALUE", "COMMAND_LINE_VALUE":
			if d, ok := b["directory"]; ok {
				base = d.Text
			}
		default:
			base = filepath.Dir(v.Source)
		}
		p := v.Text
		if strings.HasPrefix(p, "~") {
			if h, err := os.UserHomeDir(); err == nil {
				p = h + p[1:]
			}
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		b[name] = &Value{Text: filepath.Clean(p), Source: v.Source}
	}
	dir := b["directory"].Text
	for _, name := range []string{"bin", "parts", "eggs", "develop-eggs"} {
		k := name + "-directory"
		if v, ok := b[k]; ok && !strings.Contains(v.Text, "${") {
			b[k] = &Value{Text: pyJoin(dir, v.Text), Source: v.Source}
		}
	}
}

// pyJoin is os.path.join for two components (no cleaning, unlike filepath).
func pyJoin(a, b string) string {
	if strings.HasPrefix(b, "/") || a == "" {
		return b
	}
	if strings.HasSuffix(a, "/") {
		return a + b
	}
	return a + "/" + b
}

// open reads filename (relative to base) and its closure. from is the
// position of the `extends` entry naming it, for error messages.
func (l *loader) open(base, filename string, chain []string, from Pos) (map[string]Section, error) {
	var (
		full string
		src  []byte
		err  error
	)
	switch {
	case isURL(filename):
		full = filename
	case isURL(base):
		if strings.HasPrefix(filename, "/") {
			full = filename
		} else {
			full = base + "/" + filename
		}
	default:
		// Cleaned, unlike buildout's os.path.join: the same file has one
		// name whoever includes it (the goldens normalize the same way).
		full = filepath.Clean(pyJoin(base, filename))
	}
	for _, s := range chain {
		if s == full {
			return nil, fmt.Errorf("%w: %s extends itself through %s", ErrExtendsCycle, full, strings.Join(append(chain, full), " -> "))
		}
	}
	if m, ok := l.memo[full]; ok && len(chain) > 0 {
		return copyData(m), nil
	}
	var newBase string
	if isURL(full) {
		src, err = l.fetch(full)
		newBase = full[:strings.LastIndexByte(full, '/')]
	} else {
		if l.opts.ReadFile != nil {
			src, err = l.opts.ReadFile(full)
		} else {
			src, err = ReadBounded(full)
		}
		newBase = filepath.Dir(full)
	}
	if err != nil {
		if len(chain) > 0 {
			return nil, fmt.Errorf("%s: extends %q: %w", from, filename, err)
		}
		return nil, fmt.Errorf("load: %w", err)
	}
	if !l.seen[full] {
		l.seen[full] = true
		l.files = append(l.files, full)
	}
	f, err := Parse(full, src)
	if err != nil {
		return nil, err
	}
	secs, _, err := f.Sections(l.opts.Env)
	if err != nil {
		return nil, err
	}
	result := map[string]Section{}
	var extends []string
	var extendsPos Pos
	hasExtends := false
	for name, opts := range secs {
		s := Section{}
		if !l.opts.NoProfileBase && usesProfileBase(opts) {
			s[ProfileBaseOption] = &Value{Text: newBase, Source: full}
		}
		for _, o := range opts {
			if name == "buildout" && o.Key == "extends" {
				extends, hasExtends, extendsPos = strings.Fields(o.Value), true, o.Pos
				continue
			}
			s[o.Key] = &Value{Text: o.Value, Source: full}
		}
		if name == "buildout" {
			if _, ok := s["extended-by"]; ok {
				return nil, fmt.Errorf("%s: the \"extended-by\" option is no longer supported: remove it", full)
			}
		}
		result[name] = s
	}
	if hasExtends && len(extends) > 0 {
		chain = append(chain, full)
		eres, err := l.open(newBase, extends[0], chain, extendsPos)
		if err != nil {
			return nil, err
		}
		for _, e := range extends[1:] {
			r, err := l.open(newBase, e, chain, extendsPos)
			if err != nil {
				return nil, err
			}
			update(eres, r)
		}
		result = update(eres, result)
	}
	l.memo[full] = copyData(result)
	return result, nil
}

func (l *loader) fetch(url string) ([]byte, error) {
	if l.opts.ExtendsCache == "" {
		return nil, fmt.Errorf("%w: %s (no extends cache given; save the file there under its URL's md5)", ErrNotCached, url)
	}
	sum := md5.Sum([]byte(url))
	p := filepath.Join(l.opts.ExtendsCache, hex.EncodeToString(sum[:]))
	b, err := ReadBounded(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (expected at %s)", ErrNotCached, url, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%s (cached at %s): %w", url, p, err)
	}
	return b, nil
}

// ReadBounded reads a .cfg file for Load: a regular file, opened
// non-blocking (a FIFO named by `extends` would block the reader forever)
// and read up to MaxFileSize+1 bytes (`extends = /dev/zero` used to read
// until memory ran out), so that Parse reports a larger file with its
// position. A LoadOptions.ReadFile should read with it.
func ReadBounded(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		what := "a special file"
		switch t := st.Mode().Type(); {
		case t&fs.ModeDir != 0:
			what = "a directory"
		case t&fs.ModeNamedPipe != 0:
			what = "a FIFO"
		case t&fs.ModeDevice != 0:
			what = "a device"
		case t&fs.ModeSocket != 0:
			what = "a socket"
		}
		return nil, fmt.Errorf("%s is not a regular file but %s: a buildout profile must be a file", path, what)
	}
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

func copyData(d map[string]Section) map[string]Section {
	out := make(map[string]Section, len(d))
	for k, s := range d {
		c := make(Section, len(s))
		for o, v := range s {
			c[o] = v
		}
		out[k] = c
	}
	return out
}

// update merges d2 into d1 (zc.buildout's _update).
func update(d1, d2 map[string]Section) map[string]Section {
	for name, s2 := range d2 {
		if s1, ok := d1[name]; ok {
			d1[name] = updateSection(s1, s2)
		} else {
			d1[name] = s2
		}
	}
	return d1
}

// updateSection is zc.buildout's _update_section: `+=`/`-=` keys of s2 are
// applied (to s2's own plain value when it has one, else to s1's) in the
// order buildout sorts them, then s2 overrides s1.
func updateSection(s1, s2 Section) Section {
	s2 = copySection(s2)
	keys := make([]string, 0, len(s2))
	for k := range s2 {
		keys = append(keys, k)
	}
	sortKey := func(k string) (string, byte) { return strings.TrimRight(k, " +"), k[len(k)-1] }
	sort.Slice(keys, func(i, j int) bool {
		a, ab := sortKey(keys[i])
		b, bb := sortKey(keys[j])
		if a != b {
			return a < b
		}
		return ab < bb
	})
	for _, k := range keys {
		v := s2[k]
		var key string
		add := false
		switch {
		case strings.HasSuffix(k, "+"):
			key, add = strings.TrimRight(k, " +"), true
		case strings.HasSuffix(k, "-"):
			key = strings.TrimRight(k, " -")
		default:
			continue
		}
		base, ok := s2[key]
		if !ok {
			if base, ok = s1[key]; !ok {
				base = &Value{Source: "IMPLICIT_VALUE"}
			}
		}
		var text string
		if add {
			text = base.Text + "\n" + v.Text
		} else {
			text = removeLines(base.Text, v.Text)
		}
		nv := &Value{Text: text, Source: v.Source}
		s2[key] = nv
		if _, inS1 := s1[key]; inS1 {
			// buildout mutates s1's value in place here; later readers of
			// s1 (none after the merge) would see it. Keep s1 consistent.
			s1[key] = nv
		}
		delete(s2, k)
	}
	for k, v := range s2 {
		s1[k] = v
	}
	return s1
}

func copySection(s Section) Section {
	c := make(Section, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

func removeLines(value, removed string) string {
	drop := map[string]bool{}
	for _, l := range strings.Split(removed, "\n") {
		drop[l] = true
	}
	var keep []string
	for _, l := range strings.Split(value, "\n") {
		if !drop[l] {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
