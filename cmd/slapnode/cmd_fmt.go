package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/atomicfile"
)

func init() {
	register(&command{
		name:    "fmt",
		summary: "rewrite .hcl profiles in the canonical format (like terraform fmt)",
		usage: `Usage: slapnode fmt [-check] [-diff] [-recursive] [--json] [PATH...]

Rewrites HCL profiles in the canonical layout (hclwrite's, as terraform fmt):
aligned =, two-space indentation, normalised spacing. PATH is a .hcl file or a
directory, whose .hcl files are formatted (with -recursive, those of its
subdirectories too); default: the current directory. A file that does not
parse is reported with file:line:col and left as it is.

  -check       change nothing; list the files that are not formatted and exit 1
               if there is any
  -diff        print the changes as a unified diff
  -recursive   descend into subdirectories
  --json       print the result as JSON (docs/json.md)

Exit codes: 0 done (with -check: every file formatted), 1 a file does not parse,
or with -check a file is not formatted, 64 usage error.

Examples:
  slapnode fmt examples/helloweb
  slapnode fmt -check -recursive .
  slapnode fmt -diff software.hcl
`,
		run: runFmt,
	})
}

// jsonFmt is fmt --json.
type jsonFmt struct {
	Files   []jsonFmtFile `json:"files"`
	Changed int           `json:"changed"`
	Check   bool          `json:"check"`
}

type jsonFmtFile struct {
	Path    string `json:"path"`
	Changed bool   `json:"changed"` // not in the canonical format (rewritten unless -check)
	Diff    string `json:"diff,omitempty"`
}

func runFmt(env *cliEnv, args []string) error {
	fs := newFlags("fmt")
	check := fs.Bool("check", false, "list unformatted files, change nothing")
	diff := fs.Bool("diff", false, "print a unified diff")
	recursive := fs.Bool("recursive", false, "descend into subdirectories")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		pos = []string{"."}
	}
	var files []string
	for _, p := range pos {
		found, err := hclFiles(p, *recursive)
		if err != nil {
			return err
		}
		files = append(files, found...)
	}
	doc := jsonFmt{Files: []jsonFmtFile{}, Check: *check}
	var diags hcl.Diagnostics
	sources := map[string]*hcl.File{}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, d := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		if d.HasErrors() {
			diags = append(diags, d...)
			sources[path] = f
			continue
		}
		out := hclwrite.Format(src)
		entry := jsonFmtFile{Path: path, Changed: !bytes.Equal(out, src)}
		if entry.Changed {
			doc.Changed++
			if *diff {
				entry.Diff = udiff.Unified(path, path+" (formatted)", string(src), string(out))
			}
			if !*check {
				st, err := os.Stat(path)
				if err != nil {
					return err
				}
				if err := atomicfile.Write(path, out, st.Mode().Perm()); err != nil {
					return err
				}
			}
		}
		doc.Files = append(doc.Files, entry)
		if !*asJSON && entry.Changed {
			if *diff {
				fmt.Fprint(env.stdout, entry.Diff)
			} else {
				fmt.Fprintln(env.stdout, path)
			}
		}
	}
	if len(diags) > 0 {
		return &profile.Error{Diags: diags, Files: sources}
	}
	if *asJSON {
		if err := env.writeJSON(doc); err != nil {
			return err
		}
	}
	if *check && doc.Changed > 0 {
		return fmt.Errorf("%d of %d files are not formatted: run 'slapnode fmt' on them", doc.Changed, len(doc.Files))
	}
	return nil
}

// hclFiles lists the .hcl files of a path: the file itself, or those of a
// directory (and its subdirectories with recursive), sorted.
func hclFiles(path string, recursive bool) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && (!recursive || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".hcl") && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
