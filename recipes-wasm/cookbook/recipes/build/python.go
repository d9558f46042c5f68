package build

import (
	"fmt"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/pyshim"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// The Python mode of build: slapos.recipe.build's init, install and
// update options are Python code. The cookbook cannot run Python inside
// WebAssembly, so the code runs with the host's python3 and a shim
// offering the recipe's API (internal/pyshim), outside the sandbox: the
// module block must grant python3, and that grant lets the code do what
// the software (or partition) user may do.

func isPython(opts recipe.Options) bool {
	return opts.Has("init") || opts.Has("install") || opts.Has("update")
}

func pythonBuild(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	if opts.Has("commands") || opts.Has("script") || opts.Has("command") {
		return recipe.Result{}, fmt.Errorf("set either Python code (init, install, update) or commands (commands, script, command), not both")
	}
	strs := pyshim.Strings(opts, "buildout", "timeout")
	install := strs["install"] != ""
	def := fsx.PartDir(ctx)
	if l := strs["location"]; l != "" {
		strs["location"] = fsx.Resolve(ctx, l)
	}
	if install {
		loc := strs["location"]
		if loc == "" {
			loc = def
		}
		if loc == ctx.Dir() || loc == "/" {
			return recipe.Result{}, fmt.Errorf("location %s is the partition or software directory itself: a part owns its location and it is removed on uninstall", loc)
		}
		// buildout makes the parts directory before any part runs: the
		// shim does, as the user the code runs as (the partition's).
	}
	sections, err := pyshim.Sections(opts, "buildout")
	if err != nil {
		return recipe.Result{}, err
	}
	timeout, err := fsx.Duration(opts, "timeout", time.Hour)
	if err != nil {
		return recipe.Result{}, err
	}
	opt := pyshim.Values(opts, "buildout", "timeout")
	for k, v := range strs {
		opt[k] = v // location, resolved
	}
	req := pyshim.Request{Mode: "build", Name: ctx.Part, Options: opt, Buildout: sections, DefaultLocation: def}
	ctx.Log("running the Python code of %s with the host's python3", ctx.Part)
	res, err := pyshim.Run(ctx, req, ctx.Dir(), nil, timeout)
	if err != nil {
		return recipe.Result{}, fmt.Errorf("slapos.recipe.build code of part %s: %w", ctx.Part, err)
	}
	out := map[string]any{}
	for k, v := range res.Options {
		out[k] = v
	}
	var installed []string
	if loc, _ := res.Options["location"].(string); install && loc != "" {
		installed = append(installed, loc)
	}
	return recipe.Result{Outputs: out, Installed: installed, Messages: []string{"ran the Python code with python3"}}, nil
}
