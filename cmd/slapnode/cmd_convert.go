package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/slapnode/slapnode/hcl/buildout"
	"github.com/slapnode/slapnode/internal/atomicfile"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert buildout .cfg profiles to slapnode HCL",
		usage: `Usage: slapnode convert FILE... [-o DIR] [--flatten] [--check] [--recipe-map OLD=NEW]... [--no-adapt] [--json]
       slapnode convert --resolve FILE [--json]
       slapnode convert --report DIR...

Converts legacy SlapOS / zc.buildout profiles into slapnode HCL profiles
(docs/convert.md). Each FILE, and every file its extends closure names, gives
one .hcl file (software.cfg -> software.hcl, instance.cfg.in -> instance.hcl.in)
next to it, or under DIR with -o: the layout below their common directory is
kept, so relative extends between converted files still resolve, and the
files the profiles read (templates, patches, hooks) are copied there too. A
software profile gets a software block (its directory's name; the git tag or
commit, else 0.0.0). Everything that cannot be carried over exactly is
reported as a warning with file and line; jinja2 templates are reported and
not converted (render them first). A summary line ends the run.

Flags:
  -o DIR              write the .hcl files, and copy the files they read, under DIR
  --no-closure        convert only the FILEs, not the files they extend
  --flatten           one self-contained file per FILE: its extends closure merged,
                      <= macros expanded, += / -= applied
  --check             convert without writing; exit 1 if there is any warning
  --recipe-map OLD=NEW  map a recipe entry point (egg:entry) to MODULE:RECIPE
                      (repeatable; adds to the built-in table)
  --kind KIND         software or instance: what ${buildout:directory} becomes
                      (software.path or partition.path); default: guessed from
                      the file name (instance*, template*, *.in are instances)
  --no-adapt          keep the options of recipes mapped to the cookbook as buildout
                      names them (default: rewritten into the cookbook's form,
                      e.g. a jinja2 context becomes vars = {...}; docs/convert.md §4)
  --extends-cache DIR directory holding extends URLs, saved under md5(URL)
  --resolve           print the fully resolved options of every section of FILE
                      (extends, macros, substitution), like buildout annotate
  --report            DIR is a SlapOS checkout (or the corpus; several DIRs of the
                      same layout are overlaid): convert every
                      software/*/software.cfg with its closure, plan it (offline,
                      by the engine) and print the Markdown report of
                      docs/convert.md §7
  --json              print the files, their warnings and the summary (or, with
                      --resolve, the sections) as JSON
  -v                  also list the output files and the unmapped recipes by frequency

Examples:
  slapnode convert software/helloweb/software.cfg
  slapnode convert -o /tmp/hcl component/*/buildout.cfg
  slapnode convert --check --recipe-map peerbench.recipes:mkdir=cookbook:mkdirectory buildout.cfg
  slapnode convert --flatten stack/slapos.cfg -o /tmp/flat
  slapnode convert --resolve stack/slapos.cfg
`,
		run: runConvert,
	})
}

func runConvert(env *cliEnv, args []string) error {
	fs := newFlags("convert")
	outDir := fs.String("o", "", "output directory")
	flatten := fs.Bool("flatten", false, "merge the extends closure into one file")
	check := fs.Bool("check", false, "exit non-zero on any warning; write nothing")
	resolve := fs.Bool("resolve", false, "print the resolved options of every section")
	kind := fs.String("kind", "", "software or instance")
	noAdapt := fs.Bool("no-adapt", false, "keep the options of mapped recipes as buildout names them")
	cache := fs.String("extends-cache", "", "directory of cached extends URLs")
	only := fs.Bool("no-closure", false, "convert only the FILEs, not the files they extend")
	report := fs.Bool("report", false, "measure a SlapOS checkout: convert and plan its releases")
	var maps stringList
	fs.Var(&maps, "recipe-map", "OLD=NEW recipe mapping (repeatable)")
	asJSON := fs.Bool("json", false, "JSON output")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return withCode(exitUsage, errors.New("no FILE given (see 'slapnode help convert')"))
	}
	if *report {
		ctx, cancel := signalContext()
		defer cancel()
		return corpusReport(ctx, files, env.stdout)
	}
	if *kind != "" && *kind != "software" && *kind != "instance" {
		return withCode(exitUsage, fmt.Errorf("--kind %q: want software or instance", *kind))
	}
	copts := buildout.ConvertOptions{RecipeMap: map[string]string{}, Kind: *kind, NoAdapt: *noAdapt}
	for _, m := range maps {
		old, nw, ok := strings.Cut(m, "=")
		if !ok || old == "" || !strings.Contains(nw, ":") {
			return withCode(exitUsage, fmt.Errorf("--recipe-map %q: want OLD=MODULE:RECIPE, e.g. peerbench.recipes:mkdir=cookbook:mkdirectory", m))
		}
		copts.RecipeMap[strings.TrimSpace(old)] = strings.TrimSpace(nw)
	}
	lopts := buildout.LoadOptions{ExtendsCache: *cache}

	if *resolve {
		if len(files) != 1 {
			return withCode(exitUsage, errors.New("--resolve takes exactly one FILE"))
		}
		cfg, err := buildout.Load(files[0], lopts)
		if err != nil {
			return err
		}
		if *asJSON {
			return env.writeJSON(resolvedJSON(cfg.Resolve()))
		}
		return buildout.WriteAnnotated(env.stdout, cfg.Resolve())
	}

	cr := &convertRun{env: env, asJSON: *asJSON, doc: jsonConvert{Files: []jsonConvertFile{}}}
	sum := &cr.sum
	if *flatten {
		common, err := commonDir(files)
		if err != nil {
			return err
		}
		for _, file := range files {
			res, err := buildout.ConvertClosure(file, lopts, copts)
			if err := cr.write(file, res, err, common, *outDir, *check); err != nil {
				return err
			}
		}
		return cr.done(*check)
	}
	roots := files
	if *only {
		roots = nil
	}
	var rel *buildout.Release
	if roots != nil {
		if rel, err = buildout.ConvertRelease(roots, copts); err != nil {
			return err
		}
	} else {
		rel = &buildout.Release{Errors: map[string]error{}}
		for _, file := range files {
			src, err := os.ReadFile(file)
			var res *buildout.Result
			if err == nil {
				res, err = buildout.ConvertFile(file, src, copts)
			}
			if err != nil {
				rel.Errors[file] = err
			} else {
				rel.Results = append(rel.Results, res)
			}
		}
		if rel.Dir, err = commonDir(files); err != nil {
			return err
		}
	}
	// -o keeps the layout of the files below their common directory, so
	// relative extends between converted files still point at each other.
	for _, file := range sortedErrKeys(rel.Errors) {
		if err := cr.write(file, nil, rel.Errors[file], rel.Dir, *outDir, *check); err != nil {
			return err
		}
	}
	for _, res := range rel.Results {
		if err := cr.write(res.Path, res, nil, rel.Dir, *outDir, *check); err != nil {
			return err
		}
	}
	if *outDir != "" && !*check {
		for _, a := range rel.Assets {
			r, err := filepath.Rel(rel.Dir, a)
			if err != nil || !filepath.IsLocal(r) {
				return fmt.Errorf("copy %s: not below %s", a, rel.Dir)
			}
			dst := filepath.Join(*outDir, r)
			if err := copyFile(a, dst); err != nil {
				return fmt.Errorf("copy %s: %w", a, err)
			}
			if env.verbose {
				fmt.Fprintf(env.stderr, "%s -> %s\n", a, dst)
			}
		}
	}
	sum.Copied = len(rel.Assets)
	return cr.done(*check)
}

// convertRun collects what a conversion reports: on stderr and stdout, or
// as one JSON document (docs/json.md).
type convertRun struct {
	env    *cliEnv
	asJSON bool
	sum    buildout.Summary
	doc    jsonConvert
}

// write reports one conversion and writes its HCL (unless check).
func (cr *convertRun) write(file string, res *buildout.Result, err error, common, outDir string, check bool) error {
	env := cr.env
	cr.sum.Add(res, err)
	jf := jsonConvertFile{Input: file, Warnings: []jsonConvertWarning{}}
	defer func() { cr.doc.Files = append(cr.doc.Files, jf) }()
	if err != nil {
		jf.Error = err.Error()
		if !cr.asJSON {
			fmt.Fprintf(env.stderr, "%v\n", err)
		}
		return nil
	}
	for _, w := range res.Warnings {
		if cr.asJSON {
			jf.Warnings = append(jf.Warnings, jsonConvertWarning{File: w.Pos.File, Line: w.Pos.Line, Column: w.Pos.Col, Kind: w.Kind, Message: w.Msg})
		} else {
			fmt.Fprintln(env.stderr, w.String())
		}
	}
	if res.HCL == nil || check {
		return nil
	}
	out := res.Output
	if outDir != "" {
		abs, err := filepath.Abs(out)
		if err != nil {
			return fmt.Errorf("output for %s: %w", res.Path, err)
		}
		rel, err := filepath.Rel(common, abs)
		if err != nil {
			rel = filepath.Base(abs)
		}
		out = filepath.Join(outDir, rel)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := atomicfile.Write(out, res.HCL, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	jf.Output = out
	if env.verbose && !cr.asJSON {
		fmt.Fprintf(env.stderr, "%s -> %s\n", res.Path, out)
	}
	return nil
}

func (cr *convertRun) done(check bool) error {
	env, sum := cr.env, &cr.sum
	if cr.asJSON {
		cr.doc.Summary = jsonConvertSummary{Files: sum.Files, Converted: sum.Converted, Failed: sum.Failed, Copied: sum.Copied,
			WarningsByKind: countsJSON(sum.Warnings), UnmappedRecipes: []jsonCount{}}
		for _, r := range sum.UnmappedByFrequency() {
			cr.doc.Summary.UnmappedRecipes = append(cr.doc.Summary.UnmappedRecipes, jsonCount{Name: r, Count: sum.Unmapped[r]})
		}
		if err := env.writeJSON(cr.doc); err != nil {
			return err
		}
	} else {
		if env.verbose && len(sum.Unmapped) > 0 {
			var parts []string
			for _, r := range sum.UnmappedByFrequency() {
				parts = append(parts, fmt.Sprintf("%s %d", r, sum.Unmapped[r]))
			}
			fmt.Fprintln(env.stdout, "unmapped recipes (sections): "+strings.Join(parts, ", "))
		}
		fmt.Fprintln(env.stdout, "convert: "+sum.String())
	}
	if sum.Failed > 0 {
		return withCode(exitFailure, fmt.Errorf("%d of %d files could not be converted (errors above)", sum.Failed, sum.Files))
	}
	if check && len(sum.Warnings) > 0 {
		return withCode(exitFailure, errors.New("--check: warnings above"))
	}
	return nil
}

func sortedErrKeys(m map[string]error) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// copyFile copies a file the profiles read beside the converted HCL.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(dst, b, st.Mode().Perm())
}

func commonDir(files []string) (string, error) {
	common := ""
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		d := filepath.Dir(abs)
		if common == "" {
			common = d
			continue
		}
		for common != "/" && d != common && !strings.HasPrefix(d, common+string(filepath.Separator)) {
			common = filepath.Dir(common)
		}
	}
	return common, nil
}

// jsonConvert is convert --json.
type jsonConvert struct {
	Files   []jsonConvertFile  `json:"files"`
	Summary jsonConvertSummary `json:"summary"`
}

type jsonConvertFile struct {
	Input string `json:"input"`
	// Output is the .hcl file written ("" when none was: --check, a
	// template, an error).
	Output   string               `json:"output,omitempty"`
	Warnings []jsonConvertWarning `json:"warnings"`
	Error    string               `json:"error,omitempty"`
}

type jsonConvertWarning struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

type jsonConvertSummary struct {
	Files           int         `json:"files"`
	Converted       int         `json:"converted"`
	Failed          int         `json:"failed"`
	Copied          int         `json:"copied"`
	WarningsByKind  []jsonCount `json:"warnings_by_kind"`
	UnmappedRecipes []jsonCount `json:"unmapped_recipes"`
}

type jsonCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func countsJSON(m map[string]int) []jsonCount {
	out := []jsonCount{}
	for k, n := range m {
		out = append(out, jsonCount{k, n})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// jsonResolved is convert --resolve --json: every section's options as
// buildout holds them.
type jsonResolved struct {
	Sections []jsonResolvedSection `json:"sections"`
}

type jsonResolvedSection struct {
	Name    string            `json:"name"`
	Options map[string]string `json:"options"`
	Error   string            `json:"error,omitempty"`
}

func resolvedJSON(res map[string]*buildout.ResolvedSection) jsonResolved {
	out := jsonResolved{Sections: []jsonResolvedSection{}}
	for name, sec := range res {
		js := jsonResolvedSection{Name: name, Options: sec.Options}
		if js.Options == nil {
			js.Options = map[string]string{}
		}
		if sec.Err != nil {
			js.Error = sec.Err.Error()
		}
		out.Sections = append(out.Sections, js)
	}
	sort.Slice(out.Sections, func(a, b int) bool { return out.Sections[a].Name < out.Sections[b].Name })
	return out
}
