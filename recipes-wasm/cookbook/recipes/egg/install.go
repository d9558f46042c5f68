package egg

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/archive"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// requirements reads eggs (one a line; default the part name) and egg.
func requirements(ctx recipe.Context, opts recipe.Options) ([]string, error) {
	var reqs []string
	if opts.Has("eggs") {
		list, err := opts.StringList("eggs")
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, list...)
	}
	if e, err := opts.StringOr("egg", ""); err != nil {
		return nil, err
	} else if strings.TrimSpace(e) != "" {
		reqs = append(reqs, strings.TrimSpace(e))
	}
	if !opts.Has("eggs") && !opts.Has("egg") {
		reqs = []string{ctx.Part}
	}
	return reqs, nil
}

func install(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	p, err := newPip(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	reqs, err := requirements(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	loc := fsx.PartDir(ctx)
	if l, _ := opts.StringOr("location", ""); l != "" {
		loc = fsx.Resolve(ctx, l)
	}
	if loc == ctx.Dir() || loc == "/" {
		return recipe.Result{}, fmt.Errorf("location %s is the partition or software directory itself: the distributions need a directory of their own", loc)
	}
	bin := filepath.Join(ctx.Dir(), "bin")
	if b, _ := opts.StringOr("bin-directory", ""); b != "" {
		bin = fsx.Resolve(ctx, b)
	}
	// A fresh target: pip --target does not remove what an earlier install
	// of other versions left.
	if err := os.RemoveAll(loc); err != nil {
		return recipe.Result{}, err
	}
	if err := fsx.MkdirAll(ctx, loc); err != nil {
		return recipe.Result{}, err
	}
	cons, err := constraints(ctx, opts, ctx.Part, reqs...)
	if err != nil {
		return recipe.Result{}, err
	}
	if cons != "" {
		defer os.Remove(cons)
	}
	pinned, err := pinRequirements(opts, reqs)
	if err != nil {
		return recipe.Result{}, err
	}
	if len(reqs) > 0 {
		args := append([]string{"install", "--target", loc, "--upgrade"}, p.sources()...)
		if cons != "" {
			args = append(args, "--constraint", cons)
		}
		args = append(args, "--")
		args = append(args, pinned...)
		if _, err := p.run(ctx.Dir(), args...); err != nil {
			os.RemoveAll(loc)
			return recipe.Result{Messages: p.msgs}, fmt.Errorf("installing %s: %w", strings.Join(reqs, " "), err)
		}
	}
	installed := []string{loc}
	scripts, err := writeScripts(ctx, opts, p, reqs, loc, bin)
	if err != nil {
		return recipe.Result{Messages: p.msgs}, err
	}
	installed = append(installed, scripts...)
	paths, err := pythonPath(ctx, opts, loc)
	if err != nil {
		return recipe.Result{}, err
	}
	py := p.python[len(p.python)-1]
	anyScripts := make([]any, len(scripts))
	for i, s := range scripts {
		anyScripts[i] = s
	}
	anyPaths := make([]any, len(paths))
	for i, s := range paths {
		anyPaths[i] = s
	}
	return recipe.Result{
		Outputs:   map[string]any{"location": loc, "bin-directory": bin, "scripts": anyScripts, "python-path": anyPaths, "python": py},
		Installed: installed,
		Messages:  append(p.msgs, fmt.Sprintf("installed %s into %s, %d scripts", strings.Join(reqs, " "), loc, len(scripts))),
	}, nil
}

// pinRequirements gives a requested egg without a version its pinned
// version, as buildout's [versions] does: NAME becomes NAME==VERSION (a
// missing egg is then reported with its version).
func pinRequirements(opts recipe.Options, reqs []string) ([]string, error) {
	pins, err := versions(opts)
	if err != nil {
		return nil, err
	}
	byName := map[string]string{}
	for n, v := range pins {
		byName[normalize(n)] = v
	}
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r
		bare := strings.TrimSpace(r)
		if j := strings.IndexByte(bare, ']'); j >= 0 {
			bare = bare[j+1:]
		} else {
			bare = strings.TrimLeft(bare, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
		}
		if v, ok := byName[reqName(r)]; ok && strings.TrimSpace(bare) == "" {
			out[i] = strings.TrimSpace(r) + "==" + v
		}
	}
	return out, nil
}

// pythonPath is the scripts' sys.path head: the location, then
// extra-paths (relative ones under DIR, as buildout's directory).
func pythonPath(ctx recipe.Context, opts recipe.Options, loc string) ([]string, error) {
	extra, err := opts.StringList("extra-paths")
	if err != nil {
		return nil, err
	}
	paths := []string{loc}
	for _, e := range extra {
		paths = append(paths, fsx.Resolve(ctx, e))
	}
	return paths, nil
}

// writeScripts writes the console scripts of the requested distributions
// (or those the scripts option names), the entry-points, and the
// interpreter, into bin. It returns their paths.
func writeScripts(ctx recipe.Context, opts recipe.Options, p *pip, reqs []string, loc, bin string) ([]string, error) {
	var wanted map[string]string // name → alias; nil means every script
	if opts.Has("scripts") {
		list, err := opts.StringList("scripts")
		if err != nil {
			return nil, err
		}
		wanted = map[string]string{}
		for _, l := range list {
			for _, s := range strings.Fields(l) {
				name, alias, ok := strings.Cut(s, "=")
				if !ok {
					alias = name
				}
				wanted[name] = alias
			}
		}
	}
	dependent, err := opts.Bool("dependent-scripts", false)
	if err != nil {
		return nil, err
	}
	requested := map[string]bool{}
	for _, r := range reqs {
		requested[reqName(r)] = true
	}
	dists, err := installedDists(loc)
	if err != nil {
		return nil, err
	}
	var eps []entryPoint
	for _, d := range dists {
		if requested[d.name] || dependent && d.name != "setuptools" {
			eps = append(eps, d.scripts...)
		}
	}
	extra, err := opts.StringList("entry-points")
	if err != nil {
		return nil, err
	}
	for _, l := range extra {
		for _, s := range strings.Fields(l) {
			ep, ok := parseEntryPoint(s)
			if !ok {
				return nil, fmt.Errorf("option \"entry-points\": %q is not NAME=MODULE:ATTR", s)
			}
			eps = append(eps, ep)
		}
	}
	interp, err := opts.StringOr("interpreter", "")
	if err != nil {
		return nil, err
	}
	interp = strings.TrimSpace(interp)
	if wanted != nil && len(wanted) == 0 && interp == "" {
		return nil, nil
	}
	if len(eps) == 0 && interp == "" {
		return nil, nil
	}
	py, err := p.pythonExecutable(ctx.Dir())
	if err != nil {
		return nil, err
	}
	init, _ := opts.StringOr("initialization", "")
	args, _ := opts.StringOr("arguments", "")
	paths, err := pythonPath(ctx, opts, loc)
	if err != nil {
		return nil, err
	}
	if err := fsx.MkdirAll(ctx, bin); err != nil {
		return nil, err
	}
	var written []string
	for _, ep := range eps {
		name := ep.name
		if wanted != nil {
			alias, ok := wanted[ep.name]
			if !ok {
				continue
			}
			name = alias
		}
		path := filepath.Join(bin, name)
		if err := fsx.WriteFile(ctx, path, []byte(scriptText(ctx.Part, py, paths, init, ep, args)), 0o755); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	if interp != "" {
		path := filepath.Join(bin, interp)
		if err := fsx.WriteFile(ctx, path, []byte(interpreterText(ctx.Part, py, paths, init)), 0o755); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	if wanted != nil {
		made := map[string]bool{}
		for _, ep := range eps {
			made[ep.name] = true
		}
		for name := range wanted {
			if !made[name] && name != interp {
				ctx.LogLevel(recipe.Warn, "script %s was asked for, but none of %s has it", name, strings.Join(reqs, " "))
			}
		}
	}
	return written, nil
}

func pyList(paths []string) string {
	var b strings.Builder
	b.WriteString("[\n")
	for _, p := range paths {
		b.WriteString("    " + strconv.Quote(p) + ",\n")
	}
	b.WriteString("]")
	return b.String()
}

// scriptText is a console script: the eggs on sys.path, the
// initialization, then the entry point called with the arguments, its
// result the exit status (as buildout's scripts).
func scriptText(part, py string, paths []string, init string, ep entryPoint, args string) string {
	return fmt.Sprintf(`#!%s
# Written by slapnode's cookbook (egg, part %s): do not edit.
import sys
sys.path[0:0] = %s
%s
import %s

if __name__ == '__main__':
    sys.exit(%s.%s(%s))
`, py, part, pyList(paths), init, ep.module, ep.module, ep.attrs, args)
}

// interpreterText is a Python interpreter with the eggs on sys.path:
// `NAME -c CODE`, `NAME -m MODULE`, `NAME SCRIPT ARGS`, or interactive.
func interpreterText(part, py string, paths []string, init string) string {
	return fmt.Sprintf(`#!%s
# Written by slapnode's cookbook (egg, part %s): a Python interpreter with
# the part's eggs on its path. Usage: -c CODE, -m MODULE, SCRIPT, or none
# (interactive); -i stays interactive after the code ran.
import sys
sys.path[0:0] = %s
%s

def _slapnode_main(argv):
    import getopt, runpy
    opts, rest = getopt.getopt(argv, 'ic:m:')
    interactive = not argv
    namespace = {'__name__': '__main__'}
    for opt, value in opts:
        if opt == '-i':
            interactive = True
        elif opt == '-c':
            sys.argv[:] = ['-c'] + rest
            exec(compile(value, '<string>', 'exec'), namespace)
            rest = []
        elif opt == '-m':
            sys.argv[:] = [value] + rest
            runpy.run_module(value, run_name='__main__', alter_sys=True)
            rest = []
    if rest:
        sys.argv[:] = rest
        namespace['__file__'] = rest[0]
        with open(rest[0]) as f:
            exec(compile(f.read(), rest[0], 'exec'), namespace)
    if interactive:
        import code
        code.interact(banner='', local=namespace)

_slapnode_main(sys.argv[1:])
`, py, part, pyList(paths), init)
}

// buildEnv adds the build options of zc.recipe.egg:custom (include-dirs,
// library-dirs, rpath, define, undef, libraries) to the compiler flags of
// the build environment.
func buildEnv(ctx recipe.Context, opts recipe.Options, env map[string]string) error {
	list := func(key string) ([]string, error) {
		l, err := opts.StringList(key)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range l {
			for _, f := range strings.Fields(e) {
				out = append(out, f)
			}
		}
		return out, nil
	}
	add := func(k, v string) {
		if v == "" {
			return
		}
		if env[k] != "" {
			env[k] = v + " " + env[k]
		} else {
			env[k] = v
		}
	}
	inc, err := list("include-dirs")
	if err != nil {
		return err
	}
	lib, err := list("library-dirs")
	if err != nil {
		return err
	}
	rpath, err := list("rpath")
	if err != nil {
		return err
	}
	var cflags, ldflags []string
	for _, d := range inc {
		cflags = append(cflags, "-I"+fsx.Resolve(ctx, d))
	}
	for _, d := range lib {
		ldflags = append(ldflags, "-L"+fsx.Resolve(ctx, d))
	}
	for _, d := range rpath {
		if !strings.HasPrefix(d, "$") {
			d = fsx.Resolve(ctx, d)
		}
		ldflags = append(ldflags, "-Wl,-rpath="+d)
	}
	if d, _ := opts.StringOr("define", ""); d != "" {
		for _, m := range strings.Split(d, ",") {
			if m = strings.TrimSpace(m); m != "" {
				cflags = append(cflags, "-D"+m)
			}
		}
	}
	if u, _ := opts.StringOr("undef", ""); u != "" {
		for _, m := range strings.Split(u, ",") {
			if m = strings.TrimSpace(m); m != "" {
				cflags = append(cflags, "-U"+m)
			}
		}
	}
	if l, _ := opts.StringOr("libraries", ""); l != "" {
		for _, m := range strings.Fields(l) {
			ldflags = append(ldflags, "-l"+m)
		}
	}
	add("CFLAGS", strings.Join(cflags, " "))
	add("CPPFLAGS", strings.Join(cflags, " "))
	add("LDFLAGS", strings.Join(ldflags, " "))
	return nil
}

// setupEggs installs the setup-eggs for the build only, and puts them on
// PYTHONPATH; it returns the directory to remove afterwards ("" if none).
func setupEggs(ctx recipe.Context, opts recipe.Options, p *pip, cons string) (string, error) {
	eggs, err := opts.StringList("setup-eggs")
	if err != nil || len(eggs) == 0 {
		return "", err
	}
	var reqs []string
	for _, e := range eggs {
		reqs = append(reqs, strings.Fields(e)...)
	}
	dir := filepath.Join(ctx.Dir(), ".slapnode-egg-"+ctx.Part+"-setup")
	os.RemoveAll(dir)
	if err := fsx.MkdirAll(ctx, dir); err != nil {
		return "", err
	}
	args := append([]string{"install", "--target", dir}, p.sources()...)
	if cons != "" {
		args = append(args, "--constraint", cons)
	}
	args = append(append(args, "--"), reqs...)
	if _, err := p.run(ctx.Dir(), args...); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("installing setup-eggs %s: %w", strings.Join(reqs, " "), err)
	}
	if old := p.env["PYTHONPATH"]; old != "" {
		p.env["PYTHONPATH"] = dir + ":" + old
	} else {
		p.env["PYTHONPATH"] = dir
	}
	return dir, nil
}

// buildWheel builds src (a source tree) into the eggs directory and
// returns the wheel's path.
func buildWheel(ctx recipe.Context, p *pip, src string) (string, error) {
	if err := fsx.MkdirAll(ctx, p.eggsDir); err != nil {
		return "", err
	}
	before := wheels(p.eggsDir)
	tmp := filepath.Join(ctx.Dir(), ".slapnode-egg-"+ctx.Part+"-wheel")
	os.RemoveAll(tmp)
	if err := fsx.MkdirAll(ctx, tmp); err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	args := append([]string{"wheel", "--no-deps", "--wheel-dir", tmp}, p.sources()...)
	if _, err := p.run(ctx.Dir(), append(args, "--", src)...); err != nil {
		return "", err
	}
	built := fsx.SortedKeys(wheels(tmp))
	if len(built) != 1 {
		return "", fmt.Errorf("pip wheel of %s made %d wheels, want 1", src, len(built))
	}
	dst := filepath.Join(p.eggsDir, filepath.Base(built[0]))
	if err := os.Rename(built[0], dst); err != nil {
		return "", err
	}
	if before[dst] {
		ctx.Log("replaced %s", dst)
	}
	return dst, nil
}

func wheels(dir string) map[string]bool {
	out := map[string]bool{}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.whl"))
	for _, m := range matches {
		out[m] = true
	}
	return out
}

// custom builds one distribution (zc.recipe.egg:custom): its source is
// fetched by pip, patched, and built with the part's build options.
func custom(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	p, err := newPip(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	req, _ := opts.StringOr("egg", "")
	if strings.TrimSpace(req) == "" {
		req, _ = opts.StringOr("eggs", "")
	}
	req = strings.TrimSpace(req)
	if req == "" {
		req = ctx.Part
	}
	if err := buildEnv(ctx, opts, p.env); err != nil {
		return recipe.Result{}, err
	}
	cons, err := constraints(ctx, opts, ctx.Part)
	if err != nil {
		return recipe.Result{}, err
	}
	if cons != "" {
		defer os.Remove(cons)
	}
	setup, err := setupEggs(ctx, opts, p, cons)
	if err != nil {
		return recipe.Result{Messages: p.msgs}, err
	}
	if setup != "" {
		defer os.RemoveAll(setup)
	}
	// The source distribution, unpacked where the patches apply.
	work := filepath.Join(ctx.Dir(), ".slapnode-egg-"+ctx.Part+"-src")
	os.RemoveAll(work)
	if err := fsx.MkdirAll(ctx, work); err != nil {
		return recipe.Result{}, err
	}
	defer os.RemoveAll(work)
	args := append([]string{"download", "--no-deps", "--no-binary", ":all:", "--dest", work}, p.sources()...)
	if cons != "" {
		args = append(args, "--constraint", cons)
	}
	if _, err := p.run(ctx.Dir(), append(append(args, "--"), req)...); err != nil {
		return recipe.Result{Messages: p.msgs}, fmt.Errorf("fetching the source of %s: %w", req, err)
	}
	entries, err := os.ReadDir(work)
	if err != nil || len(entries) != 1 {
		return recipe.Result{}, fmt.Errorf("pip download of %s left %d files, want one source distribution", req, len(entries))
	}
	sdist := filepath.Join(work, entries[0].Name())
	tree := filepath.Join(work, "tree")
	if err := archive.Unpack(ctx, sdist, tree, archive.Options{}); err != nil {
		return recipe.Result{}, err
	}
	if err := applyPatches(ctx, opts, p, tree); err != nil {
		return recipe.Result{Messages: p.msgs}, err
	}
	wheel, err := buildWheel(ctx, p, tree)
	if err != nil {
		return recipe.Result{Messages: p.msgs}, fmt.Errorf("building %s: %w", req, err)
	}
	return recipe.Result{
		Outputs:   map[string]any{"wheel": wheel, "eggs-directory": p.eggsDir},
		Installed: []string{wheel},
		Messages:  append(p.msgs, "built "+filepath.Base(wheel)),
	}, nil
}

// develop builds a local source tree (zc.recipe.egg:develop).
func develop(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	p, err := newPip(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	setup, err := opts.String("setup")
	if err != nil {
		return recipe.Result{}, err
	}
	src := fsx.Resolve(ctx, setup)
	if filepath.Base(src) == "setup.py" {
		src = filepath.Dir(src)
	}
	if st, err := os.Stat(src); err != nil || !st.IsDir() {
		return recipe.Result{}, fmt.Errorf("option \"setup\": %s is not a source directory", src)
	}
	if err := buildEnv(ctx, opts, p.env); err != nil {
		return recipe.Result{}, err
	}
	dir, err := setupEggs(ctx, opts, p, "")
	if err != nil {
		return recipe.Result{Messages: p.msgs}, err
	}
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	wheel, err := buildWheel(ctx, p, src)
	if err != nil {
		return recipe.Result{Messages: p.msgs}, fmt.Errorf("building %s: %w", src, err)
	}
	return recipe.Result{
		Outputs:   map[string]any{"wheel": wheel, "eggs-directory": p.eggsDir},
		Installed: []string{wheel},
		Messages:  append(p.msgs, "built "+filepath.Base(wheel)),
	}, nil
}

// applyPatches applies patches (FILE#MD5SUM, profile paths or URLs) in
// tree, as the SlapOS zc.recipe.egg does: PATCH-BINARY PATCH-OPTIONS < FILE.
func applyPatches(ctx recipe.Context, opts recipe.Options, p *pip, tree string) error {
	list, err := opts.StringList("patches")
	if err != nil {
		return err
	}
	var patches []string
	for _, l := range list {
		patches = append(patches, strings.Fields(l)...)
	}
	if len(patches) == 0 {
		return nil
	}
	binary, _ := opts.StringOr("patch-binary", "patch")
	po, _ := opts.StringOr("patch-options", "-p0")
	// A source distribution unpacks into one directory: patch inside it.
	work := tree
	if entries, err := os.ReadDir(tree); err == nil && len(entries) == 1 && entries[0].IsDir() {
		work = filepath.Join(tree, entries[0].Name())
	}
	for _, ref := range patches {
		u, sum, _ := strings.Cut(ref, "#")
		var file string
		if strings.Contains(u, "://") && !strings.HasPrefix(u, "file://") {
			d, err := ctx.DownloadFile(u, "", sum)
			if err != nil {
				return fmt.Errorf("patch %s: %w", ref, err)
			}
			file = d.Path
		} else {
			file = fsx.ResolveProfile(ctx, strings.TrimPrefix(u, "file://"))
			if sum != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("patch %s: %w", ref, err)
				}
				got := md5.Sum(b)
				if !strings.EqualFold(hex.EncodeToString(got[:]), sum) {
					return fmt.Errorf("patch %s: md5sum mismatch: got %s", ref, hex.EncodeToString(got[:]))
				}
			}
		}
		script := strings.TrimSpace(binary) + " " + strings.Join(strings.Fields(po), " ") + " < " + fsx.ShellQuote(file)
		if _, err := ctx.Run([]string{"sh", "-e", "-c", script}, work, nil, p.timeout); err != nil {
			return fmt.Errorf("patch %s: %w", ref, err)
		}
		p.msgs = append(p.msgs, "applied "+filepath.Base(file))
	}
	return nil
}
