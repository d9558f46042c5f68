package buildout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// The jinja2 templates of the public SlapOS corpus, rendered by the real
// cookbook (runtime/builtin, through wasmhost) with the context their
// software profile gives them, the way slapos.recipe.template:jinja2
// builds it. The corpus holds about a third of SlapOS's profiles (its
// README): closures often miss files, and the templates a profile names
// are often not in it. So each template ends in one of these outcomes:
// rendered; not renderable here (the template, or a value its context
// needs, lives in a file the public corpus lacks — said with the file);
// or an engine failure, with the template's file:line and the construct.
// Only engine failures fail the test.

// jinjaRender is one jinja2 part of a software profile.
type jinjaRender struct {
	profile, part string
	template      string // corpus-relative path of the template
	outcome       string // "rendered", "absent: …", "engine: …"
}

func TestCorpusJinja2Render(t *testing.T) {
	corpus := corpusDir(t)
	wasm, err := builtin.Module("cookbook")
	if err != nil {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := context.Background()
	tmp := t.TempDir()
	h, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: filepath.Join(os.TempDir(), "slapnode-test-wazero-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	mod, err := h.Load(ctx, "cookbook", wasm, wasmhost.Grants{Trusted: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	sess := h.NewSession(wasmhost.SessionConfig{Mounts: []wasmhost.Mount{{HostPath: corpus, ReadOnly: true}, {HostPath: out}}, ProfileDir: corpus})
	defer sess.Close(ctx)
	overlay := mirrorCorpus(t, corpus, filepath.Join(tmp, "overlay"))

	var renders []jinjaRender
	// outputs maps where the software would write each rendered file to
	// where the test rendered it: an instance profile extends the others.
	outputs := map[string]string{}
	var check [][2]string
	for _, rel := range softwareProfiles(t, corpus) {
		cfg, missing := loadTolerant(t, overlay, rel)
		if cfg == nil {
			continue
		}
		addRecipeDefaults(cfg)
		l := &lenient{cfg: cfg, res: cfg.Resolve()}
		sources := downloadSources(l)
		for _, name := range sortedKeys(cfg.Sections) {
			if !isJinjaSection(cfg, name) {
				continue
			}
			jr := jinjaRender{profile: rel, part: name}
			jr.template, jr.outcome = renderPart(ctx, sess, mod, corpus, overlay, out, name, l, sources, missing)
			renders = append(renders, jr)
			if strings.HasPrefix(jr.outcome, "rendered: ") {
				o, ok := l.option(name, "output")
				if !ok {
					o, _ = l.option(name, "rendered")
				}
				rendered := filepath.Join(out, rel, name+".out")
				if err := os.MkdirAll(filepath.Dir(rendered), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(filepath.Join(out, name+".out"), rendered); err != nil {
					t.Fatal(err)
				}
				outputs[o] = rendered
				check = append(check, [2]string{rendered, rel + " [" + name + "]"})
			}
		}
	}
	report(t, corpus, renders, func(rel string) string { return probe(ctx, sess, mod, corpus, out, rel) })
	var instances []string
	for _, c := range check {
		instances = append(instances, instanceOutcome(t, c[0], c[1], outputs))
	}
	byKind := map[string]int{}
	for _, o := range instances {
		kind, _, _ := strings.Cut(o, ": ")
		byKind[kind]++
		if kind != "converted" {
			t.Logf("  instance path: %s", o)
		}
	}
	t.Logf("rendered templates through the in-memory instance path (ConvertInstance, load, graph): %d converted, %d not instance profiles / %d", byKind["converted"], byKind["not an instance profile"], len(instances))
	if byKind["converted"] == 0 {
		t.Error("no rendered template went through the instance path")
	}
}

// instanceOutcome runs a rendered template through what the node does
// with a rendered instance profile before applying it: load it (with
// slapgrid's tail), convert it (ConvertInstance), load and graph the HCL.
// A failure of these steps is the converter's (t.Errorf); a template
// rendering something else (a configuration file) or extending a profile
// rendered elsewhere is said.
func instanceOutcome(t *testing.T, file, what string, outputs map[string]string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return "error: " + err.Error()
	}
	f, err := Parse(file, src)
	if err != nil || !isInstanceProfile(f) {
		return "not an instance profile: " + what
	}
	path := filepath.Join(filepath.Dir(file), "instance-of-"+filepath.Base(file)+".cfg")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	// The files it extends: rendered by the software profile (read where
	// the test rendered them), else empty stand-ins (a file the public
	// corpus lacks).
	var standins []string
	read := func(p string) ([]byte, error) {
		if r, ok := outputs[p]; ok {
			return os.ReadFile(r)
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			standins = append(standins, p)
			return nil, nil
		}
		return b, err
	}
	cfg, err := Load(path, LoadOptions{Directory: "/srv/slapgrid/slappart0", ReadFile: read})
	if err != nil {
		t.Errorf("%s: the rendered instance profile does not load: %v", what, err)
		return "error: " + err.Error()
	}
	if len(standins) > 0 {
		what += fmt.Sprintf(" (%d extended file(s) stood in by empty ones: %s)", len(standins), strings.Join(standins, " "))
	}
	res, err := ConvertInstance(cfg, ConvertOptions{})
	if err != nil {
		t.Errorf("%s: ConvertInstance: %v", what, err)
		return "error: " + err.Error()
	}
	p, diags := profile.LoadSource(path+" (converted)", res.HCL, profile.Instance)
	if diags.HasErrors() {
		if len(diags) == 1 && diags[0].Summary == "Unknown part in parts" {
			// A base the instance profiles extend (stack/slapos.cfg's
			// instance-common lists the switch-softwaretype they define):
			// buildout fails the same way on it alone.
			return "converted: " + what + " (a base profile: " + diags[0].Detail + ")"
		}
		t.Errorf("%s: the converted instance profile does not load: %v", what, p.Err(diags))
		return "error: load"
	}
	if _, err := NodeSections(p); err != nil {
		t.Errorf("%s: %v", what, err)
		return "error: " + err.Error()
	}
	if _, diags := p.Graph(nil); diags.HasErrors() {
		for _, d := range diags {
			if d.Severity == hcl.DiagError && !acceptedLoadErrors[d.Summary] && d.Summary != "Reference to undeclared part" {
				t.Errorf("%s: the converted instance profile does not plan: %v", what, p.Err(diags))
				return "error: graph"
			}
		}
		return "converted: " + what + " (with sections buildout fails on too: " + diags[0].Detail + ")"
	}
	return "converted: " + what
}

// isInstanceProfile says whether a rendered file is a buildout profile (a
// [buildout] section, or a section with a recipe), not a configuration
// file a template rendered.
func isInstanceProfile(f *File) bool {
	for _, b := range f.Blocks {
		if b.Name == "buildout" {
			return true
		}
		for _, o := range b.Options {
			if o.Key == "recipe" {
				return true
			}
		}
	}
	return false
}

// report logs the counts and the outcomes, and fails on engine failures.
func report(t *testing.T, corpus string, renders []jinjaRender, probeFn func(rel string) string) {
	rendered := map[string]bool{}
	byOutcome := map[string][]string{}
	engine := 0
	for _, r := range renders {
		what := r.profile + " [" + r.part + "]"
		if r.template != "" {
			what += " " + r.template
		}
		kind, detail, _ := strings.Cut(r.outcome, ": ")
		switch kind {
		case "rendered":
			rendered[r.template] = true
			t.Logf("  rendered: %s: %s", what, detail)
		case "engine":
			engine++
			t.Errorf("%s: %s", what, detail)
		}
		byOutcome[kind] = append(byOutcome[kind], what+": "+detail)
	}
	t.Logf("jinja2 parts of the corpus's software profiles: %d rendered / %d", len(byOutcome["rendered"]), len(renders))
	for _, k := range sortedKeys(byOutcome) {
		if k == "rendered" {
			continue
		}
		for _, line := range byOutcome[k] {
			t.Logf("  %s: %s", k, line)
		}
	}
	// The corpus's jinja2 template files (MANIFEST class jinja-template):
	// which were rendered, and by whom the others are.
	total, done, probed := 0, 0, 0
	for _, row := range readManifest(t, corpus) {
		if row.Class != "jinja-template" {
			continue
		}
		total++
		if rendered[row.Path] {
			done++
			continue
		}
		outcome := probeFn(row.Path)
		if strings.HasPrefix(outcome, "engine: ") {
			engine++
			t.Errorf("%s: %s", row.Path, outcome)
			continue
		}
		probed++
		t.Logf("  not rendered with its profile's context: %s (%s); %s", row.Path, whoRenders(corpus, row.Path), outcome)
	}
	t.Logf("jinja2 template files of the corpus: %d rendered with their software profile's context, %d probed with stand-ins, %d engine failures / %d", done, probed, total-done-probed, total)
	if engine == 0 && len(byOutcome["rendered"]) == 0 {
		t.Errorf("no template rendered: the corpus test renders nothing")
	}
}

// mirrorCorpus makes a tree of symbolic links to the corpus's files, where
// loadTolerant may add the empty files a closure lacks.
func mirrorCorpus(t *testing.T, corpus, dir string) string {
	err := filepath.WalkDir(corpus, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(corpus, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		return os.Symlink(p, filepath.Join(dir, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// softwareProfiles lists the corpus's software-side buildout profiles with
// a jinja2 part (instance profiles render theirs at instantiation).
func softwareProfiles(t *testing.T, corpus string) []string {
	var out []string
	for _, row := range readManifest(t, corpus) {
		base := filepath.Base(row.Path)
		if !isBuildoutClass(row.Class) || !strings.HasSuffix(base, ".cfg") || strings.HasPrefix(base, "instance") || strings.HasPrefix(base, "template") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(corpus, row.Path))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "slapos.recipe.template:jinja2") {
			out = append(out, row.Path)
		}
	}
	return out
}

// loadTolerant loads rel from the overlay; each file of the closure the
// corpus lacks is added empty (and listed), as if it defined nothing.
func loadTolerant(t *testing.T, overlay, rel string) (*Config, []string) {
	var missing []string
	for range 64 {
		cfg, err := Load(filepath.Join(overlay, rel), LoadOptions{Directory: "/srv/slapgrid/software", Executable: "/usr/bin/python3"})
		var pe *fs.PathError
		if err == nil {
			return cfg, missing
		}
		if !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(pe.Path, overlay) {
			t.Logf("%s: not loadable: %v", rel, err)
			return nil, nil
		}
		m, _ := filepath.Rel(overlay, pe.Path)
		missing = append(missing, m)
		if err := os.MkdirAll(filepath.Dir(pe.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pe.Path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: more than 64 missing files", rel)
	return nil, nil
}

// addRecipeDefaults gives the options recipes set when buildout
// initialises them their default values: location for every part, and
// target/destination for slapos.recipe.build:download.
func addRecipeDefaults(cfg *Config) {
	for name, s := range cfg.Sections {
		r := s["recipe"]
		if r == nil {
			continue
		}
		dir := "${buildout:parts-directory}/" + name
		set := func(k, v string) {
			if s[k] == nil {
				s[k] = &Value{Text: v, Source: "COMPUTED_VALUE"}
			}
		}
		set("location", dir)
		if strings.HasPrefix(strings.TrimSpace(r.Text), "slapos.recipe.build:download") {
			set("destination", dir)
			if f := s["filename"]; f != nil {
				set("target", "${:destination}/"+f.Text)
			} else {
				set("target", "${:destination}")
			}
		}
	}
}

// downloadSources maps the target of each download part to its url: a
// template a software profile downloads next to itself is read from the
// corpus where the download would have put it.
func downloadSources(l *lenient) map[string]string {
	m := map[string]string{}
	for name, sec := range l.cfg.Sections {
		if r := sec["recipe"]; r == nil || !strings.HasPrefix(strings.TrimSpace(r.Text), "slapos.recipe.build:download") {
			continue
		}
		u, _ := l.option(name, "url")
		target, _ := l.option(name, "target")
		if u != "" && target != "" && !strings.Contains(u+target, "${") {
			m[target] = u
		}
	}
	return m
}

// lenient reads options as buildout would substitute them, but where a
// value lives in a file the corpus lacks, it keeps the reference text
// "${section:option}" in its place (a stand-in, counted) instead of
// failing the whole section as buildout does.
type lenient struct {
	cfg      *Config
	res      map[string]*ResolvedSection
	standins []string
}

func (l *lenient) option(sec, opt string) (string, bool) {
	return l.get(sec, opt, 0)
}

func (l *lenient) get(sec, opt string, depth int) (string, bool) {
	if r := l.res[sec]; r != nil && r.Err == nil {
		v, ok := r.Options[opt]
		return v, ok
	}
	v := l.cfg.Sections[sec][opt]
	if v == nil || depth > 16 {
		return "", false
	}
	return l.sub(v.Text, sec, depth+1), true
}

func (l *lenient) sub(text, self string, depth int) string {
	pieces := strings.Split(text, "$$")
	for i, piece := range pieces {
		pieces[i] = refSplit.ReplaceAllStringFunc(piece, func(ref string) string {
			sec, opt, err := CheckRef(ref)
			if err != nil {
				return ref
			}
			if sec == "" {
				sec = self
			}
			if v, ok := l.get(sec, opt, depth); ok {
				return v
			}
			l.standins = append(l.standins, "${"+sec+":"+opt+"}")
			return "${" + sec + ":" + opt + "}"
		})
	}
	return strings.Join(pieces, "$$")
}

func isJinjaSection(cfg *Config, name string) bool {
	r := cfg.Sections[name]["recipe"]
	return r != nil && strings.TrimSpace(r.Text) == "slapos.recipe.template:jinja2"
}

// closureHint says an error comes from the files the corpus lacks.
func closureHint(err error, missing []string) string {
	if len(missing) == 0 {
		return err.Error()
	}
	return fmt.Sprintf("%v (the closure lacks %s)", err, strings.Join(missing, ", "))
}

// corpusPath maps a path of the overlay (or a download target) back to the
// corpus: "" when the file is not in the corpus.
func corpusPath(corpus, overlay, p string, sources map[string]string) string {
	if s, ok := sources[p]; ok {
		p = s
	}
	p = strings.TrimPrefix(p, "file://")
	rel, err := filepath.Rel(overlay, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return ""
	}
	full := filepath.Join(corpus, rel)
	if st, err := os.Stat(full); err != nil || st.IsDir() {
		return ""
	}
	return full
}

// renderPart builds the part's context as slapos.recipe.template:jinja2
// does and renders its template with the cookbook's template recipe.
func renderPart(ctx context.Context, sess *wasmhost.Session, mod *wasmhost.Module, corpus, overlay, out, name string, l *lenient, sources map[string]string, missing []string) (string, string) {
	l.standins = nil
	src, _ := l.option(name, "url")
	if src == "" {
		src, _ = l.option(name, "template")
	}
	if strings.HasPrefix(src, "inline:") {
		return "", "absent: an inline template (rendered with its profile)"
	}
	if strings.Contains(src, "${") || src == "" {
		// Its file name is in a file the corpus lacks (buildout.hash.cfg
		// names SlapOS's templates): SlapOS names the section after it.
		base, _ := l.option(name, ProfileBaseOption)
		src = filepath.Join(base, name)
	}
	tpl := corpusPath(corpus, overlay, src, sources)
	origin := src
	if s, ok := sources[src]; ok {
		origin = s
	}
	relTpl, err := filepath.Rel(overlay, strings.TrimPrefix(origin, "file://"))
	if err != nil || strings.HasPrefix(relTpl, "..") {
		relTpl = origin
	}
	if tpl == "" {
		return relTpl, "absent: the template " + relTpl + " is not in the public corpus"
	}
	relTpl, _ = filepath.Rel(corpus, tpl)
	ctxLines, _ := l.option(name, "context")
	vars, modules, err := jinjaContext(ctxLines, name, l)
	if err != nil {
		return relTpl, "absent: context: " + closureHint(err, missing)
	}
	var imports []string
	importList, _ := l.option(name, "import-list")
	for _, line := range strings.Split(importList, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return relTpl, "engine: import-list line " + line
		}
		p := f[2]
		if f[0] == "file" || f[0] == "folder" {
			sec, opt, _ := strings.Cut(p, ":")
			if sec == "" {
				sec = name
			}
			v, ok := l.option(sec, opt)
			if !ok {
				return relTpl, "absent: import-list " + f[1] + ": no ${" + sec + ":" + opt + "}" + closureHint(nil, missing)
			}
			p = v
		}
		cp := corpusPath(corpus, overlay, p, sources)
		if cp == "" {
			return relTpl, "absent: import-list " + f[1] + ": " + p + " is not in the public corpus"
		}
		imports = append(imports, "file "+f[1]+" "+cp)
	}
	exts, _ := l.option(name, "extensions")
	options := map[string]any{"output": filepath.Join(out, name+".out"), "path": tpl, "vars": vars, "modules": modules,
		"import-list": strings.Join(imports, "\n"), "extensions": exts}
	if msg := callTemplate(ctx, sess, mod, out, name, options); msg != "" {
		return relTpl, classify(msg, len(l.standins) > 0)
	}
	if len(l.standins) > 0 {
		return relTpl, fmt.Sprintf("rendered: with %d value(s) the corpus lacks written as their reference (%s)", len(l.standins), strings.Join(uniq(l.standins), " "))
	}
	return relTpl, "rendered: its context complete"
}

// callTemplate runs the cookbook's template recipe: "" or its error.
func callTemplate(ctx context.Context, sess *wasmhost.Session, mod *wasmhost.Module, out, name string, options map[string]any) string {
	in, _ := json.Marshal(map[string]any{"recipe": "template", "part": name, "phase": "install", "options": options,
		"context": map[string]any{"kind": "software", "software": map[string]any{"path": out}, "profile_dir": out, "node": map[string]any{"id": "corpus", "root": out}}})
	raw, err := sess.Call(ctx, mod, "recipe_install", in)
	if err != nil {
		return err.Error()
	}
	var result struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &result); err != nil {
		return "bad output: " + err.Error()
	}
	return result.Error
}

// probe renders a template no software profile of the public corpus
// renders: each name it finds undefined is given a stand-in — a Python
// module for NAME_module, else the string "${NAME}", turned into a dict
// when the template uses it as one (whose missing keys get string
// stand-ins in turn) — until it renders or stops on
// what a stand-in cannot be. Syntax is checked in full: the template is
// parsed before it runs.
var (
	undefinedName = regexp.MustCompile(`"(\w+)" is undefined`)
	usedAsDict    = regexp.MustCompile(`string '\$\{(\w+)\}' has no attribute "(get|items|keys|values|setdefault|update|pop|copy|iteritems)"`)
	missingKey    = regexp.MustCompile(`dict has no (?:attribute or )?key "?'?([-\w.]+)'?"?`)
	usedAsMapping = regexp.MustCompile(`string index must be an integer|\*\* needs a dict, not string|cannot unpack`)
)

// probeModules are names SlapOS profiles bind to Python modules.
var probeModules = map[string]string{"six": "six", "json": "json", "re": "re", "os": "os", "hashlib": "hashlib", "shlex": "shlex", "urllib": "urllib.parse", "urlparse": "urlparse", "urllib_parse": "urllib.parse"}

func probe(ctx context.Context, sess *wasmhost.Session, mod *wasmhost.Module, corpus, out, rel string) string {
	vars := map[string]any{}
	modules := map[string]any{}
	var given []string
	for range 256 {
		msg := callTemplate(ctx, sess, mod, out, "probe", map[string]any{"output": filepath.Join(out, "probe.out"), "path": filepath.Join(corpus, rel), "vars": vars, "modules": modules})
		if msg == "" {
			return fmt.Sprintf("probed: rendered with %d stand-in(s)", len(given))
		}
		if m := undefinedName.FindStringSubmatch(msg); m != nil && vars[m[1]] == nil && modules[m[1]] == nil {
			if mod, ok := probeModules[m[1]]; ok {
				modules[m[1]] = mod
			} else if mod, ok := strings.CutSuffix(m[1], "_module"); ok && mod != "" && !strings.Contains(mod, "_") {
				modules[m[1]] = mod
			} else {
				vars[m[1]] = "${" + m[1] + "}"
			}
			given = append(given, m[1])
			continue
		}
		if m := usedAsDict.FindStringSubmatch(msg); m != nil {
			if _, isStr := vars[m[1]].(string); isStr {
				vars[m[1]] = map[string]any{}
				continue
			}
		}
		if m := missingKey.FindStringSubmatch(msg); m != nil {
			// Which stand-in dict lacks the key is not said: give it to each.
			added := false
			for _, n := range given {
				if d, ok := vars[n].(map[string]any); ok && d[m[1]] == nil {
					d[m[1]] = "${" + n + ":" + m[1] + "}"
					added = true
				}
			}
			if added {
				continue
			}
		}
		if usedAsMapping.MatchString(msg) {
			// The culprit is the last string stand-in given.
			changed := false
			for i := len(given) - 1; i >= 0; i-- {
				if _, isStr := vars[given[i]].(string); isStr {
					vars[given[i]] = map[string]any{}
					changed = true
					break
				}
			}
			if changed {
				continue
			}
		}
		c := classify(msg, true)
		if strings.HasPrefix(c, "engine: ") {
			return c
		}
		_, detail, _ := strings.Cut(c, ": ")
		return fmt.Sprintf("probed: parsed; ran with %d stand-in(s) up to %s", len(given), detail)
	}
	return "probed: more than 256 tries"
}

func uniq(xs []string) []string {
	sort.Strings(xs)
	var out []string
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// classify tells an engine failure from a template that stops on its
// context: a syntax the engine lacks fails whatever the values; with
// stand-ins in the context, a value error is the stand-in's.
var (
	templateErrorAt = regexp.MustCompile(`([^\s:]+:\d+:\d+): (.*)$`)
	syntaxError     = regexp.MustCompile(`unknown tag|unknown filter|unknown test|expected|unexpected|never closed|not supported|outside of a loop`)
)

func classify(msg string, standins bool) string {
	m := templateErrorAt.FindStringSubmatch(msg)
	if m == nil {
		return "engine: " + msg
	}
	switch {
	case strings.Contains(m[2], "AssertionError"):
		return "refused: the template refuses its context at " + m[1] + ": " + m[2]
	case standins && !syntaxError.MatchString(m[2]):
		return "stand-in: " + m[1] + ": " + m[2]
	}
	return "engine: " + m[1] + ": " + m[2]
}

// jinjaContext evaluates slapos.recipe.template:jinja2's context lines
// (key, raw, section, json, jsonkey, import), already substituted by
// buildout, against the profile: the variables as JSON values, and the
// Python modules.
func jinjaContext(lines, self string, l *lenient) (map[string]any, map[string]any, error) {
	vars := map[string]any{}
	modules := map[string]any{}
	for _, line := range strings.Split(lines, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, nil, fmt.Errorf("context line %q: want TYPE NAME EXPRESSION", line)
		}
		kind, name := f[0], f[1]
		expr := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), kind)), name))
		if _, dup := vars[name]; dup {
			return nil, nil, fmt.Errorf("context: %s defined twice", name)
		}
		switch kind {
		case "raw":
			vars[name] = expr
		case "key", "jsonkey":
			sec, opt, ok := strings.Cut(expr, ":")
			if !ok {
				return nil, nil, fmt.Errorf("context %s: %q is not SECTION:OPTION", name, expr)
			}
			if sec == "" {
				sec = self
			}
			v, ok := l.option(sec, opt)
			if !ok {
				if kind == "jsonkey" {
					return nil, nil, fmt.Errorf("context %s: no ${%s:%s}", name, sec, opt)
				}
				v = "${" + sec + ":" + opt + "}"
				l.standins = append(l.standins, v)
			}
			if kind == "key" {
				vars[name] = v
				continue
			}
			var j any
			if err := json.Unmarshal([]byte(v), &j); err != nil {
				return nil, nil, fmt.Errorf("context %s: ${%s:%s} is not JSON: %v", name, sec, opt, err)
			}
			vars[name] = j
		case "json":
			var j any
			if err := json.Unmarshal([]byte(expr), &j); err != nil {
				return nil, nil, fmt.Errorf("context %s: not JSON: %v", name, err)
			}
			vars[name] = j
		case "section":
			sec, ok := l.cfg.Sections[expr]
			if !ok {
				return nil, nil, fmt.Errorf("context %s: no section [%s]", name, expr)
			}
			m := map[string]any{}
			for k := range sec {
				m[k], _ = l.option(expr, k)
			}
			vars[name] = m
		case "import":
			modules[name] = expr
		default:
			return nil, nil, fmt.Errorf("context line %q: unknown type %s", line, kind)
		}
	}
	return vars, modules, nil
}

// whoRenders names the corpus profiles of the template's directory that
// mention it, to say where its context comes from.
func whoRenders(corpus, rel string) string {
	base := filepath.Base(rel)
	dir := filepath.Join(corpus, filepath.Dir(rel))
	entries, _ := os.ReadDir(dir)
	var who []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == base {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && strings.Contains(string(b), base) {
			who = append(who, filepath.Join(filepath.Dir(rel), e.Name()))
		}
	}
	if len(who) == 0 {
		return "rendered by a profile the public corpus lacks"
	}
	return "named by " + strings.Join(who, ", ")
}
