package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/slapnode/slapnode/hcl/buildout"
	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/node/local"
)

// The corpus report of docs/convert.md (`slapnode convert --report DIR`):
// how much of a SlapOS checkout (or of the public corpus) converts, loads
// and plans, and how many recipe uses the converter maps. Plans are made
// for real, by the engine, offline: a plan downloads nothing and runs no
// recipe.

// releaseOutcome is what happened to one release.
type releaseOutcome struct {
	Path      string // relative to the corpus
	Converted bool
	Missing   int    // extends entries naming files the corpus lacks
	Loads     bool   // the converted profile loads (profile.Load)
	Plans     bool   // `slapnode plan` succeeds
	Blocker   string // the first error of the plan, by cause
	Detail    string // the error itself, shortened
	// PlansGiven: with Missing > 0, whether the plan succeeds once the
	// missing files are stood in by empty ones (a measurement only: what
	// else than the missing files blocks the release).
	PlansGiven   bool
	GivenBlocker string
	results      []*buildout.Result
}

// corpusReport measures dirs (one SlapOS checkout, or corpus folders of
// the same layout to overlay, e.g. the public and the held-out sets) and
// writes the report, in Markdown.
func corpusReport(ctx context.Context, dirs []string, w io.Writer) error {
	tmp, err := os.MkdirTemp("", "slapnode-report-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var names []string
	for _, d := range dirs {
		names = append(names, "`"+filepath.Base(filepath.Clean(d))+"`")
	}
	dir, err := filepath.Abs(dirs[0])
	if err != nil {
		return err
	}
	if len(dirs) > 1 {
		dir = filepath.Join(tmp, "corpus")
		if err := overlay(dir, dirs); err != nil {
			return err
		}
	}
	n, err := local.Open(ctx, filepath.Join(tmp, "node"), nil)
	if err != nil {
		return err
	}
	defer n.Close(context.WithoutCancel(ctx))

	releases, err := filepath.Glob(filepath.Join(dir, "software", "*", "software.cfg"))
	if err != nil {
		return err
	}
	sort.Strings(releases)
	measure := func(set string, files []string) ([]*releaseOutcome, error) {
		var out []*releaseOutcome
		for i, f := range files {
			o, err := measureRelease(ctx, n, dir, f, filepath.Join(tmp, set, fmt.Sprint(i)))
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		return out, nil
	}
	rels, err := measure("releases", releases)
	if err != nil {
		return err
	}
	complete, haveManifest, err := completeProfiles(dir)
	if err != nil {
		return err
	}
	comps, err := measure("complete", complete)
	if err != nil {
		return err
	}
	uses, err := recipeUses(dir)
	if err != nil {
		return err
	}

	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	count := func(list []*releaseOutcome, f func(*releaseOutcome) bool) int {
		c := 0
		for _, o := range list {
			if f(o) {
				c++
			}
		}
		return c
	}
	pct := func(a, b int) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
	}
	p("Measured by `slapnode convert --report` on %s. Every release is converted\n", strings.Join(names, " overlaid with "))
	p("with its extends closure (`slapnode convert -o DIR software.cfg`), then planned\n")
	p("by the engine as `slapnode plan DIR/.../software.hcl` does: offline, nothing is\n")
	p("downloaded and no recipe runs.\n\n")

	p("### 7.1 Software releases (`software/*/software.cfg`)\n\n")
	p("| | releases | share |\n|---|---:|---:|\n")
	total := len(rels)
	row := func(label string, k int) { p("| %s | %d | %s |\n", label, k, pct(k, total)) }
	row("in the corpus", total)
	row("convert", count(rels, func(o *releaseOutcome) bool { return o.Converted }))
	row("extends closure complete in the corpus", count(rels, func(o *releaseOutcome) bool { return o.Missing == 0 }))
	row("load", count(rels, func(o *releaseOutcome) bool { return o.Loads }))
	row("**plan**", count(rels, func(o *releaseOutcome) bool { return o.Plans }))
	withMissing := count(rels, func(o *releaseOutcome) bool { return o.Missing > 0 })
	if withMissing > 0 {
		row("plan once the closure files the corpus lacks are given, empty", count(rels, func(o *releaseOutcome) bool { return o.Plans || o.PlansGiven }))
	}
	p("\n")
	if withMissing > 0 {
		p("%d of these releases extend files that are not in the folders measured (the public\n", withMissing)
		p("corpus holds 30%% of SlapOS's profiles), so they cannot load as they are. The last row measures what else\n")
		p("blocks them: the missing files are stood in by empty ones (in the measurement's\n")
		p("temporary copy only), and what is then left is either a consequence of their\n")
		p("absence (a part or macro only they define) or a blocker of its own.\n\n")
	}
	p("| release | closure files missing | plan | first blocker | with the missing files given, empty |\n|---|---:|---|---|---|\n")
	for _, o := range rels {
		plan := "no"
		if o.Plans {
			plan = "**yes**"
		}
		given := ""
		if o.Missing > 0 {
			given = "plans"
			if !o.PlansGiven {
				given = o.GivenBlocker
			}
		}
		p("| `%s` | %d | %s | %s | %s |\n", o.Path, o.Missing, plan, o.Blocker, given)
	}
	p("\n")

	if haveManifest {
		p("### 7.2 Releases whose extends closure is complete\n\n")
		p("Every buildout profile of the corpus whose closure is in the corpus (MANIFEST.tsv:\n")
		p("`complete` or `none`) and that is a software profile (not `instance*`, `template*`\n")
		p("or `*.in`), converted and planned as a release of its own.\n\n")
		ct := len(comps)
		p("| | profiles | share |\n|---|---:|---:|\n")
		p("| measured | %d | %s |\n", ct, pct(ct, ct))
		p("| convert | %d | %s |\n", count(comps, func(o *releaseOutcome) bool { return o.Converted }), pct(count(comps, func(o *releaseOutcome) bool { return o.Converted }), ct))
		p("| load | %d | %s |\n", count(comps, func(o *releaseOutcome) bool { return o.Loads }), pct(count(comps, func(o *releaseOutcome) bool { return o.Loads }), ct))
		planned := count(comps, func(o *releaseOutcome) bool { return o.Plans })
		p("| **plan** | %d | %s |\n\n", planned, pct(planned, ct))
		if planned < ct {
			p("Blockers of the others (the first error of each plan), by cause:\n\n")
			writeBlockers(w, comps)
		}
	}

	// Every file converted above, once: what could not be carried over.
	var sum buildout.Summary
	seen := map[string]bool{}
	for _, o := range append(append([]*releaseOutcome{}, rels...), comps...) {
		for _, res := range o.results {
			if !seen[res.Path] {
				seen[res.Path] = true
				sum.Add(res, nil)
			}
		}
	}
	p("### 7.3 What could not be carried over\n\n")
	p("The files converted above, each counted once: %d files, %d converted to HCL (a jinja2\n", sum.Files, sum.Converted)
	p("template is not). Their warnings, by kind (§6):\n\n")
	p("| warning | count |\n|---|---:|\n")
	kinds := make([]string, 0, len(sum.Warnings))
	for k := range sum.Warnings {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if sum.Warnings[kinds[i]] != sum.Warnings[kinds[j]] {
			return sum.Warnings[kinds[i]] > sum.Warnings[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	for _, k := range kinds {
		p("| %s | %d |\n", k, sum.Warnings[k])
	}
	p("\n")

	p("### 7.4 Recipe uses\n\n")
	mapped, all := 0, 0
	unmapped := map[string]int{}
	for r, k := range uses {
		all += k
		if mappedRecipe(r) {
			mapped += k
		} else {
			unmapped[r] += k
		}
	}
	p("Every `recipe =` line of the corpus's profiles (templates included, empty recipes\n")
	p("excluded: they cancel a recipe), mapped by the converter's built-in table to a\n")
	p("cookbook recipe or to a form the node acts on (`NodeRecipes`: slapconfiguration,\n")
	p("switch-softwaretype, request, publish-early): **%d of %d (%s)**.\n\n", mapped, all, pct(mapped, all))
	if len(unmapped) > 0 {
		p("| unmapped recipe | uses |\n|---|---:|\n")
		keys := make([]string, 0, len(unmapped))
		for k := range unmapped {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if unmapped[keys[i]] != unmapped[keys[j]] {
				return unmapped[keys[i]] > unmapped[keys[j]]
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			p("| `%s` | %d |\n", k, unmapped[k])
		}
		p("\n")
	}
	return nil
}

// overlay copies the files of dirs into dst, in their layout (the later
// dirs' files win), and concatenates their MANIFEST.tsv.
func overlay(dst string, dirs []string) error {
	var manifest []string
	for i, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			r, err := filepath.Rel(d, p)
			if err != nil {
				return err
			}
			if r == "MANIFEST.tsv" {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				if i > 0 && len(lines) > 0 {
					lines = lines[1:] // the header once
				}
				manifest = append(manifest, lines...)
				return nil
			}
			return copyFile(p, filepath.Join(dst, r))
		})
		if err != nil {
			return err
		}
	}
	if len(manifest) > 0 {
		return os.WriteFile(filepath.Join(dst, "MANIFEST.tsv"), []byte(strings.Join(manifest, "\n")+"\n"), 0o644)
	}
	return nil
}

// writeBlockers tabulates the first blocker of each release that does not
// plan.
func writeBlockers(w io.Writer, list []*releaseOutcome) {
	by := map[string][]string{}
	for _, o := range list {
		if !o.Plans {
			by[o.Blocker] = append(by[o.Blocker], o.Path)
		}
	}
	causes := make([]string, 0, len(by))
	for c := range by {
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool {
		if len(by[causes[i]]) != len(by[causes[j]]) {
			return len(by[causes[i]]) > len(by[causes[j]])
		}
		return causes[i] < causes[j]
	})
	fmt.Fprintf(w, "| cause | profiles | e.g. |\n|---|---:|---|\n")
	for _, c := range causes {
		fmt.Fprintf(w, "| %s | %d | `%s` |\n", c, len(by[c]), by[c][0])
	}
	fmt.Fprintln(w)
}

// measureRelease converts one release into out and plans it.
func measureRelease(ctx context.Context, n *local.Node, corpus, file, out string) (*releaseOutcome, error) {
	relPath, _ := filepath.Rel(corpus, file)
	o := &releaseOutcome{Path: relPath}
	rel, err := buildout.ConvertRelease([]string{file}, buildout.ConvertOptions{})
	if err != nil {
		return nil, err
	}
	o.results = rel.Results
	var root string
	var missing []string
	for _, res := range rel.Results {
		for _, w := range res.Warnings {
			if w.Kind == buildout.WarnMissingExtends {
				o.Missing++
			}
		}
		if res.HCL == nil {
			continue
		}
		r, err := filepath.Rel(rel.Dir, mustAbs(res.Output))
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(out, r)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, res.HCL, 0o644); err != nil {
			return nil, err
		}
		if mustAbs(res.Path) == file {
			root = dst
		}
	}
	for _, a := range rel.Assets {
		r, _ := filepath.Rel(rel.Dir, a)
		if err := copyFile(a, filepath.Join(out, r)); err != nil {
			return nil, err
		}
	}
	if err := rel.Errors[file]; err != nil || root == "" {
		o.Blocker = "not converted (a jinja2 template, or a parse error)"
		return o, nil
	}
	o.Converted = len(rel.Errors) == 0
	_, diags := profile.Load(root, profile.Software)
	o.Loads = !diags.HasErrors()
	for _, d := range diags {
		if d.Summary == "Cannot read profile" && d.Subject != nil {
			if m := missingPath.FindStringSubmatch(d.Detail); m != nil {
				missing = append(missing, m[1])
			}
		}
	}
	err = planOnce(ctx, n, root)
	o.Plans = err == nil
	o.Blocker, o.Detail = blocker(err, o.Missing > 0)
	if o.Missing == 0 || o.Plans {
		return o, nil
	}
	// Stand the missing files in by empty ones (here only) and plan again,
	// as many times as new missing files appear.
	for i := 0; i < 8 && len(missing) > 0; i++ {
		for _, m := range missing {
			if err := os.MkdirAll(filepath.Dir(m), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(m, []byte("# not in the corpus: stood in by an empty file for the measurement\n"), 0o644); err != nil {
				return nil, err
			}
		}
		_, diags := profile.Load(root, profile.Software)
		missing = nil
		for _, d := range diags {
			if m := missingPath.FindStringSubmatch(d.Detail); d.Summary == "Cannot read profile" && m != nil {
				missing = append(missing, m[1])
			}
		}
	}
	err = planOnce(ctx, n, root)
	o.PlansGiven = err == nil
	o.GivenBlocker, _ = blocker(err, true)
	return o, nil
}

var missingPath = regexp.MustCompile(`open (.*): no such file or directory`)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func planOnce(ctx context.Context, n *local.Node, root string) error {
	_, err := n.Apply(ctx, root, local.ApplyOptions{Plan: true})
	return err
}

// blocker names the cause of a plan error.
func blocker(err error, missing bool) (cause, detail string) {
	if err == nil {
		return "", ""
	}
	var perr *profile.Error
	summary, text, subject := "", err.Error(), ""
	if errors.As(err, &perr) && len(perr.Diags) > 0 {
		d := perr.Diags[0]
		for _, x := range perr.Diags {
			if x.Summary == "Cannot read profile" {
				d = x
				break
			}
		}
		summary, text = d.Summary, d.Summary+": "+d.Detail
		if r := d.Subject; r != nil {
			var src []byte
			if f := perr.Files[r.Filename]; f != nil {
				src = f.Bytes
			} else {
				src, _ = os.ReadFile(r.Filename)
			}
			if r.End.Byte <= len(src) && r.Start.Byte < r.End.Byte {
				subject = strings.Trim(string(src[r.Start.Byte:r.End.Byte]), `"`)
			}
		}
	}
	switch {
	case summary == "Cannot read profile":
		return "extends a file the corpus lacks", text
	case summary == "Unknown module" || summary == "Invalid recipe" || summary == "Unknown recipe":
		if subject != "" && !strings.ContainsAny(subject, "${}\n") {
			return "unmapped recipe `" + subject + "`", text
		}
		return "unmapped recipe", text
	case missing && (summary == "Unknown part in parts" || summary == "Reference to undeclared part" || summary == "Unknown macro"):
		return "a part or macro defined by a missing file", text
	case missing && (summary == "Unknown attribute" || summary == "Value not known yet"):
		// An option a missing file sets (buildout.hash.cfg gives the
		// templates their filename and md5sum): buildout fails the same
		// way when the option is missing.
		return "an option set by a missing file", text
	case summary == "Unknown part in parts" || summary == "Reference to undeclared part" || summary == "Unknown macro":
		return "a section no file of the closure defines (zc.buildout fails too)", text
	case summary == "Cannot extend URL":
		return "extends a URL (not in the extends cache)", text
	case summary != "":
		return summary, text
	}
	if i := strings.IndexByte(text, '\n'); i > 0 {
		text = text[:i]
	}
	return text, text
}

// completeProfiles lists the software profiles of MANIFEST.tsv whose
// closure is complete (or absent) in the corpus.
func completeProfiles(dir string) ([]string, bool, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) != 3 || (col[1] != "buildout" && col[1] != "buildout+inline-jinja") || (col[2] != "complete" && col[2] != "none") {
			continue
		}
		base := filepath.Base(col[0])
		if strings.HasPrefix(base, "instance") || strings.HasPrefix(base, "template") || strings.HasSuffix(base, ".in") {
			continue
		}
		out = append(out, filepath.Join(dir, col[0]))
	}
	sort.Strings(out)
	return out, true, sc.Err()
}

var recipeLine = regexp.MustCompile(`^recipe[ \t]*=(.*)$`)

// recipeUses counts the `recipe =` lines of every profile under dir (the
// other-format files of MANIFEST.tsv excepted), by recipe.
func recipeUses(dir string) (map[string]int, error) {
	skip := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.tsv")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if col := strings.Split(l, "\t"); len(col) == 3 && col[1] == "other-format" {
				skip[filepath.Join(dir, col[0])] = true
			}
		}
	}
	uses := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || skip[p] || !strings.Contains(d.Name(), ".cfg") || strings.HasSuffix(d.Name(), ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if m := recipeLine.FindStringSubmatch(strings.TrimRight(l, "\r")); m != nil {
				r := strings.TrimSpace(m[1])
				if r == "" {
					continue
				}
				if strings.Contains(r, "{{") || strings.Contains(r, "${") {
					r = "(computed: " + r + ")"
				}
				uses[r]++
			}
		}
		return nil
	})
	return uses, err
}

// mappedRecipe reports whether the converter maps a recipe entry point to
// a recipe of the cookbook, or to a form the node acts on
// (buildout.NodeRecipes).
func mappedRecipe(r string) bool { return buildout.Mapped(r) }
