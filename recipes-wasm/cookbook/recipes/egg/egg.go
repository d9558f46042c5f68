// Package egg holds the cookbook's Python package recipes, zc.recipe.egg's
// entry points: egg (:default, :scripts, :eggs: install distributions and
// write their console scripts), egg-custom (:custom: build one
// distribution with custom build options) and egg-develop (:develop: build
// a local source tree). They run the host's python3 and its pip through the
// exec host function (allow_exec = ["python3"]).
//
// Where buildout keeps one shared eggs directory and writes scripts whose
// sys.path lists exactly the eggs they need, an egg part installs its
// distributions and their dependencies with `pip install --target` into its
// location and writes the scripts into bin-directory with that location on
// sys.path. egg-custom and egg-develop build wheels into eggs-directory
// (buildout's eggs directory), which every egg part reads as a find-links
// directory, so later parts install the custom builds. With offline (or
// find-links only), nothing is fetched from an index: a missing egg is
// reported with its name and version.
package egg

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Grant says how to grant what the egg recipes need.
const Grant = `the egg recipes run the host's python3 and pip: grant it with allow_exec = ["python3"] in the cookbook's module block`

const commonSchema = `
	"find-links":{"type":["string","array"],"items":{"type":"string"},"description":"directories or URLs where pip looks for distributions (pip --find-links)"},
	"index":{"type":"string","description":"package index URL (pip --index-url); empty means none"},
	"offline":{"type":["boolean","string"],"description":"use find-links and eggs-directory only, never an index"},
	"versions":{"type":["object","string"],"description":"version pins (buildout's [versions]): an object NAME = VERSION or NAME = VERSION lines"},
	"python":{"type":"string","description":"the Python command (default python3, which must be granted); a path (zc.recipe.egg's python = SECTION: its executable) runs through sh, and the host's python3 is used, with a warning, when it does not exist"},
	"eggs-directory":{"type":"string","description":"where egg-custom and egg-develop put the wheels they build, read as a find-links directory (default DIR/eggs)"},
	"environment":{"type":["string","object"],"description":"NAME=VALUE lines or an object, added to the environment of pip (%(NAME)s is the inherited variable)"},
	"build-isolation":{"type":["boolean","string"],"description":"let pip build source distributions in an isolated environment (default: true unless offline)"},
	"timeout":{"type":["number","string"],"description":"per pip run (default 1h)"},`

// Register adds the egg recipes to g.
func Register(g *recipe.Registry) {
	g.Register("egg", recipe.Recipe{
		Description: "Install Python distributions with pip and write their console scripts (zc.recipe.egg).",
		Schema: `{"type":"object","properties":{` + commonSchema + `
			"eggs":{"type":["string","array"],"items":{"type":"string"},"description":"requirements, one a line (default: the part name)"},
			"egg":{"type":"string","description":"one more requirement"},
			"scripts":{"type":["string","array"],"items":{"type":"string"},"description":"console scripts to write, NAME or NAME=ALIAS; absent: all of the listed eggs'; empty: none"},
			"entry-points":{"type":["string","array"],"items":{"type":"string"},"description":"more scripts, NAME=MODULE:ATTR"},
			"dependent-scripts":{"type":["boolean","string"],"description":"also write the scripts of the dependencies"},
			"interpreter":{"type":"string","description":"name of a Python interpreter script with the eggs on its path"},
			"initialization":{"type":"string","description":"Python code run at the start of every script"},
			"arguments":{"type":"string","description":"the arguments the entry point is called with (Python)"},
			"extra-paths":{"type":["string","array"],"items":{"type":"string"},"description":"more directories on the scripts' sys.path"},
			"location":{"type":"string","description":"where the distributions are installed (default DIR/parts/PART)"},
			"bin-directory":{"type":"string","description":"where scripts are written (default DIR/bin)"}
		}}`,
		Outputs: []string{"location", "bin-directory", "scripts", "python-path", "python"},
		Install: install,
	})
	g.Register("egg-custom", recipe.Recipe{
		Description: "Build one Python distribution with custom build options into the eggs directory (zc.recipe.egg:custom).",
		Schema: `{"type":"object","properties":{` + commonSchema + `
			"egg":{"type":"string","description":"the requirement to build (default: the part name)"},
			"eggs":{"type":"string","description":"deprecated alias of egg"},
			"include-dirs":{"type":["string","array"],"items":{"type":"string"}},
			"library-dirs":{"type":["string","array"],"items":{"type":"string"}},
			"rpath":{"type":["string","array"],"items":{"type":"string"}},
			"define":{"type":"string","description":"NAME or NAME=VALUE macros, comma-separated"},
			"undef":{"type":"string"},
			"libraries":{"type":"string"},
			"setup-eggs":{"type":["string","array"],"items":{"type":"string"},"description":"distributions the build needs (installed for it only)"},
			"patches":{"type":["string","array"],"items":{"type":"string"},"description":"patches applied to the source before the build: FILE#MD5SUM"},
			"patch-options":{"type":"string","description":"default -p0"},
			"patch-binary":{"type":"string","description":"default patch"}
		}}`,
		Outputs: []string{"wheel", "eggs-directory"},
		Install: custom,
	})
	g.Register("egg-develop", recipe.Recipe{
		Description: "Build a local Python source tree into the eggs directory (zc.recipe.egg:develop).",
		Schema: `{"type":"object","required":["setup"],"properties":{` + commonSchema + `
			"setup":{"type":"string","description":"the source directory (or its setup.py)"},
			"include-dirs":{"type":["string","array"],"items":{"type":"string"}},
			"library-dirs":{"type":["string","array"],"items":{"type":"string"}},
			"rpath":{"type":["string","array"],"items":{"type":"string"}},
			"setup-eggs":{"type":["string","array"],"items":{"type":"string"}}
		}}`,
		Outputs: []string{"wheel", "eggs-directory"},
		Install: develop,
	})
}

// pip runs the host's Python and its pip for one part.
type pip struct {
	ctx      recipe.Context
	python   []string
	env      map[string]string
	timeout  time.Duration
	findDirs []string // find-links, eggs-directory first
	index    string
	offline  bool
	isolated bool
	eggsDir  string
	msgs     []string
}

func newPip(ctx recipe.Context, opts recipe.Options) (*pip, error) {
	py, err := opts.StringOr("python", "python3")
	if err != nil {
		return nil, err
	}
	py = strings.TrimSpace(py)
	if py == "" {
		py = "python3"
	}
	argv := []string{py}
	if strings.Contains(py, "/") {
		argv = []string{"sh", "-c", `exec "$0" "$@"`, py}
		// zc.recipe.egg's python = SECTION names the Python of a
		// section (${SECTION:executable}): the release builds it, or it
		// is the host's. When it is not on this host, the host's python3
		// installs the eggs, and the part says so.
		r, err := ctx.Exec([]string{"sh", "-c", `test -x "$0"`, py}, "", nil, time.Minute)
		switch {
		case err != nil && strings.Contains(err.Error(), "not granted"):
			return nil, fmt.Errorf("%w (python %s is a path: the egg recipes run it through sh, which must be granted with allow_exec = [\"sh\"])", err, py)
		case err != nil:
			return nil, err
		case r.ExitCode != 0:
			ctx.LogLevel(recipe.Warn, "python %s is not an executable on this host: the eggs are installed with the host's python3 instead", py)
			py, argv = "python3", []string{"python3"}
		}
	}
	env, err := fsx.Env(opts, "environment")
	if err != nil {
		return nil, err
	}
	timeout, err := fsx.Duration(opts, "timeout", time.Hour)
	if err != nil {
		return nil, err
	}
	eggsDir := filepath.Join(ctx.Dir(), "eggs")
	if d, _ := opts.StringOr("eggs-directory", ""); d != "" {
		eggsDir = fsx.Resolve(ctx, d)
	}
	p := &pip{ctx: ctx, python: argv, timeout: timeout, eggsDir: eggsDir, env: map[string]string{
		"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_CONFIG_FILE": "/dev/null", "PIP_NO_WARN_SCRIPT_LOCATION": "1",
	}}
	for k, v := range env {
		p.env[k] = v
	}
	links, err := opts.StringList("find-links")
	if err != nil {
		return nil, err
	}
	var fl []string
	for _, l := range links {
		fl = append(fl, strings.Fields(l)...)
	}
	p.findDirs = append([]string{eggsDir}, fl...)
	for i, l := range p.findDirs {
		if !strings.Contains(l, "://") {
			p.findDirs[i] = fsx.ResolveProfile(ctx, l)
		}
	}
	p.offline, err = opts.Bool("offline", false)
	if err != nil {
		return nil, err
	}
	if opts.Has("index") {
		p.index, _ = opts.StringOr("index", "")
		if strings.TrimSpace(p.index) == "" {
			p.offline = true
		}
	}
	p.isolated, err = opts.Bool("build-isolation", !p.offline)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// sources are pip's options saying where distributions come from.
func (p *pip) sources() []string {
	var args []string
	for _, d := range p.findDirs {
		if !strings.Contains(d, "://") {
			if _, err := os.Stat(d); err != nil {
				continue
			}
		}
		args = append(args, "--find-links", d)
	}
	if p.offline {
		args = append(args, "--no-index")
	} else if p.index != "" {
		args = append(args, "--index-url", p.index)
	}
	if !p.isolated {
		args = append(args, "--no-build-isolation")
	}
	return args
}

// envTrampoline sets the environment given as JSON in argv[1], then runs
// the command of argv[2:] in place of itself.
const envTrampoline = "import json, os, sys; os.environ.update(json.loads(sys.argv[1])); os.execvp(sys.argv[2], sys.argv[2:])"

// run runs `python -m pip ARGS` in dir; failures name the missing
// distribution when pip could not find one.
func (p *pip) run(dir string, args ...string) (string, error) {
	// The host passes no PIP_* or PYTHONPATH without an allow_env grant
	// (docs/wasm-abi.md §6); the granted python3, which may set anything,
	// sets them itself before it runs pip.
	env, _ := json.Marshal(p.env)
	argv := append(append(append([]string{}, p.python...), "-c", envTrampoline, string(env)), p.python...)
	argv = append(append(argv, "-m", "pip"), args...)
	p.ctx.Log("running pip %s", strings.Join(args, " "))
	r, err := p.ctx.Exec(argv, dir, nil, p.timeout)
	if err != nil {
		if strings.Contains(err.Error(), "not granted") {
			return "", fmt.Errorf("%w (%s)", err, Grant)
		}
		return "", err
	}
	if r.ExitCode != 0 {
		return r.Output, p.explain(r.Output, r.ExitCode)
	}
	p.msgs = append(p.msgs, "pip "+args[0])
	return r.Output, nil
}

// after returns the first whitespace-separated word after marker in s.
func after(s, marker string) (string, bool) {
	i := strings.Index(s, marker)
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+len(marker):])
	if len(f) == 0 {
		return "", false
	}
	return f[0], true
}

// explain turns pip's failure into an error that says what is missing and
// where it was looked for.
func (p *pip) explain(output string, code int) error {
	where := strings.Join(p.findDirs, ", ")
	req, missing := after(output, "No matching distribution found for ")
	switch {
	case strings.Contains(output, "No module named pip"):
		return fmt.Errorf("the host's %s has no pip: install it (e.g. apt-get install python3-pip)", p.python[len(p.python)-1])
	case missing:
		seen := ""
		if _, v, ok := strings.Cut(output, "(from versions: "); ok {
			if v, _, ok = strings.Cut(v, ")"); ok && strings.TrimSpace(v) != "none" {
				seen = "; versions found: " + v
			}
		}
		if p.offline {
			return fmt.Errorf("egg %s is missing: not in the find-links directories (%s)%s. Offline, every egg must be there: put its sdist or wheel in one of them", req, where, seen)
		}
		return fmt.Errorf("egg %s is missing: found neither in find-links (%s) nor on the index%s", req, where, seen)
	}
	if strings.Contains(output, "ResolutionImpossible") {
		// With version pins, pip words a missing distribution as a
		// conflict with the pin.
		var pinned []string
		for _, l := range strings.Split(output, "\n") {
			if _, c, ok := strings.Cut(l, "The user requested (constraint) "); ok {
				pinned = append(pinned, strings.TrimSpace(c))
			}
		}
		if len(pinned) > 0 {
			return fmt.Errorf("no distribution satisfies the pinned egg %s: missing from find-links (%s)%s, or another egg requires another version", strings.Join(pinned, ", "), where, map[bool]string{true: " (offline)", false: " and the index"}[p.offline])
		}
	}
	var errs []string
	for _, l := range strings.Split(output, "\n") {
		if strings.HasPrefix(l, "ERROR: ") {
			errs = append(errs, l)
		}
	}
	msg := strings.Join(errs, "\n")
	if msg == "" {
		msg = tail(output, 4096)
	}
	return fmt.Errorf("pip exited with status %d:\n%s", code, msg)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// constraints writes the version pins as a pip constraints file, but for
// the eggs asked for by name (pinned in the requirement itself, so that a
// missing one is reported as missing); "" when there are none.
func constraints(ctx recipe.Context, opts recipe.Options, name string, direct ...string) (string, error) {
	pins, err := versions(opts)
	if err != nil || len(pins) == 0 {
		return "", err
	}
	skip := map[string]bool{}
	for _, r := range direct {
		skip[reqName(r)] = true
	}
	var b strings.Builder
	for _, n := range fsx.SortedKeys(pins) {
		if skip[normalize(n)] {
			continue
		}
		fmt.Fprintf(&b, "%s==%s\n", n, pins[n])
	}
	path := filepath.Join(ctx.Dir(), ".slapnode-egg-"+name+"-constraints.txt")
	return path, fsx.WriteFile(ctx, path, []byte(b.String()), 0o644)
}

// isDistName reports whether s is a distribution name (PEP 508).
func isDistName(s string) bool {
	if s == "" || !isAlnum(rune(s[0])) {
		return false
	}
	for _, c := range s {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// versions reads the versions option: an object, or NAME = VERSION lines.
// Names that are not distribution names (buildout's own options) and empty
// versions are skipped.
func versions(opts recipe.Options) (map[string]string, error) {
	v, ok := opts["versions"]
	if !ok || v == nil {
		return nil, nil
	}
	pins := map[string]string{}
	add := func(name, version string) {
		name, version = strings.TrimSpace(name), strings.TrimSpace(version)
		// SlapOS's buildout reads NAME = VERSION:whl as "a wheel of
		// VERSION", and pins its patched eggs as VERSION+slapospatchedNNN:
		// pip knows neither; the custom builds keep the plain version.
		version, _, _ = strings.Cut(version, ":")
		if base, local, ok := strings.Cut(version, "+"); ok && strings.HasPrefix(strings.ToLower(local), "slapospatched") {
			version = base
		}
		if isDistName(name) && version != "" && !strings.ContainsAny(version, " \t<>=!~;") {
			pins[name] = version
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				add(k, s)
			}
		}
	case string:
		for _, line := range recipe.Lines(x) {
			k, val, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("option \"versions\": line %q is not NAME = VERSION", line)
			}
			add(k, val)
		}
	default:
		return nil, fmt.Errorf("option \"versions\" must be an object or NAME = VERSION lines, not %s", recipe.TypeName(v))
	}
	return pins, nil
}

// pythonExecutable asks the host's Python for its path (the scripts'
// #! line).
func (p *pip) pythonExecutable(dir string) (string, error) {
	argv := append(append([]string{}, p.python...), "-c", "import sys; print(sys.executable)")
	r, err := p.ctx.Run(argv, dir, nil, time.Minute)
	if err != nil {
		if strings.Contains(err.Error(), "not granted") {
			return "", fmt.Errorf("%w (%s)", err, Grant)
		}
		return "", err
	}
	lines := recipe.Lines(r.Output)
	if len(lines) == 0 || !filepath.IsAbs(lines[len(lines)-1]) {
		return "", fmt.Errorf("%s did not print its path: %q", strings.Join(p.python, " "), r.Output)
	}
	return lines[len(lines)-1], nil
}

// reqName is a requirement's distribution name, normalised (PEP 503).
func reqName(req string) string {
	req = strings.TrimSpace(req)
	end := len(req)
	for i, c := range req {
		if !(c == '-' || c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			end = i
			break
		}
	}
	return normalize(req[:end])
}

// normalize is PEP 503's normalised name: lower case, runs of -_. as -.
func normalize(name string) string {
	var b strings.Builder
	sep := false
	for _, c := range strings.ToLower(name) {
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(c)
	}
	return b.String()
}

// dist is an installed distribution of a target directory.
type dist struct {
	name    string // normalised
	scripts []entryPoint
}

type entryPoint struct {
	name, module, attrs string
}

// installedDists reads the *.dist-info directories of dir: names and
// console/gui scripts.
func installedDists(dir string) ([]dist, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []dist
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".dist-info") {
			continue
		}
		info := filepath.Join(dir, e.Name())
		d := dist{name: metadataName(filepath.Join(info, "METADATA"))}
		if d.name == "" {
			d.name = normalize(strings.SplitN(strings.TrimSuffix(e.Name(), ".dist-info"), "-", 2)[0])
		}
		eps, err := readEntryPoints(filepath.Join(info, "entry_points.txt"))
		if err != nil {
			return nil, err
		}
		d.scripts = eps
		out = append(out, d)
	}
	return out, nil
}

func metadataName(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Name:"); ok {
			return normalize(strings.TrimSpace(v))
		}
	}
	return ""
}

// readEntryPoints reads the [console_scripts] and [gui_scripts] of an
// entry_points.txt (an INI file: NAME = MODULE:ATTR [EXTRAS]).
func readEntryPoints(path string) ([]entryPoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []entryPoint
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.Trim(line, "[] ")
			continue
		}
		if section != "console_scripts" && section != "gui_scripts" {
			continue
		}
		if ep, ok := parseEntryPoint(line); ok {
			out = append(out, ep)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// parseEntryPoint reads NAME = MODULE:ATTR[.ATTR] [EXTRAS].
func parseEntryPoint(s string) (entryPoint, bool) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok {
		return entryPoint{}, false
	}
	ref = strings.TrimSpace(ref)
	if i := strings.IndexByte(ref, '['); i >= 0 {
		ref = strings.TrimSpace(ref[:i])
	}
	mod, attrs, ok := strings.Cut(ref, ":")
	name, mod, attrs = strings.TrimSpace(name), strings.TrimSpace(mod), strings.TrimSpace(attrs)
	if !ok || name == "" || !dotted(mod) || !dotted(attrs) {
		return entryPoint{}, false
	}
	return entryPoint{name, mod, attrs}, true
}

// dotted reports whether s is a dotted Python name (a.b.c).
func dotted(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" || part[0] >= '0' && part[0] <= '9' {
			return false
		}
		for _, c := range part {
			if !isAlnum(c) && c != '_' {
				return false
			}
		}
	}
	return true
}
