// Package build holds the cookbook's build recipes: build (commands,
// plone.recipe.command; or the Python init/install/update code of
// slapos.recipe.build) and cmmi (configure, make, make install:
// slapos.recipe.cmmi). Commands run on the host through its exec function,
// so every program they start directly must be granted by the module
// block's allow_exec (sh for scripts, python3 for Python code).
package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const common = `
	"location":{"type":"string","description":"directory the part owns (default DIR/parts/PART); removed on uninstall"},
	"environment":{"type":["string","object"],"description":"NAME=VALUE lines or an object, added to the commands' environment"},
	"timeout":{"type":["number","string"],"description":"per command, seconds or a duration (default 1h)"},`

// Register adds the recipes of this package to g.
func Register(g *recipe.Registry) {
	g.Register("build", recipe.Recipe{
		Description: "Run commands (plone.recipe.command), or the Python init/install/update code of slapos.recipe.build with the host's python3.",
		Schema: `{"type":"object","properties":{` + common + `
			"commands":{"type":"array","items":{"type":["array","string"],"items":{"type":"string"}},"description":"commands to run in order: argv lists, or strings run by sh -c"},
			"script":{"type":"string","description":"a shell script, run by sh -e -c"},
			"command":{"type":"string","description":"alias of script (plone.recipe.command)"},
			"update-command":{"type":"string","description":"script run on update instead of the install commands"},
			"dir":{"type":"string","description":"working directory (default: location)"},
			"stop-on-error":{"type":["boolean","string"],"description":"fail the part when a command fails (default true)"},
			"init":{"type":"string","description":"Python code run first (slapos.recipe.build); it may set options, which become outputs"},
			"install":{"type":"string","description":"Python code that must create location (slapos.recipe.build)"},
			"update":{"type":"string","description":"Python code run when install is not set (slapos.recipe.build)"},
			"buildout":{"type":"object","additionalProperties":{"type":"object"},"description":"the sections the Python code reads as self.buildout[NAME]: NAME = part.NAME"},
			"keep-on-error":{"type":["boolean","string"],"description":"keep location and temporary files when the Python install fails"},
			"slapos_promise":{"type":"string","description":"file:PATH, statlib:PATH, dynlib:PATH, directory:PATH lines checked under location after install"}
		},"anyOf":[{"required":["commands"]},{"required":["script"]},{"required":["command"]},{"required":["init"]},{"required":["install"]},{"required":["update"]}]}`,
		Outputs: []string{"location"},
		Install: buildInstall,
		Update:  buildUpdate,
	})
	registerCMMI(g)
	registerRubygems(g)
}

type runner struct {
	ctx     recipe.Context
	env     map[string]string
	prelude string // sh code exporting the variables that refer to others
	timeout time.Duration
	msgs    []string
}

// splitEnv keeps plain values the host passes for its exec and turns
// the other variables, and values with
// slapos.recipe.cmmi's %(NAME)s references to the inherited environment
// (PATH=/opt/x/bin:%(PATH)s) into sh code: only the host knows the
// environment they refer to, so a granted sh expands them. As in Python's
// %-formatting, %% is a literal %.
func splitEnv(env map[string]string) (plain map[string]string, prelude string) {
	plain = map[string]string{}
	var b strings.Builder
	for _, k := range fsx.SortedKeys(env) {
		v := env[k]
		q, refs := shellValue(v)
		if refs == 0 && hostEnv(k) {
			plain[k] = strings.ReplaceAll(v, "%%", "%")
			continue
		}
		fmt.Fprintf(&b, "%s=\"%s\"; export %s; ", k, q, k)
	}
	return plain, b.String()
}

// hostEnv reports whether the host passes variable k to a command without
// a grant (docs/wasm-abi.md §6: what builds read); any other variable of
// the profile's environment is exported by the granted sh, which may set
// anything, rather than refused by the host.
func hostEnv(k string) bool {
	switch k {
	case "CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS",
		"PKG_CONFIG_PATH", "MAKEFLAGS", "SOURCE_DATE_EPOCH", "LANG", "LANGUAGE", "TZ":
		return true
	}
	return strings.HasPrefix(k, "LC_")
}

// shellValue returns v for the inside of a double-quoted sh string, with
// each %(NAME)s written ${NAME} and %% written %, and how many references
// it had. A regexp would do, at the price of half a megabyte of module.
func shellValue(v string) (string, int) {
	var q strings.Builder
	refs := 0
	lit := 0 // start of the pending literal text
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 >= len(v) {
			continue
		}
		if v[i+1] == '%' {
			q.WriteString(dquote(v[lit:i]) + "%")
			i++
			lit = i + 1
			continue
		}
		if v[i+1] != '(' {
			continue
		}
		j := strings.Index(v[i:], ")s")
		if j < 0 || !fsx.ValidName(v[i+2:i+j]) {
			continue
		}
		q.WriteString(dquote(v[lit:i]) + "${" + v[i+2:i+j] + "}")
		refs++
		i += j + 1
		lit = i + 1
	}
	q.WriteString(dquote(v[lit:]))
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
		return nil, errors.New("nothing to run: set commands, script or command (or the Python init, install or update of slapos.recipe.build)")
	}
	return cmds, nil
}

func buildInstall(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	if isPython(opts) {
		return pythonBuild(ctx, opts)
	}
	cmds, err := commands(opts)
	if err != nil {
		return recipe.Result{}, err
	}
	return runBuild(ctx, opts, cmds)
}

// buildUpdate runs update-command when set (plone.recipe.command's
// behaviour), else the install commands again.
func buildUpdate(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	if isPython(opts) {
		// buildout would uninstall and install a part whose options
		// changed: its update code runs only for unchanged parts.
		return pythonBuild(ctx, opts)
	}
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
