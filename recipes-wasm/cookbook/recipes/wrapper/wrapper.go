// Package wrapper holds the cookbook's wrapper recipe
// (slapos.cookbook:wrapper): an executable shell launcher for a command.
package wrapper

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const schema = `{"additionalProperties":false,"type":"object","required":["command-line","wrapper-path"],"properties":{
	"command-line":{"type":["string","array"],"items":{"type":"string"},"description":"the command: a list of words, or a string split like sh (no expansion)"},
	"wrapper-path":{"type":"string","description":"where to write the launcher"},
	"environment":{"type":["string","object"],"description":"NAME=VALUE lines or an object"},
	"parameters-extra":{"type":["boolean","string"],"description":"pass the wrapper's own arguments on to the command"},
	"pidfile":{"type":"string","description":"refuse to start while the process recorded there runs; record the new one"},
	"wait-for-files":{"type":["string","array"],"items":{"type":"string"},"description":"files to wait for before starting"},
	"hash-files":{"type":["string","array"],"items":{"type":"string"},"x-content":true,"description":"files whose content is hashed into the wrapper, so it changes (and the service restarts) when they do"},
	"hash-existing-files":{"type":["string","array"],"items":{"type":"string"},"x-content":true,"description":"like hash-files, skipping files that do not exist"},
	"private-tmpfs":{"type":["string","array"],"description":"not supported: slapnode isolates partitions itself"}
}}`

// Register adds the wrapper recipe to g.
func Register(g *recipe.Registry) {
	g.Register("wrapper", recipe.Recipe{
		Description: "Write an executable shell launcher for a command (slapos.cookbook:wrapper).",
		Schema:      schema,
		Outputs:     []string{"location", "wrapper-path", "hash"},
		Install:     install,
	})
}

func install(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	argv, err := fsx.Argv(opts, "command-line")
	if err != nil {
		return recipe.Result{}, err
	}
	if len(argv) == 0 {
		return recipe.Result{}, errors.New(`option "command-line" is empty`)
	}
	path, err := opts.String("wrapper-path")
	if err != nil {
		return recipe.Result{}, err
	}
	path = fsx.Resolve(ctx, path)
	if opts.Has("private-tmpfs") {
		return recipe.Result{}, errors.New(`option "private-tmpfs" is not supported: slapnode isolates each partition itself; remove the option`)
	}
	env, err := fsx.Env(opts, "environment")
	if err != nil {
		return recipe.Result{}, err
	}
	extra, err := opts.Bool("parameters-extra", false)
	if err != nil {
		return recipe.Result{}, err
	}
	pidfile, err := opts.StringOr("pidfile", "")
	if err != nil {
		return recipe.Result{}, err
	}
	wait, err := opts.StringList("wait-for-files")
	if err != nil {
		return recipe.Result{}, err
	}
	hash, err := hashFiles(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}

	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# Written by slapnode cookbook:wrapper for part %s: do not edit.\n", ctx.Part)
	if hash != "" {
		// The hash of the hash-files makes the wrapper differ when they
		// change, which is what restarts the service using it.
		fmt.Fprintf(&b, "# hash-files: %s\n", hash)
	}
	for _, k := range fsx.SortedKeys(env) {
		if !fsx.ValidName(k) {
			return recipe.Result{}, fmt.Errorf("option \"environment\": %q is not a valid variable name", k)
		}
		fmt.Fprintf(&b, "%s=%s\nexport %s\n", k, fsx.ShellQuote(env[k]), k)
	}
	for _, f := range wait {
		q := fsx.ShellQuote(fsx.Resolve(ctx, f))
		fmt.Fprintf(&b, "while [ ! -e %s ]; do echo \"waiting for %%s\" %s >&2; sleep 1; done\n", q, q)
	}
	if pidfile != "" {
		q := fsx.ShellQuote(fsx.Resolve(ctx, pidfile))
		fmt.Fprintf(&b, "if [ -s %s ] && kill -0 \"$(cat %s)\" 2>/dev/null; then\n", q, q)
		fmt.Fprintf(&b, "  echo \"already running with pid $(cat %s)\" >&2\n  exit 1\nfi\n", q)
		fmt.Fprintf(&b, "echo $$ > %s\n", q)
	}
	words := make([]string, len(argv))
	for i, w := range argv {
		words[i] = fsx.ShellQuote(w)
	}
	b.WriteString("exec " + strings.Join(words, " "))
	if extra {
		b.WriteString(` "$@"`)
	}
	b.WriteString("\n")

	if err := fsx.WriteFile(ctx, path, []byte(b.String()), 0o755); err != nil {
		return recipe.Result{}, err
	}
	out := map[string]any{"location": path, "wrapper-path": path}
	if hash != "" {
		out["hash"] = hash
	}
	return recipe.Result{Outputs: out, Installed: []string{path}}, nil
}

// hashFiles hashes the content of hash-files (which must exist) and
// hash-existing-files (skipped when absent), in order.
func hashFiles(ctx recipe.Context, opts recipe.Options) (string, error) {
	h := sha256.New()
	n := 0
	for _, key := range []string{"hash-files", "hash-existing-files"} {
		files, err := opts.StringList(key)
		if err != nil {
			return "", err
		}
		for _, f := range files {
			p := fsx.Resolve(ctx, f)
			data, err := os.ReadFile(p)
			if err != nil {
				if key == "hash-existing-files" && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return "", fmt.Errorf("option %q: %w", key, err)
			}
			fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
			h.Write(data)
			n++
		}
	}
	if n == 0 {
		return "", nil
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
