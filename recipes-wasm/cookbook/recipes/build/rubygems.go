package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/archive"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/download"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// rubygems follows SlapOS's rubygemsrecipe: rubygems (the zip at url, or
// version) is installed into the location with `RUBY setup.rb all
// --prefix=LOCATION`, then each gem with `RUBY LOCATION/bin/gem install
// --no-document --bindir=LOCATION/bin [--ignore-dependencies] NAME
// [--version=V] -- GEM-OPTIONS`; in deployment mode every gem must be
// pinned and the versions of its dependencies (`gem dependency -rv`) must
// be among the gems listed, meeting their constraints. Each executable of
// LOCATION/bin gets a launcher in bin-directory exporting the environment
// the gems were installed with. Commands run through the granted sh, which
// starts the ruby executable (a path the release builds, usually).
func registerRubygems(g *recipe.Registry) {
	g.Register("rubygems", recipe.Recipe{
		Description: "Install ruby gems with a rubygems of their own (rubygemsrecipe).",
		Schema: `{"type":"object","required":["gems"],"properties":{` + common + `
			"gems":{"type":["string","array"],"items":{"type":"string"},"description":"gems to install, NAME or NAME==VERSION"},
			"url":{"type":"string","description":"the rubygems zip (https://rubygems.org/rubygems/rubygems-VERSION.zip); its version is read from the name"},
			"version":{"type":"string","description":"rubygems version, instead of url"},
			"sha256":{"type":"string"},"md5sum":{"type":"string"},
			"ruby-executable":{"type":"string","description":"the ruby to install with (default ruby)"},
			"deployment":{"type":["boolean","string"],"description":"every gem pinned, dependencies checked and not installed (default: buildout's allow-picked-versions is false)"},
			"gem-options":{"type":["string","array"],"items":{"type":"string"},"description":"lines passed to gem install after --"},
			"bin-directory":{"type":"string","description":"where launchers are written (default DIR/bin)"}
		}}`,
		Outputs: []string{"location"},
		Install: rubygems,
	})
}

const rubygemsURLBase = "https://rubygems.org/rubygems/rubygems"

func rubygems(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	loc := fsx.PartDir(ctx)
	gems, err := opts.StringList("gems")
	if err != nil {
		return recipe.Result{}, err
	}
	var words []string
	for _, g := range gems {
		words = append(words, strings.Fields(g)...)
	}
	if len(words) == 0 {
		return recipe.Result{}, errors.New("configuration error, 'gems' option is missing")
	}
	u, _ := opts.StringOr("url", "")
	version, _ := opts.StringOr("version", "")
	u, version = strings.TrimSpace(u), strings.TrimSpace(version)
	switch {
	case u != "" && version != "":
		return recipe.Result{}, errors.New("configuration error, 'url' and 'version' options are mutually exclusive")
	case version != "":
		u = rubygemsURLBase + "-" + version + ".zip"
	case u != "":
		version = zipVersion(u)
		if version == "" {
			return recipe.Result{}, fmt.Errorf("can't find the rubygems version in %s (want …-VERSION.zip)", u)
		}
	default:
		return recipe.Result{}, errors.New("set url (https://rubygems.org/rubygems/rubygems-VERSION.zip) or version: slapnode does not look the latest rubygems up")
	}
	if major, err := strconv.Atoi(strings.SplitN(version, ".", 2)[0]); err != nil || major < 2 {
		return recipe.Result{}, errors.New("rubygems version must be >= 2.0.0")
	}
	ruby, _ := opts.StringOr("ruby-executable", "ruby")
	ruby = strings.TrimSpace(ruby)
	deployment, err := opts.Bool("deployment", false)
	if err != nil {
		return recipe.Result{}, err
	}
	extra, err := opts.StringList("gem-options")
	if err != nil {
		return recipe.Result{}, err
	}
	env, err := fsx.Env(opts, "environment")
	if err != nil {
		return recipe.Result{}, err
	}
	timeout, err := fsx.Duration(opts, "timeout", time.Hour)
	if err != nil {
		return recipe.Result{}, err
	}
	binDir := filepath.Join(ctx.Dir(), "bin")
	if b, _ := opts.StringOr("bin-directory", ""); b != "" {
		binDir = fsx.Resolve(ctx, b)
	}

	if err := os.RemoveAll(loc); err != nil {
		return recipe.Result{}, fmt.Errorf("emptying location: %w", err)
	}
	if err := fsx.MkdirAll(ctx, loc); err != nil {
		return recipe.Result{}, err
	}
	fail := func(err error) (recipe.Result, error) {
		os.RemoveAll(loc)
		return recipe.Result{}, err
	}
	// The rubygems sources, unpacked beside the location and removed
	// after setup.rb, as the recipe does.
	fetch := recipe.Options{"url": u}
	for _, k := range []string{"sha256", "md5sum"} {
		if v, ok := opts[k]; ok {
			fetch[k] = v
		}
	}
	zip, err := download.Fetch(ctx, fetch)
	if err != nil {
		return fail(fmt.Errorf("%w (rubygemsrecipe downloads %s without a checksum; slapnode verifies every download: add md5sum to the section)", err, u))
	}
	src := filepath.Join(filepath.Dir(loc), "rubygems-"+version)
	if err := archive.Unpack(ctx, zip, src, archive.Options{}); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(src)

	// The environment: GEM_HOME, RUBYLIB and PATH from the inherited
	// ones, then the section's environment lines, each %-formatted with
	// the variables set so far (the recipe's `v % env`). sh expands them.
	vars := []string{"GEM_HOME", "RUBYLIB", "PATH"}
	base := map[string]string{
		"GEM_HOME": loc + "/lib/ruby/gems",
		"RUBYLIB":  "%(RUBYLIB)s:" + loc + "/lib:" + loc + "/lib/ruby:" + loc + "/lib/site_ruby",
		"PATH":     "%(PATH)s:" + loc + "/bin",
	}
	var prelude strings.Builder
	for _, k := range vars {
		q, _ := shellValue(base[k])
		fmt.Fprintf(&prelude, "%s=\"%s\"; export %s; ", k, q, k)
	}
	// Every override is formatted with the values above, none with
	// another override: computed first, assigned after.
	overrides := fsx.SortedKeys(env)
	for _, k := range overrides {
		if !fsx.ValidName(k) {
			return fail(fmt.Errorf("environment: %q is not a variable name", k))
		}
		q, _ := shellValue(env[k])
		fmt.Fprintf(&prelude, "_slapnode_%s=\"%s\"; ", k, q)
	}
	for _, k := range overrides {
		fmt.Fprintf(&prelude, "%s=\"$_slapnode_%s\"; export %s; ", k, k, k)
		if _, ok := base[k]; !ok {
			vars = append(vars, k)
		}
	}
	var msgs []string
	run := func(dir string, argv ...string) (string, error) {
		ctx.Log("running %s", strings.Join(argv, " "))
		r, err := ctx.Run(append([]string{"sh", "-c", prelude.String() + `exec "$0" "$@"`}, argv...), dir, nil, timeout)
		if err != nil {
			if strings.Contains(err.Error(), "not granted") {
				err = fmt.Errorf("%w (rubygems runs ruby through the host's sh: grant it with allow_exec = [\"sh\"])", err)
			}
			return "", err
		}
		msgs = append(msgs, "ran "+strings.Join(argv, " "))
		return r.Output, nil
	}
	if _, err := run(src, ruby, "setup.rb", "all", "--prefix="+loc, "--no-rdoc", "--no-ri"); err != nil {
		return fail(err)
	}
	bin := filepath.Join(loc, "bin")
	gem, err := firstGem(bin)
	if err != nil {
		return fail(err)
	}
	type gemSpec struct{ name, version string }
	var specs []gemSpec
	for _, w := range words {
		name, v, _ := strings.Cut(w, "==")
		specs = append(specs, gemSpec{strings.TrimSpace(name), strings.TrimSpace(v)})
	}
	pinned := map[string]string{}
	for _, s := range specs {
		pinned[s.name] = s.version
	}
	for _, s := range specs {
		if deployment {
			if s.version == "" {
				return fail(fmt.Errorf("configuration error, version for gem %s is missing", s.name))
			}
			pattern := "^" + strings.ReplaceAll(s.name, ".", `\.`) + "$"
			if major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0]); major < 3 {
				pattern = "/" + pattern + "/"
			}
			out, err := run(loc, ruby, gem, "dependency", "-rv", s.version, pattern)
			if err != nil {
				return fail(err)
			}
			for _, d := range parseGemDependencies(out) {
				v, ok := pinned[d.name]
				if !ok {
					return fail(fmt.Errorf("configuration error, version for dependency %s is missing", d.name))
				}
				for _, c := range d.constraints {
					if err := checkGemConstraint(c, v, d.name, s.name); err != nil {
						return fail(err)
					}
				}
			}
		}
		argv := []string{ruby, gem, "install", "--no-document", "--bindir=" + bin}
		if deployment {
			argv = append(argv, "--ignore-dependencies")
		}
		argv = append(argv, s.name)
		if s.version != "" {
			argv = append(argv, "--version="+s.version)
		}
		argv = append(append(argv, "--"), extra...)
		ctx.Log("installing ruby gem %q", s.name)
		if _, err := run(loc, argv...); err != nil {
			return fail(err)
		}
	}
	// The launchers: the environment's values, expanded now as the
	// recipe writes them, then the executable.
	var echo strings.Builder
	for _, k := range vars {
		fmt.Fprintf(&echo, `printf '%%s=%%s\0' %s "$%s"; `, k, k)
	}
	out, err := run(loc, "sh", "-c", echo.String())
	if err != nil {
		return fail(err)
	}
	expanded := map[string]string{}
	for _, kv := range strings.Split(out, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			expanded[k] = v
		}
	}
	entries, err := os.ReadDir(bin)
	if err != nil {
		return fail(err)
	}
	installed := []string{loc}
	for _, e := range entries {
		var b strings.Builder
		b.WriteString("#!/bin/sh\n")
		for _, k := range vars {
			fmt.Fprintf(&b, "export %s=%s\n", k, fsx.ShellQuote(expanded[k]))
		}
		fmt.Fprintf(&b, "%s \"$@\"\n\n", fsx.ShellQuote(filepath.Join(bin, e.Name())))
		launcher := filepath.Join(binDir, e.Name())
		// The recipe makes them rw for everyone; slapnode does not make
		// anything world-writable.
		if err := fsx.WriteFile(ctx, launcher, []byte(b.String()), 0o755); err != nil {
			return fail(err)
		}
		installed = append(installed, launcher)
	}
	return recipe.Result{Outputs: map[string]any{"location": loc}, Installed: installed, Messages: msgs}, nil
}

// zipVersion reads VERSION from a URL ending in -VERSION.zip.
func zipVersion(u string) string {
	if !strings.HasSuffix(u, ".zip") {
		return ""
	}
	base := strings.TrimSuffix(u, ".zip")
	i := strings.LastIndexByte(base, '-')
	if i < 0 {
		return ""
	}
	v := base[i+1:]
	for _, p := range strings.Split(v, ".") {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return v
}

// firstGem is the gem executable setup.rb installed (bin/gem, or a
// suffixed gem2.x), the first in name order as the recipe's glob.
func firstGem(bin string) (string, error) {
	entries, err := os.ReadDir(bin)
	if err != nil {
		return "", fmt.Errorf("setup.rb installed no %s: %w", bin, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gem") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("setup.rb installed no gem executable in %s", bin)
	}
	sort.Strings(names)
	return filepath.Join(bin, names[0]), nil
}

type gemConstraint struct{ symbol, version string }

type gemDependency struct {
	name        string
	constraints []gemConstraint
}

// parseGemDependencies reads `gem dependency -rv` output: lines
// "  NAME (OP VERSION[, OP VERSION])" with OP among <, ~>, >=, != (other
// lines, such as runtime-only or = constraints, are not dependencies the
// recipe checks).
func parseGemDependencies(out string) []gemDependency {
	var deps []gemDependency
	for _, line := range strings.Split(out, "\n") {
		if line == "" || (line[0] != ' ' && line[0] != '\t') {
			continue
		}
		line = strings.TrimSpace(line)
		open := strings.IndexByte(line, '(')
		if open < 1 || !strings.HasSuffix(line, ")") || line[open-1] != ' ' {
			continue
		}
		name := line[:open-1]
		if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != "" {
			continue
		}
		var cons []gemConstraint
		ok := true
		for _, part := range strings.Split(line[open+1:len(line)-1], ", ") {
			sym, v, found := strings.Cut(part, " ")
			if !found || !gemVersion(v) || (sym != "<" && sym != "~>" && sym != ">=" && sym != "!=") {
				ok = false
				break
			}
			cons = append(cons, gemConstraint{sym, v})
		}
		if ok && len(cons) > 0 && len(cons) <= 2 {
			deps = append(deps, gemDependency{name, cons})
		}
	}
	return deps
}

func gemVersion(v string) bool {
	for _, p := range strings.Split(v, ".") {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return v != ""
}

func versionInts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, _ := strconv.Atoi(p)
		out = append(out, n)
	}
	return out
}

func compareVersions(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return -1
		case i >= len(b):
			return 1
		case a[i] != b[i]:
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// checkGemConstraint checks a pinned version against a dependency's
// constraint, ~> X.Y being >= X.Y and < X+1 (the last component dropped
// and the one before incremented), as the recipe does.
func checkGemConstraint(c gemConstraint, have, dep, gem string) error {
	if !gemVersion(have) {
		return fmt.Errorf("configuration error, version %q for gem %s is not a version the dependency constraints of gem %s can be checked against", have, dep, gem)
	}
	h, want := versionInts(have), versionInts(c.version)
	var ok bool
	switch c.symbol {
	case "~>":
		if err := checkGemConstraint(gemConstraint{">=", c.version}, have, dep, gem); err != nil {
			return err
		}
		upper := append([]int{}, want...)
		if len(upper) > 1 {
			upper = upper[:len(upper)-1]
		}
		upper[len(upper)-1]++
		ok = compareVersions(h, upper) < 0
	case "<":
		ok = compareVersions(h, want) < 0
	case ">=":
		ok = compareVersions(h, want) >= 0
	case "!=":
		ok = compareVersions(h, want) != 0
	}
	if !ok {
		return fmt.Errorf("configuration error, version %s for gem %s does not satisfy dependency constraint %s %s of gem %s", have, dep, c.symbol, c.version, gem)
	}
	return nil
}
