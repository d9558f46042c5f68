// Package build holds the cookbook's build recipes: build (arbitrary
// commands, slapos.recipe.build and plone.recipe.command) and cmmi
// (configure, make, make install: slapos.recipe.cmmi). Commands run on the
// host through its exec function, so every program they start directly
// must be granted by the module block's allow_exec.
package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/archive"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/download"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const common = `
	"location":{"type":"string","description":"directory the part owns (default DIR/parts/PART); removed on uninstall"},
	"environment":{"type":["string","object"],"description":"NAME=VALUE lines or an object, added to the commands' environment"},
	"timeout":{"type":["number","string"],"description":"per command, seconds or a duration (default 1h)"},`

// Register adds the recipes of this package to g.
func Register(g *recipe.Registry) {
	g.Register("build", recipe.Recipe{
		Description: "Run commands to build or set up something (slapos.recipe.build, plone.recipe.command).",
		Schema: `{"type":"object","properties":{` + common + `
			"commands":{"type":"array","items":{"type":["array","string"],"items":{"type":"string"}},"description":"commands to run in order: argv lists, or strings run by sh -c"},
			"script":{"type":"string","description":"a shell script, run by sh -e -c"},
			"command":{"type":"string","description":"alias of script (plone.recipe.command)"},
			"update-command":{"type":"string","description":"script run on update instead of the install commands"},
			"dir":{"type":"string","description":"working directory (default: location)"},
			"stop-on-error":{"type":["boolean","string"],"description":"fail the part when a command fails (default true)"}
		},"anyOf":[{"required":["commands"]},{"required":["script"]},{"required":["command"]}]}`,
		Outputs: []string{"location"},
		Install: buildInstall,
		Update:  buildUpdate,
	})
	g.Register("cmmi", recipe.Recipe{
		Description: "Configure, make, make install a source archive or directory (slapos.recipe.cmmi).",
		Schema: `{"type":"object","properties":{` + common + `
			"url":{"type":"string","description":"source archive (http(s), file:// or a profile path)"},
			"sha256":{"type":"string"},"md5sum":{"type":"string"},
			"path":{"type":"string","description":"an unpacked source directory, instead of url"},
			"prefix":{"type":"string","description":"installation prefix (default: location)"},
			"configure-command":{"type":"string","description":"default ./configure; empty to skip configure"},
			"configure-options":{"type":["string","array"],"items":{"type":"string"}},
			"make-binary":{"type":"string","description":"default make"},
			"make-options":{"type":["string","array"],"items":{"type":"string"}},
			"make-targets":{"type":["string","array"],"items":{"type":"string"},"description":"default install"},
			"pre-configure":{"type":"string","description":"shell script run in the source tree before configure"},
			"post-install":{"type":"string","description":"shell script run in the source tree after make install"},
			"patches":{"type":["string","array"],"items":{"type":"string"},"description":"patch files (profile paths, or URL#md5sum), applied with patch"},
			"patch-options":{"type":"string","description":"default -p0, as slapos.recipe.cmmi"},
			"strip-top-level-dir":{"type":["boolean","string"]},
			"keep-compile-dir":{"type":["boolean","string"]}
		},"oneOf":[{"required":["url"]},{"required":["path"]}]}`,
		Outputs: []string{"location"},
		Install: cmmi,
	})
}

type runner struct {
	ctx     recipe.Context
	env     map[string]string
	prelude string // sh code exporting the variables that refer to others
	timeout time.Duration
	msgs    []string
}

// splitEnv keeps plain values for the host's exec and turns values with
// slapos.recipe.cmmi's %(NAME)s references to the inherited environment
// (PATH=/opt/x/bin:%(PATH)s) into sh code: only the host knows the
// environment they refer to, so a granted sh expands them.
func splitEnv(env map[string]string) (plain map[string]string, prelude string) {
	plain = map[string]string{}
	var b strings.Builder
	for _, k := range fsx.SortedKeys(env) {
		v := env[k]
		q, refs := shellValue(v)
		if refs == 0 {
			plain[k] = v
			continue
		}
		fmt.Fprintf(&b, "%s=\"%s\"; export %s; ", k, q, k)
	}
	return plain, b.String()
}

// shellValue returns v for the inside of a double-quoted sh string, with
// each %(NAME)s written ${NAME}, and how many references it had. A regexp
// would do, at the price of half a megabyte of module.
func shellValue(v string) (string, int) {
	var q strings.Builder
	refs := 0
	for {
		i := strings.Index(v, "%(")
		if i < 0 {
			break
		}
		j := strings.Index(v[i:], ")s")
		if j < 0 || !fsx.ValidName(v[i+2:i+j]) {
			q.WriteString(dquote(v[:i+2]))
			v = v[i+2:]
			continue
		}
		q.WriteString(dquote(v[:i]) + "${" + v[i+2:i+j] + "}")
		refs++
		v = v[i+j+2:]
	}
	q.WriteString(dquote(v))
	return q.String(), refs
}

// dquote escapes s for the inside of a double-quoted sh string.
func dquote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s)
}

func newRunner(ctx recipe.Context, opts recipe.Options, location string) (*runner, error) {
	env, err := fsx.Env(opts, "environment")
	if err != nil {
		return nil, err
	}
	env, prelude := splitEnv(env)
	// The conventional variables of slapos.recipe.build scripts.
	env["location"] = location
	env["SLAPNODE_PART"] = ctx.Part
	timeout, err := fsx.Duration(opts, "timeout", time.Hour)
	if err != nil {
		return nil, err
	}
	return &runner{ctx: ctx, env: env, prelude: prelude, timeout: timeout}, nil
}

func (r *runner) run(argv []string, dir string) error {
	r.ctx.Log("running %s (in %s)", strings.Join(argv, " "), dir)
	run := argv
	if r.prelude != "" || strings.Contains(argv[0], "/") && !filepath.IsAbs(argv[0]) {
		// The host runs only granted commands looked up in its PATH (or
		// granted absolute paths), never a relative ./configure, and does
		// not expand %(PATH)s: let the granted sh do both.
		run = append([]string{"sh", "-c", r.prelude + `exec "$0" "$@"`}, argv...)
	}
	_, err := r.ctx.Run(run, dir, r.env, r.timeout)
	if err == nil {
		r.msgs = append(r.msgs, "ran "+strings.Join(argv, " "))
	}
	return err
}

func (r *runner) sh(script, dir string) error {
	return r.run([]string{"sh", "-e", "-c", script}, dir)
}

func location(ctx recipe.Context, opts recipe.Options) (string, error) {
	loc := fsx.PartDir(ctx)
	if opts.Has("location") {
		l, err := opts.String("location")
		if err != nil {
			return "", err
		}
		loc = fsx.Resolve(ctx, l)
	}
	if loc == ctx.Dir() || loc == "/" {
		return "", fmt.Errorf("location %s is the partition or software directory itself: a part owns its location and it is removed on uninstall", loc)
	}
	return loc, nil
}

func commands(opts recipe.Options) ([][]string, error) {
	var cmds [][]string
	if v, ok := opts["commands"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, errors.New(`option "commands" must be a list of commands`)
		}
		for i, c := range list {
			switch x := c.(type) {
			case string:
				cmds = append(cmds, []string{"sh", "-e", "-c", x})
			case []any:
				argv, err := recipe.Options{"c": x}.StringList("c")
				if err != nil || len(argv) == 0 {
					return nil, fmt.Errorf(`option "commands": command %d must be a non-empty list of strings`, i)
				}
				cmds = append(cmds, argv)
			default:
				return nil, fmt.Errorf(`option "commands": command %d must be a list of strings or a string`, i)
			}
		}
	}
	for _, k := range []string{"script", "command"} {
		if opts.Has(k) {
			s, err := opts.String(k)
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, []string{"sh", "-e", "-c", s})
		}
	}
	if len(cmds) == 0 {
		return nil, errors.New("nothing to run: set commands, script or command")
	}
	return cmds, nil
}

func buildInstall(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	cmds, err := commands(opts)
	if err != nil {
		return recipe.Result{}, err
	}
	return runBuild(ctx, opts, cmds)
}

// buildUpdate runs update-command when set (plone.recipe.command's
// behaviour), else the install commands again.
func buildUpdate(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	if opts.Has("update-command") {
		s, err := opts.String("update-command")
		if err != nil {
			return recipe.Result{}, err
		}
		return runBuild(ctx, opts, [][]string{{"sh", "-e", "-c", s}})
	}
	return buildInstall(ctx, opts)
}

func runBuild(ctx recipe.Context, opts recipe.Options, cmds [][]string) (recipe.Result, error) {
	loc, err := location(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	if err := os.MkdirAll(loc, 0o755); err != nil {
		return recipe.Result{}, fmt.Errorf("creating location: %w", err)
	}
	dir := loc
	if opts.Has("dir") {
		d, err := opts.String("dir")
		if err != nil {
			return recipe.Result{}, err
		}
		dir = fsx.Resolve(ctx, d)
	}
	stop, err := opts.Bool("stop-on-error", true)
	if err != nil {
		return recipe.Result{}, err
	}
	r, err := newRunner(ctx, opts, loc)
	if err != nil {
		return recipe.Result{}, err
	}
	for _, argv := range cmds {
		if err := r.run(argv, dir); err != nil {
			if stop {
				return recipe.Result{Messages: r.msgs}, err
			}
			ctx.LogLevel(recipe.Warn, "ignoring the failure (stop-on-error = false): %v", err)
		}
	}
	return recipe.Result{Outputs: map[string]any{"location": loc}, Installed: []string{loc}, Messages: r.msgs}, nil
}

func cmmi(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	loc, err := location(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	prefix := loc
	if opts.Has("prefix") {
		p, err := opts.String("prefix")
		if err != nil {
			return recipe.Result{}, err
		}
		prefix = fsx.Resolve(ctx, p)
	}
	r, err := newRunner(ctx, opts, loc)
	if err != nil {
		return recipe.Result{}, err
	}

	// The source tree: unpacked next to the location, as buildout's
	// parts/NAME__compile__, or an existing directory given by path.
	src := loc + "__compile__"
	keep, err := opts.Bool("keep-compile-dir", false)
	if err != nil {
		return recipe.Result{}, err
	}
	if opts.Has("path") {
		p, err := opts.String("path")
		if err != nil {
			return recipe.Result{}, err
		}
		src, keep = fsx.ResolveProfile(ctx, p), true
		if st, err := os.Stat(src); err != nil || !st.IsDir() {
			return recipe.Result{}, fmt.Errorf("option \"path\": %s is not a source directory", src)
		}
	} else {
		archiveFile, err := download.Fetch(ctx, opts)
		if err != nil {
			return recipe.Result{}, err
		}
		strip, err := download.StripOption(opts)
		if err != nil {
			return recipe.Result{}, err
		}
		if err := archive.Unpack(ctx, archiveFile, src, archive.Options{Strip: strip}); err != nil {
			return recipe.Result{}, err
		}
	}
	if !keep {
		defer os.RemoveAll(src)
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return recipe.Result{}, err
	}

	if err := applyPatches(ctx, opts, r, src); err != nil {
		return recipe.Result{Messages: r.msgs}, err
	}
	if s, _ := opts.StringOr("pre-configure", ""); s != "" {
		if err := r.sh(s, src); err != nil {
			return recipe.Result{Messages: r.msgs}, fmt.Errorf("pre-configure: %w", err)
		}
	}
	configure, err := opts.StringOr("configure-command", "./configure")
	if err != nil {
		return recipe.Result{}, err
	}
	confOpts, err := fsx.ArgLines(opts, "configure-options")
	if err != nil {
		return recipe.Result{}, err
	}
	if strings.TrimSpace(configure) != "" {
		argv, err := fsx.ShellSplit(configure)
		if err != nil {
			return recipe.Result{}, fmt.Errorf("option \"configure-command\": %w", err)
		}
		if configure == "./configure" {
			argv = append(argv, "--prefix="+prefix)
		}
		if err := r.run(append(argv, confOpts...), src); err != nil {
			return recipe.Result{Messages: r.msgs}, err
		}
	}
	makeBin, err := opts.StringOr("make-binary", "make")
	if err != nil {
		return recipe.Result{}, err
	}
	makeArgv, err := fsx.ShellSplit(makeBin)
	if err != nil || len(makeArgv) == 0 {
		return recipe.Result{}, fmt.Errorf("option \"make-binary\" %q is not a command", makeBin)
	}
	makeOpts, err := fsx.ArgLines(opts, "make-options")
	if err != nil {
		return recipe.Result{}, err
	}
	targets := []string{"install"}
	if opts.Has("make-targets") {
		if targets, err = fsx.ArgLines(opts, "make-targets"); err != nil {
			return recipe.Result{}, err
		}
	}
	base := append(append([]string{}, makeArgv...), makeOpts...)
	if err := r.run(base, src); err != nil {
		return recipe.Result{Messages: r.msgs}, err
	}
	if len(targets) > 0 {
		if err := r.run(append(base, targets...), src); err != nil {
			return recipe.Result{Messages: r.msgs}, err
		}
	}
	if s, _ := opts.StringOr("post-install", ""); s != "" {
		if err := r.sh(s, src); err != nil {
			return recipe.Result{Messages: r.msgs}, fmt.Errorf("post-install: %w", err)
		}
	}
	// Only the location is the part's: a prefix elsewhere (say the software
	// directory) is shared and not removed on uninstall.
	return recipe.Result{Outputs: map[string]any{"location": loc, "prefix": prefix}, Installed: []string{loc}, Messages: r.msgs}, nil
}

// applyPatches applies each patch (a profile path, or URL#md5sum) with
// "patch PATCH-OPTIONS -i FILE" in the source tree.
func applyPatches(ctx recipe.Context, opts recipe.Options, r *runner, src string) error {
	patches, err := opts.StringList("patches")
	if err != nil || len(patches) == 0 {
		return err
	}
	po, err := opts.StringOr("patch-options", "-p0")
	if err != nil {
		return err
	}
	poArgs, err := fsx.ShellSplit(po)
	if err != nil {
		return fmt.Errorf("option \"patch-options\": %w", err)
	}
	for _, p := range patches {
		var file string
		if u, sum, ok := strings.Cut(p, "#"); ok && strings.Contains(u, "://") {
			d, err := ctx.DownloadFile(u, "", sum)
			if err != nil {
				return fmt.Errorf("patch %s: %w", p, err)
			}
			file = d.Path
		} else if strings.Contains(p, "://") {
			return fmt.Errorf("patch %s: a URL needs its md5sum after '#' (URL#MD5SUM)", p)
		} else {
			file = fsx.ResolveProfile(ctx, p)
		}
		argv := append(append([]string{"patch"}, poArgs...), "-i", file)
		if err := r.run(argv, src); err != nil {
			return fmt.Errorf("patch %s: %w", p, err)
		}
	}
	return nil
}
