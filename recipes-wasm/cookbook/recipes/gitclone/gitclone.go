// Package gitclone holds the cookbook's gitclone recipe
// (slapos.recipe.build:gitclone): a git working copy, made with the host's
// git through the exec host function (allow_exec = ["git"]).
package gitclone

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

const schema = `{"additionalProperties":false,"type":"object","required":["repository"],"properties":{
	"repository":{"type":"string","description":"URL or path of the repository"},
	"branch":{"type":"string","description":"branch to check out (default: the remote's default branch); empty is unset"},
	"revision":{"type":"string","description":"commit or tag to check out; wins over branch; empty is unset"},
	"location":{"type":"string","description":"the working copy (default DIR/parts/PART)"},
	"git-executable":{"type":"string","description":"git command (default git, which must be granted); a path runs through sh"},
	"git-command":{"type":"string","description":"alias of git-executable"},
	"develop":{"type":["boolean","string"],"description":"a working copy for development: kept as it is on later applies and on uninstall"},
	"ignore-ssl-certificate":{"type":["boolean","string"]},
	"ignore-cloning-submodules":{"type":["boolean","string"],"description":"do not clone submodules (cloned by default)"},
	"depth":{"type":["integer","string"],"description":"git clone --depth"},
	"shared":{"type":["boolean","string"],"description":"git clone --shared"},
	"sparse-checkout":{"type":"string","description":"patterns of a sparse checkout (.git/info/sparse-checkout)"},
	"timeout":{"type":["number","string"],"description":"per git command (default 1h)"}
}}`

// Register adds the gitclone recipe to g.
func Register(g *recipe.Registry) {
	g.Register("gitclone", recipe.Recipe{
		Description: "Clone a git repository with the host's git (slapos.recipe.build:gitclone).",
		Schema:      schema,
		Outputs:     []string{"location", "commit"},
		Install:     install,
	})
}

type gitRun struct {
	ctx     recipe.Context
	argv    []string
	timeout time.Duration
	msgs    []string
}

func (g *gitRun) run(dir string, args ...string) (string, error) {
	argv := append(append([]string{}, g.argv...), args...)
	g.ctx.Log("running git %s", strings.Join(args, " "))
	r, err := g.ctx.Run(argv, dir, map[string]string{"GIT_TERMINAL_PROMPT": "0"}, g.timeout)
	if err != nil {
		if strings.Contains(err.Error(), "not granted") {
			return "", fmt.Errorf("%w (gitclone runs the host's git: grant it with allow_exec = [\"git\"] in the cookbook's module block)", err)
		}
		return "", err
	}
	g.msgs = append(g.msgs, "git "+strings.Join(args, " "))
	return r.Output, nil
}

func install(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	repo, err := opts.String("repository")
	if err != nil {
		return recipe.Result{}, err
	}
	if strings.TrimSpace(repo) == "" {
		return recipe.Result{}, errors.New(`option "repository" is empty`)
	}
	branch, _ := opts.StringOr("branch", "")
	revision, _ := opts.StringOr("revision", "")
	branch, revision = strings.TrimSpace(branch), strings.TrimSpace(revision)
	loc := fsx.PartDir(ctx)
	if l, _ := opts.StringOr("location", ""); l != "" {
		loc = fsx.Resolve(ctx, l)
	}
	if loc == ctx.Dir() || loc == "/" {
		return recipe.Result{}, fmt.Errorf("location %s is the partition or software directory itself: clone into a directory of its own", loc)
	}
	exe, _ := opts.StringOr("git-executable", "")
	if exe == "" {
		exe, _ = opts.StringOr("git-command", "git")
	}
	exe = strings.TrimSpace(exe)
	argv := []string{exe}
	if strings.Contains(exe, "/") {
		// A git built by the release: the host runs only granted names, so
		// a granted sh starts it.
		argv = []string{"sh", "-c", `exec "$0" "$@"`, exe}
	}
	timeout, err := fsx.Duration(opts, "timeout", time.Hour)
	if err != nil {
		return recipe.Result{}, err
	}
	g := &gitRun{ctx: ctx, argv: argv, timeout: timeout}
	develop, err := opts.Bool("develop", false)
	if err != nil {
		return recipe.Result{}, err
	}
	if develop {
		if _, err := os.Stat(loc); err == nil {
			// A development working copy is the developer's: never reset.
			ctx.Log("%s exists and develop is set: left as it is", loc)
			return result(g, loc, false)
		}
	}
	if revision != "" && branch != "" {
		ctx.LogLevel(recipe.Warn, "\"branch\" parameter with value %q is ignored. Checking out to revision %s", branch, revision)
		branch = ""
	}
	clone := []string{"clone"}
	if b, _ := opts.Bool("ignore-ssl-certificate", false); b {
		clone = append([]string{"-c", "http.sslVerify=false"}, clone...)
	}
	if branch != "" {
		clone = append(clone, "--branch", branch)
	}
	if d, err := opts.StringOr("depth", ""); err != nil {
		return recipe.Result{}, err
	} else if strings.TrimSpace(d) != "" {
		clone = append(clone, "--depth", strings.TrimSpace(d))
	}
	if b, _ := opts.Bool("shared", false); b {
		clone = append(clone, "--shared")
	}
	sparse, _ := opts.StringOr("sparse-checkout", "")
	sparse = strings.TrimSpace(sparse)
	if sparse != "" {
		clone = append(clone, "--no-checkout")
	}
	// A clone replaces what the location held (buildout uninstalled it).
	if err := os.RemoveAll(loc); err != nil {
		return recipe.Result{}, fmt.Errorf("emptying %s: %w", loc, err)
	}
	if err := fsx.MkdirAll(ctx, filepath.Dir(loc)); err != nil {
		return recipe.Result{}, err
	}
	clone = append(clone, "--", repo, loc)
	if _, err := g.run(filepath.Dir(loc), clone...); err != nil {
		os.RemoveAll(loc)
		return recipe.Result{Messages: g.msgs}, fmt.Errorf("cloning %s: %w", repo, err)
	}
	fail := func(err error) (recipe.Result, error) {
		os.RemoveAll(loc)
		return recipe.Result{Messages: g.msgs}, err
	}
	if sparse != "" {
		if _, err := g.run(loc, "config", "core.sparseCheckout", "true"); err != nil {
			return fail(err)
		}
		if err := fsx.WriteFile(ctx, filepath.Join(loc, ".git", "info", "sparse-checkout"), []byte(sparse+"\n"), 0o644); err != nil {
			return fail(err)
		}
		if revision == "" {
			if _, err := g.run(loc, "checkout", "--quiet"); err != nil {
				return fail(err)
			}
		}
	}
	if revision != "" {
		if _, err := g.run(loc, "reset", "--hard", "--quiet", revision); err != nil {
			return fail(fmt.Errorf("checking out revision %s: %w", revision, err))
		}
	}
	if b, _ := opts.Bool("ignore-cloning-submodules", false); !b {
		if _, err := os.Stat(filepath.Join(loc, ".gitmodules")); err == nil {
			if _, err := g.run(loc, "submodule", "update", "--init", "--recursive"); err != nil {
				return fail(err)
			}
		}
	}
	return result(g, loc, !develop)
}

func result(g *gitRun, loc string, owned bool) (recipe.Result, error) {
	out, err := g.run(loc, "rev-parse", "HEAD")
	if err != nil {
		return recipe.Result{Messages: g.msgs}, err
	}
	res := recipe.Result{
		Outputs:  map[string]any{"location": loc, "commit": strings.TrimSpace(out)},
		Messages: g.msgs,
	}
	if owned {
		// A develop working copy is kept on uninstall, as SlapOS keeps it.
		res.Installed = []string{loc}
	}
	return res, nil
}
