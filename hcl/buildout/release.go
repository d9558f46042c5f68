package buildout

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Warning kinds of whole releases.
const (
	// WarnMissingExtends: an extends entry names a local file that does not
	// exist; the converted profile cannot load until it is provided.
	WarnMissingExtends = "missing-extends"
	// WarnMissingFile: a file a profile reads (a template, a patch, a hook)
	// does not exist, so it cannot be copied beside the HCL.
	WarnMissingFile = "missing-file"
)

// DefaultVersion is the version of a converted release that says nothing
// of its own (no git tag or commit around it).
const DefaultVersion = "0.0.0"

// Release is one or more buildout profiles converted with their whole
// extends closure: every file to its own HCL file, the layout kept so that
// relative extends still point at each other, and the files the profiles
// read (templates, patches, hooks) listed to be copied beside them.
type Release struct {
	// Dir is the deepest directory holding every file and asset: outputs
	// keep their path relative to it.
	Dir string
	// Results has one entry per file converted: the roots, then the files
	// they extend, each once.
	Results []*Result
	// Errors holds the files that could not be converted (parse errors),
	// by path.
	Errors map[string]error
	// Assets are the files the profiles read, absolute paths, sorted.
	Assets []string
}

// ConvertRelease converts roots and every file their extends closures
// name. A root whose kind is software gets a software block (its name is
// the directory's, its version the git tag or commit of the checkout it
// is in, else DefaultVersion). The files of a closure are converted
// knowing what the others define: a [buildout] option set by any file of
// the release is read from part "buildout", one set by none is buildout's
// default.
func ConvertRelease(roots []string, opts ConvertOptions) (*Release, error) {
	if opts.Env == nil {
		opts.Env = DefaultCondEnv()
	}
	rl := &releaseLoader{opts: opts, files: map[string]*relFile{}, rel: &Release{Errors: map[string]error{}}}
	for _, r := range roots {
		rl.visit(r, nil)
	}
	info := &closureInfo{buildout: map[string]bool{}}
	for _, f := range rl.order {
		for _, o := range f.sections["buildout"] {
			info.buildout[o.Name] = true
		}
	}
	rootSet := map[string]bool{}
	for _, r := range roots {
		if abs, err := filepath.Abs(r); err == nil {
			rootSet[abs] = true
		}
		if opts.Kind == "instance" || opts.Kind == "" && guessKind(r) == "instance" {
			// slapgrid's tail sets these in the root (InstanceTail).
			info.buildout["bin-directory"] = true
			info.buildout["offline"] = true
		}
	}
	var dirs []string
	for _, f := range rl.order {
		dirs = append(dirs, filepath.Dir(f.abs))
		if f.err != nil {
			rl.rel.Errors[f.path] = f.err
			continue
		}
		copts := opts
		copts.closure = info
		if copts.Kind == "" {
			copts.Kind = guessKind(f.rootPath)
		}
		if rootSet[f.abs] && copts.Kind == "software" {
			copts.software = softwareMeta(f.abs)
		}
		if rootSet[f.abs] && f.sections != nil {
			copts.rootParts = rootParts(f, opts)
		}
		if rootSet[f.abs] && copts.Kind == "instance" {
			copts.instanceRoot = true
		}
		res, err := ConvertFile(f.path, f.src, copts)
		if err != nil {
			rl.rel.Errors[f.path] = err
			continue
		}
		res.Warnings = append(res.Warnings, f.warnings...)
		sortWarnings(res.Warnings)
		rl.rel.Results = append(rl.rel.Results, res)
	}
	assets, warns := rl.assets()
	for _, w := range warns {
		for _, res := range rl.rel.Results {
			if res.Path == w.Pos.File {
				res.Warnings = append(res.Warnings, w)
				sortWarnings(res.Warnings)
			}
		}
	}
	rl.rel.Assets = assets
	for _, a := range assets {
		dirs = append(dirs, filepath.Dir(a))
	}
	dirs = append(dirs, rl.reach...)
	rl.rel.Dir = deepestCommon(dirs)
	return rl.rel, nil
}

// rootParts is the parts list buildout computes for a root: when no file
// of its closure sets [buildout] parts, none (buildout installs nothing,
// where a profile without parts installs every part); when the closure
// loads, the merged list. Profiles merge a file extended from two places
// once; buildout merges it again at each place, so with `parts +=` (or no
// parts in the root) the lists can differ: the root says buildout's.
func rootParts(f *relFile, opts ConvertOptions) *[]string {
	if !setsParts(f, map[*relFile]bool{}) {
		return &[]string{}
	}
	cfg, err := Load(f.path, LoadOptions{Env: opts.Env})
	if err != nil {
		return nil // a file of the closure is missing: the expressions stay
	}
	v := cfg.Sections["buildout"]["parts"]
	if v == nil {
		return &[]string{}
	}
	if strings.Contains(v.Text, "${") {
		return nil // computed: the expression is exact
	}
	names := strings.Fields(v.Text)
	return &names
}

// setsParts reports whether f or a file it extends sets [buildout] parts.
func setsParts(f *relFile, seen map[*relFile]bool) bool {
	if seen[f] {
		return false
	}
	seen[f] = true
	for _, o := range f.sections["buildout"] {
		if o.Name == "parts" {
			return true
		}
	}
	for _, e := range f.extends {
		if setsParts(e, seen) {
			return true
		}
	}
	return false
}

func guessKind(file string) string {
	base := filepath.Base(file)
	if strings.HasPrefix(base, "instance") || strings.HasPrefix(base, "template") || strings.HasSuffix(base, ".in") {
		return "instance"
	}
	return "software"
}

// relFile is one file of a release's closure.
type relFile struct {
	path     string // as it is named (relative to the includer, cleaned)
	abs      string
	rootPath string // the root whose closure brought it first
	src      []byte
	err      error
	sections map[string][]*Option // after conditions; nil for a template
	warnings []Warning
	extends  []*relFile // the local files it extends
}

type releaseLoader struct {
	opts  ConvertOptions
	files map[string]*relFile // by absolute path
	order []*relFile          // as met: each root, then what it extends
	merge []*relFile          // buildout's merge order: what a file extends, then the file
	rel   *Release
	// reach are the directories relative paths climb to: the output
	// layout must keep them, or "../../component/x" would point elsewhere.
	reach []string
}

// reach is the highest directory a relative path climbs to from dir.
func reach(dir, rel string) string {
	if filepath.IsAbs(rel) {
		return filepath.Dir(rel)
	}
	up := dir
	for _, c := range strings.Split(filepath.ToSlash(rel), "/") {
		if c != ".." {
			break
		}
		up = filepath.Dir(up)
	}
	return up
}

// visit reads a file and the files it extends (depth first, in order).
func (rl *releaseLoader) visit(path string, root *relFile) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return
	}
	if rl.files[abs] != nil {
		return
	}
	f := &relFile{path: filepath.Clean(path), abs: abs}
	if root != nil {
		f.rootPath = root.rootPath
	} else {
		f.rootPath = f.path
	}
	rl.files[abs] = f
	rl.order = append(rl.order, f)
	f.src, f.err = ReadBounded(path) // Parse refuses more than MaxFileSize
	if f.err != nil {
		return
	}
	if JinjaLine(path, f.src) > 0 {
		return // reported by ConvertFile; its extends are computed
	}
	pf, err := Parse(f.path, f.src)
	if err != nil {
		f.err = err
		return
	}
	secs, _, err := pf.Sections(rl.opts.Env)
	if err != nil {
		secs = map[string][]*Option{} // conditions reported by ConvertFile
	}
	f.sections = secs
	for _, o := range secs["buildout"] {
		if o.Key != "extends" {
			continue
		}
		for _, e := range strings.Fields(o.Value) {
			if isURL(e) || strings.Contains(e, "${") || strings.Contains(e, "{{") {
				continue // reported by ConvertFile (url-extends, templated-extends)
			}
			target := e
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(f.path), e)
			}
			if st, err := os.Stat(target); err != nil || st.IsDir() {
				rl.reach = append(rl.reach, reach(filepath.Dir(f.abs), e))
				f.warnings = append(f.warnings, Warning{Pos: o.Pos, Kind: WarnMissingExtends,
					Msg: fmt.Sprintf("extends %s: %s does not exist; it is not converted, and the converted profile loads only once %s is there", e, target, HCLName(target))})
				continue
			}
			rl.reach = append(rl.reach, reach(filepath.Dir(f.abs), e))
			rl.visit(target, f)
			if abs, err := filepath.Abs(target); err == nil && rl.files[abs] != nil {
				f.extends = append(f.extends, rl.files[abs])
			}
		}
	}
	rl.merge = append(rl.merge, f)
}

// softwareMeta is the software block of a release's root profile.
func softwareMeta(abs string) *SoftwareMeta {
	dir := filepath.Dir(abs)
	return &SoftwareMeta{Name: filepath.Base(dir), Version: gitVersion(dir)}
}

// gitVersion is the tag of the commit checked out around dir, else the
// commit (12 hex digits), else DefaultVersion. The repository's files are
// read, git is not run.
func gitVersion(dir string) string {
	gitDir := ""
	for d := dir; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			gitDir = filepath.Join(d, ".git")
			if !st.IsDir() {
				// A worktree: ".git" says "gitdir: PATH".
				b, err := os.ReadFile(gitDir)
				p, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
				if err != nil || !ok {
					return DefaultVersion
				}
				if !filepath.IsAbs(p) {
					p = filepath.Join(d, p)
				}
				gitDir = p
			}
			break
		}
		if d == filepath.Dir(d) {
			return DefaultVersion
		}
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		common = filepath.Join(gitDir, strings.TrimSpace(string(b)))
	}
	head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return DefaultVersion
	}
	refs := packedRefs(common)
	commit := strings.TrimSpace(string(head))
	if ref, ok := strings.CutPrefix(commit, "ref: "); ok {
		commit = ""
		if b, err := os.ReadFile(filepath.Join(common, ref)); err == nil {
			commit = strings.TrimSpace(string(b))
		} else if h, ok := refs[ref]; ok {
			commit = h
		}
	}
	if len(commit) < 12 {
		return DefaultVersion
	}
	var tags []string
	for ref, h := range refs {
		if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok && h == commit {
			tags = append(tags, t)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(common, "refs", "tags")); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(common, "refs", "tags", e.Name())); err == nil && strings.TrimSpace(string(b)) == commit {
				tags = append(tags, e.Name())
			}
		}
	}
	if len(tags) > 0 {
		sort.Strings(tags)
		return tags[len(tags)-1]
	}
	return commit[:12]
}

// packedRefs reads .git/packed-refs: ref → commit (an annotated tag maps to
// the commit it peels to).
func packedRefs(gitDir string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(filepath.Join(gitDir, "packed-refs"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "^"):
			if last != "" {
				out[last] = line[1:]
			}
		default:
			h, ref, ok := strings.Cut(line, " ")
			if ok {
				out[ref] = h
				last = ref
			}
		}
	}
	return out
}

func deepestCommon(dirs []string) string {
	common := ""
	for _, d := range dirs {
		if common == "" {
			common = d
			continue
		}
		for common != "/" && d != common && !strings.HasPrefix(d, common+string(filepath.Separator)) {
			common = filepath.Dir(common)
		}
	}
	return common
}

// baseMark stands for ${:_profile_base_location_} of a section while the
// values that read files are expanded.
const baseMark = "\x00"

var assetPath = regexp.MustCompile("\x00([^\x00]*)\x00/([^\\s#\"':]+)")

// assets finds the files the profiles read through SlapOS's
// ${:_profile_base_location_}/PATH (templates, patches, hooks, schemas):
// references in PATH are expanded with the options of the section (or of
// each section using it as a <= macro). The file is looked for in the
// directory of the last file defining the section (docs/convert.md §2) and
// in that of the file writing the option.
func (rl *releaseLoader) assets() ([]string, []Warning) {
	union := map[string]map[string]string{}
	defDir := map[string]string{}
	for _, f := range rl.merge {
		for name, opts := range f.sections {
			if union[name] == nil {
				union[name] = map[string]string{}
			}
			defDir[name] = filepath.Dir(f.abs)
			for _, o := range opts {
				if o.Op == OpSet {
					union[name][o.Name] = o.Value
				}
			}
		}
	}
	users := map[string][]string{} // macro -> sections using it
	for name, opts := range union {
		for _, m := range macroNames(opts["<"]) {
			users[m] = append(users[m], name)
		}
	}
	var effective func(sec, opt string, depth int) (string, bool)
	effective = func(sec, opt string, depth int) (string, bool) {
		if v, ok := union[sec][opt]; ok {
			return v, true
		}
		ms := macroNames(union[sec]["<"])
		for i := len(ms) - 1; i >= 0 && depth < 8; i-- {
			if v, ok := effective(ms[i], opt, depth+1); ok {
				return v, true
			}
		}
		return "", false
	}
	var expand func(v, user string, depth int) string
	expand = func(v, user string, depth int) string {
		return refSplit.ReplaceAllStringFunc(v, func(ref string) string {
			sec, opt, err := CheckRef(ref)
			if err != nil {
				return ref
			}
			if sec == "" {
				sec = user
			}
			if opt == ProfileBaseOption {
				return baseMark + sec + baseMark
			}
			val, ok := effective(sec, opt, 0)
			if !ok {
				if opt == "_buildout_section_name_" {
					return sec
				}
				return ref
			}
			if depth > 8 {
				return ref
			}
			return expand(val, sec, depth+1)
		})
	}
	found := map[string]bool{}
	var warns []Warning
	for _, f := range rl.order {
		for name, opts := range f.sections {
			var using []string
			var collect func(s string, depth int)
			seen := map[string]bool{}
			collect = func(s string, depth int) {
				if seen[s] || depth > 8 {
					return
				}
				seen[s] = true
				using = append(using, s)
				for _, u := range users[s] {
					collect(u, depth+1)
				}
			}
			collect(name, 0)
			for _, o := range opts {
				if !strings.Contains(o.Value, ProfileBaseOption) {
					continue
				}
				missing := map[string]bool{}
				for _, u := range using {
					for _, m := range assetPath.FindAllStringSubmatch(expand(o.Value, u, 0), -1) {
						sec, rel := m[1], m[2]
						if strings.Contains(rel, "${") {
							continue
						}
						var ok bool
						for _, dir := range []string{defDir[sec], filepath.Dir(f.abs)} {
							rl.reach = append(rl.reach, reach(dir, rel))
							p := filepath.Clean(filepath.Join(dir, rel))
							if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
								found[p], ok = true, true
							}
						}
						if !ok {
							missing[rel] = true
						}
					}
				}
				for _, rel := range sortedKeys(missing) {
					warns = append(warns, Warning{Pos: o.Pos, Kind: WarnMissingFile,
						Msg: fmt.Sprintf("[%s] %s reads %s, which is not beside the profile: not copied (the part fails when it reads it)", name, o.Key, rel)})
				}
			}
		}
	}
	return sortedKeys(found), warns
}
