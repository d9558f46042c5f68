package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it is read from the module build information.
var version = ""

func init() {
	register(&command{
		name:    "version",
		summary: "print the version of slapnode and of its built-in modules",
		usage: `Usage: slapnode version [--json]
       slapnode --version

Prints slapnode's version, the Go version it was built with, the built-in
WebAssembly modules embedded in this binary, and the install-time cache that
holds them compiled (../lib/slapnode/wazero from the binary, made by
'make build' or 'slapnode cache compile --dir'), if there is one.

Example:
  slapnode version
  slapnode version --json
`,
		run: func(env *cliEnv, args []string) error {
			fs := newFlags("version")
			asJSON := fs.Bool("json", false, "JSON output")
			pos, err := parseFlags(fs, args)
			if err != nil {
				return err
			}
			if len(pos) != 0 {
				return withCode(exitUsage, fmt.Errorf("unexpected argument %q", pos[0]))
			}
			v, goVersion := version, ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
				if v == "" {
					v = bi.Main.Version
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" && len(s.Value) >= 12 {
							v += " (" + s.Value[:12] + ")"
						}
					}
				}
			}
			if v == "" {
				v = "(devel)"
			}
			mods := builtin.Names()
			if *asJSON {
				return env.writeJSON(jsonVersion{Version: v, GoVersion: goVersion, BuiltinModules: nonNil(mods), RecipeABI: 1})
			}
			list := "none (built without 'make')"
			if len(mods) > 0 {
				list = strings.Join(mods, ", ")
			}
			// Where their machine code comes from on a machine whose
			// compilation cache is empty (docs/wasm-abi.md §8).
			compiled := "none beside this binary (compiled at a machine's first apply)"
			if dir, err := wasmhost.InstallCacheDir(); err != nil {
				compiled = err.Error()
			} else if dir != "" {
				compiled = dir
			}
			fmt.Fprintf(env.stdout, "slapnode %s\ngo %s\nbuilt-in modules: %s\ninstall-time compilation cache: %s\nrecipe ABI: 1\n", v, goVersion, list, compiled)
			return nil
		},
	})
}

// jsonVersion is version --json.
type jsonVersion struct {
	Version        string   `json:"version"`
	GoVersion      string   `json:"go_version"`
	BuiltinModules []string `json:"builtin_modules"`
	RecipeABI      int      `json:"recipe_abi"`
}
