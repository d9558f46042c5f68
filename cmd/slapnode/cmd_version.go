package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/slapnode/slapnode/runtime/builtin"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it is read from the module build information.
var version = ""

func init() {
	register(&command{
		name:    "version",
		summary: "print the version of slapnode and of its built-in modules",
		usage: `Usage: slapnode version

Prints slapnode's version, the Go version it was built with, and the built-in
WebAssembly modules embedded in this binary.

Example:
  slapnode version
`,
		run: func(env *cliEnv, args []string) error {
			fs := newFlags("version")
			if _, err := parseFlags(fs, args); err != nil {
				return err
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
			list := "none (built without 'make')"
			if len(mods) > 0 {
				list = strings.Join(mods, ", ")
			}
			fmt.Fprintf(env.stdout, "slapnode %s\ngo %s\nbuilt-in modules: %s\nrecipe ABI: 1\n", v, goVersion, list)
			return nil
		},
	})
}
