// Package release decides whether a software profile is a *frozen
// release*: one that installs the same bits today and in a year, on any
// node. Check refuses whatever can change under a user's feet — a download
// or module without a checksum, an extends URL without one, a floating
// version or branch reference (git refs must be tags or commit ids), and a
// command run by a recipe that the profile does not pin — and says where
// each problem is (file:line:col) and how to fix it. `slapnode release
// check` prints the problems; `slapnode apply --release` refuses to apply
// when there are any.
//
// Host commands (cc, make, sh …) are pinned by content in a data part of
// the software profile:
//
//	part "release-pins" {
//	  commands = { cc = "sha256:…", make = "sha256:…" }
//	}
//
// Check hashes the program each name resolves to on this node and compares,
// so a release checked at apply time refuses a node whose compiler is not
// the one the release was frozen with. Commands the release builds itself
// (under ${software.path}, or named from a part's outputs) are pinned by
// the release.
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// PinsPart is the data part holding the pins of host commands, and
// PinsCommands its attribute: a map of command name (or absolute path) to
// "sha256:HEX".
const (
	PinsPart     = "release-pins"
	PinsCommands = "commands"
)

// Rules, as Problem.Rule.
const (
	RuleChecksum = "checksum" // a download or module without a checksum
	RuleExtends  = "extends"  // an extends URL without a checksum
	RuleFloating = "floating" // a floating version or branch reference
	RuleExec     = "exec"     // a command not pinned by the profile
	RuleLoad     = "load"     // a profile of the release does not load
)

// Problem is one reason a profile is not a frozen release.
type Problem struct {
	Rule    string
	Range   hcl.Range // where; Filename "" when it has no position
	Message string    // what can change
	Fix     string    // what to write instead
}

func (p Problem) String() string {
	s := p.Message
	if p.Range.Filename != "" {
		s = fmt.Sprintf("%s:%d:%d: %s", p.Range.Filename, p.Range.Start.Line, p.Range.Start.Column, s)
	}
	if p.Fix != "" {
		s += "\n  fix: " + p.Fix
	}
	return s
}

// Options tune Check.
type Options struct {
	// PathDirs are where host commands are looked up, as the node's WASM
	// host does (nil: wasmhost.DefaultPathDirs).
	PathDirs []string
	// NoHostDigests skips hashing host commands: only whether each is
	// pinned is checked, not that this node's program matches the pin.
	NoHostDigests bool
}

// Check returns every problem of the software profile p and of the
// instance profiles its instance blocks name, sorted by position.
func Check(p *profile.Profile, o Options) []Problem {
	if len(o.PathDirs) == 0 {
		o.PathDirs = wasmhost.DefaultPathDirs
	}
	c := &checker{o: o, seen: map[string]bool{}, hashes: map[string]string{}}
	ev := c.evaluator(p, profile.Software)
	c.pins = c.readPins(p, ev)
	c.profile(p, ev)
	if p.Kind == profile.Software {
		types, diags := p.InstanceTypes(ev)
		c.loadDiags(diags)
		names := make([]string, 0, len(types))
		for n := range types {
			names = append(names, n)
		}
		sort.Strings(names)
		done := map[string]bool{}
		for _, n := range names {
			it := types[n]
			if it.Profile == "" || done[it.Profile] {
				continue
			}
			done[it.Profile] = true
			if strings.Contains(it.Profile, "://") {
				c.add(Problem{Rule: RuleLoad, Range: it.Range, Message: fmt.Sprintf("instance profile %s is a URL; a release ships its instance profiles", it.Profile),
					Fix: "copy the instance profile next to the software profile and name it by path"})
				continue
			}
			ip, diags := profile.Load(it.Profile, profile.Instance)
			if diags.HasErrors() {
				c.loadDiags(diags)
			}
			if ip != nil {
				c.profile(ip, c.evaluator(ip, profile.Instance))
			}
		}
	}
	sort.SliceStable(c.out, func(i, j int) bool {
		a, b := c.out[i].Range, c.out[j].Range
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Start.Line != b.Start.Line {
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Column < b.Start.Column
	})
	return c.out
}

// Diagnostics turns problems into HCL diagnostics (errors), the fix in the
// detail, for callers that report diagnostics (apply --release).
func Diagnostics(problems []Problem) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range problems {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not a frozen release: " + p.Message, Detail: "Fix: " + p.Fix + "."}
		if p.Range.Filename != "" {
			r := p.Range
			d.Subject = &r
		}
		diags = append(diags, d)
	}
	return diags
}

// ErrNotFrozen is wrapped by Err.
var ErrNotFrozen = errors.New("not a frozen release")

// Err returns nil without problems, else an error wrapping ErrNotFrozen
// whose message lists every problem with its position and fix.
func Err(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	var b strings.Builder
	Write(&b, problems)
	return fmt.Errorf("%w: %d problem(s):\n%s", ErrNotFrozen, len(problems), strings.TrimRight(b.String(), "\n"))
}

// Write prints each problem as "file:line:col: message", the source line
// with a caret, and the fix. Paths are shown relative to the working
// directory when shorter.
func Write(w io.Writer, problems []Problem) {
	wd, _ := os.Getwd()
	sources := map[string][]string{}
	for _, p := range problems {
		r := p.Range
		if r.Filename == "" {
			fmt.Fprintf(w, "%s\n", p.Message)
		} else {
			name := r.Filename
			if rel, err := filepath.Rel(wd, name); err == nil && len(rel) < len(name) {
				name = rel
			}
			fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", name, r.Start.Line, r.Start.Column, p.Rule, p.Message)
			lines, ok := sources[r.Filename]
			if !ok {
				b, _ := os.ReadFile(r.Filename)
				lines = strings.Split(string(b), "\n")
				sources[r.Filename] = lines
			}
			if r.Start.Line >= 1 && r.Start.Line <= len(lines) {
				line := strings.TrimRight(lines[r.Start.Line-1], "\r")
				width := 1
				if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
					width = r.End.Column - r.Start.Column
				}
				pad := []rune(line)
				if c := r.Start.Column - 1; c < len(pad) {
					pad = pad[:max(c, 0)]
				}
				for i, ch := range pad {
					if ch != '\t' {
						pad[i] = ' '
					}
				}
				fmt.Fprintf(w, "  %4d | %s\n       | %s%s\n", r.Start.Line, line, string(pad), strings.Repeat("^", width))
			}
		}
		if p.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", p.Fix)
		}
	}
}

type checker struct {
	o      Options
	out    []Problem
	seen   map[string]bool
	pins   map[string]string // command -> "sha256:HEX"
	pinAt  hcl.Range
	hashes map[string]string // resolved path -> sha256
}

func (c *checker) add(p Problem) {
	key := fmt.Sprintf("%s|%s:%d:%d|%s", p.Rule, p.Range.Filename, p.Range.Start.Line, p.Range.Start.Column, p.Message)
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.out = append(c.out, p)
}

func (c *checker) loadDiags(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		p := Problem{Rule: RuleLoad, Message: d.Summary + ": " + d.Detail, Fix: "make the profile load first ('slapnode validate' shows the errors)"}
		if d.Subject != nil {
			p.Range = *d.Subject
		}
		c.add(p)
	}
}

// softwarePathMark stands for ${software.path} while checking: a value
// that starts with it names something the release installs itself.
const softwarePathMark = "/@software.path@"

// evaluator gives expressions what they may use, known only where the
// value does not depend on the node: software.path is a marker, the rest
// is unknown, so options that depend on them evaluate to unknown values.
func (c *checker) evaluator(p *profile.Profile, kind profile.Kind) *profile.Evaluator {
	vars := map[string]cty.Value{
		"software": cty.ObjectVal(map[string]cty.Value{
			"path": cty.StringVal(softwarePathMark), "url": cty.UnknownVal(cty.String), "name": cty.UnknownVal(cty.String),
		}),
		"profile": cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(p.Dir)}),
		"node":    cty.ObjectVal(map[string]cty.Value{"id": cty.UnknownVal(cty.String), "root": cty.UnknownVal(cty.String)}),
	}
	if kind == profile.Instance {
		vars["partition"] = cty.DynamicVal
		vars["parameter"] = cty.DynamicVal
		vars["software_type"] = cty.UnknownVal(cty.String)
	}
	ev := p.Evaluator(vars)
	for _, b := range p.Parts {
		ev.SetPart(b.Name(), cty.DynamicVal)
	}
	g, _ := p.Graph(nil)
	if g != nil {
		for _, n := range g.Order {
			if n.Kind != "local" {
				continue
			}
			v, d := ev.EvalAttr(n.Attr)
			if d.HasErrors() {
				v = cty.DynamicVal
			}
			ev.SetLocal(n.Name, v)
		}
	}
	return ev
}

// eval returns an attribute's value, or an unknown one when it cannot be
// evaluated before install (a load error reports real mistakes).
func eval(ev *profile.Evaluator, a *profile.Attr) cty.Value {
	v, d := ev.EvalAttr(a)
	if d.HasErrors() {
		return cty.DynamicVal
	}
	return v
}

func evalExpr(ev *profile.Evaluator, a *profile.Attr, e hcl.Expression) cty.Value {
	return eval(ev, &profile.Attr{Name: a.Name, Expr: e, Range: e.Range(), Base: a.Base})
}

func knownString(v cty.Value) (string, bool) {
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// profile checks one profile (software or instance).
func (c *checker) profile(p *profile.Profile, ev *profile.Evaluator) {
	c.extends(p)
	for _, b := range p.BlocksOf("module") {
		c.module(b, ev)
	}
	for _, b := range p.Parts {
		c.part(b, ev)
	}
}

func isRemote(u string) bool {
	return strings.Contains(u, "://") && !strings.HasPrefix(u, "file://")
}

// pinnedFragment says whether a URL carries its checksum (#sha256=, #md5=…
// or buildout's URL#MD5HEX).
func pinnedFragment(u string) bool {
	_, frag, ok := strings.Cut(u, "#")
	if !ok {
		return false
	}
	for pre, n := range map[string]int{"sha256=": 64, "sha512=": 128, "md5=": 32, "md5sum=": 32} {
		if v, ok := strings.CutPrefix(frag, pre); ok && len(v) == n && isHex(v) {
			return true
		}
	}
	return isHex(frag) && (len(frag) == 32 || len(frag) == 64)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && len(s)%2 == 0
}

// extends checks the extends entries of every file of p, read from the
// parsed sources since the merged profile does not keep them.
func (c *checker) extends(p *profile.Profile) {
	srcs := p.Sources()
	for _, f := range p.Files {
		file := srcs[f]
		if file == nil {
			continue
		}
		body, ok := file.Body.(*hclsyntax.Body)
		if !ok {
			continue
		}
		a := body.Attributes["extends"]
		if a == nil {
			continue
		}
		exprs, diags := hcl.ExprList(a.Expr)
		if diags.HasErrors() {
			continue
		}
		for _, e := range exprs {
			v, d := e.Value(nil)
			s, ok := knownString(v)
			if d.HasErrors() || !ok || !strings.Contains(s, "://") {
				continue
			}
			base, _, _ := strings.Cut(s, "#")
			if !strings.Contains(s, "#sha256=") || !pinnedFragment(s) {
				c.add(Problem{Rule: RuleExtends, Range: e.Range(),
					Message: fmt.Sprintf("extends %s without a checksum: its content can change", base),
					Fix:     fmt.Sprintf(`write "%s#sha256=HEX" with the sha256 of the file (sha256sum after downloading it)`, base)})
			}
			c.floatingURL(s, e.Range())
		}
	}
}

func (c *checker) module(b *profile.Block, ev *profile.Evaluator) {
	src := b.Attrs["source"]
	if src != nil {
		v := eval(ev, src)
		s, known := knownString(v)
		_, hasSum := b.Attrs["sha256"]
		switch {
		case known && strings.HasPrefix(s, "builtin:"):
			// Built into slapnode: pinned by the slapnode version.
		case !hasSum:
			fix := `add sha256 = "HEX", the sha256 of the module file`
			if known && !strings.Contains(s, "://") {
				p := s
				if !filepath.IsAbs(p) {
					p = filepath.Join(filepath.Dir(src.Range.Filename), p)
				}
				if sum, err := fileSHA256(p); err == nil {
					fix = fmt.Sprintf(`add sha256 = "%s" (the sha256 of %s as it is now)`, sum, s)
				}
			}
			what := "module " + b.Name()
			if known {
				what += " (" + s + ")"
			}
			c.add(Problem{Rule: RuleChecksum, Range: src.Range, Message: what + " has no checksum: its recipes can change", Fix: fix})
		}
		if known {
			c.floatingURL(s, src.Range)
		}
	}
	if a := b.Attrs["allow_exec"]; a != nil {
		exprs, diags := hcl.ExprList(a.Expr)
		if diags.HasErrors() {
			exprs = []hcl.Expression{a.Expr}
		}
		for _, e := range exprs {
			c.exec(b.Name(), a, e, ev)
		}
	}
}

// exec checks one allow_exec entry: a command of the release itself, or a
// host command pinned by content.
func (c *checker) exec(module string, a *profile.Attr, e hcl.Expression, ev *profile.Evaluator) {
	v := evalExpr(ev, a, e)
	s, known := knownString(v)
	if !known {
		for _, t := range e.Variables() {
			if t.RootName() == "part" || (t.RootName() == "software" && len(t) > 1 && attrName(t[1]) == "path") {
				return // named from what the release builds
			}
		}
		c.add(Problem{Rule: RuleExec, Range: e.Range(),
			Message: fmt.Sprintf("module %s may run a command chosen at install time (it depends on parameters or the node)", module),
			Fix:     "name a program the release installs (${software.path}/…) or a host command pinned in part \"" + PinsPart + "\""})
		return
	}
	if strings.HasPrefix(s, softwarePathMark+"/") {
		return
	}
	pin, pinned := c.pins[s]
	resolved, err := c.lookPath(s)
	if !pinned {
		fix := fmt.Sprintf(`pin it in the software profile: part "%s" { %s = { %q = "sha256:HEX" } }`, PinsPart, PinsCommands, s)
		if err == nil && !c.o.NoHostDigests {
			if sum, herr := c.hash(resolved); herr == nil {
				fix = fmt.Sprintf(`pin it in the software profile: part "%s" { %s = { %q = "sha256:%s" } } (this node's %s), or build it as part of the release`, PinsPart, PinsCommands, s, sum, resolved)
			}
		}
		c.add(Problem{Rule: RuleExec, Range: e.Range(),
			Message: fmt.Sprintf("module %s runs host command %q, which is not pinned: the host's program can change", module, s), Fix: fix})
		return
	}
	if c.o.NoHostDigests {
		return
	}
	if err != nil {
		c.add(Problem{Rule: RuleExec, Range: e.Range(), Message: fmt.Sprintf("host command %q is pinned but not found on this node: %v", s, err),
			Fix: "install the pinned program on this node, or update the pin in part \"" + PinsPart + "\""})
		return
	}
	sum, err := c.hash(resolved)
	if err != nil {
		c.add(Problem{Rule: RuleExec, Range: e.Range(), Message: fmt.Sprintf("host command %q (%s) cannot be read to check its pin: %v", s, resolved, err), Fix: "make it readable by slapnode"})
		return
	}
	if "sha256:"+sum != pin {
		c.add(Problem{Rule: RuleExec, Range: e.Range(),
			Message: fmt.Sprintf("host command %q is %s with sha256 %s, but the release pins %s (at %s:%d): the host's program changed", s, resolved, sum, pin, c.pinAt.Filename, c.pinAt.Start.Line),
			Fix:     "install the program the release was frozen with, or freeze a new release with the new pin"})
	}
}

func attrName(t hcl.Traverser) string {
	if a, ok := t.(hcl.TraverseAttr); ok {
		return a.Name
	}
	return ""
}

func (c *checker) lookPath(name string) (string, error) {
	var p string
	if filepath.IsAbs(name) {
		p = name
	} else {
		for _, d := range c.o.PathDirs {
			q := filepath.Join(d, name)
			if fi, err := os.Stat(q); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				p = q
				break
			}
		}
		if p == "" {
			return "", fmt.Errorf("%q is not in %s", name, strings.Join(c.o.PathDirs, ":"))
		}
	}
	// The pin is of the program that runs, wherever the name's symlinks lead.
	return filepath.EvalSymlinks(p)
}

func (c *checker) hash(path string) (string, error) {
	if s, ok := c.hashes[path]; ok {
		return s, nil
	}
	s, err := fileSHA256(path)
	if err == nil {
		c.hashes[path] = s
	}
	return s, err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readPins reads part "release-pins" of the software profile.
func (c *checker) readPins(p *profile.Profile, ev *profile.Evaluator) map[string]string {
	pins := map[string]string{}
	b := p.Part[PinsPart]
	if b == nil {
		return pins
	}
	a := b.Attrs[PinsCommands]
	if a == nil {
		return pins
	}
	c.pinAt = a.Range
	v := eval(ev, a)
	if !v.IsWhollyKnown() || v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		c.add(Problem{Rule: RuleExec, Range: a.Range, Message: PinsCommands + " must be a map of command to \"sha256:HEX\" known before install",
			Fix: `write commands = { cc = "sha256:…" }`})
		return pins
	}
	for k, val := range v.AsValueMap() {
		s, ok := knownString(val)
		h, isSHA := strings.CutPrefix(s, "sha256:")
		if !ok || !isSHA || len(h) != 64 || !isHex(h) {
			c.add(Problem{Rule: RuleExec, Range: a.Range, Message: fmt.Sprintf("pin of %q is not \"sha256:\" and 64 hex digits", k),
				Fix: fmt.Sprintf("write %s = \"sha256:$(sha256sum $(readlink -f $(command -v %s)))\"", k, k)})
			continue
		}
		pins[k] = "sha256:" + strings.ToLower(h)
	}
	return pins
}

// Recipes of the built-in cookbook that download their url option.
var downloadRecipes = map[string]bool{"download": true, "download-unpacked": true, "cmmi": true}

var checksumAttrs = []string{"sha256", "sha512", "md5sum", "md5"}

// part checks one part's options.
func (c *checker) part(b *profile.Block, ev *profile.Evaluator) {
	module, recipe := "", ""
	if r := b.Attrs["recipe"]; r != nil {
		if s, ok := knownString(eval(ev, r)); ok {
			module, recipe, _ = strings.Cut(s, ":")
		}
	}
	if b.Name() == PinsPart {
		return
	}
	if b.Name() == "versions" && module == "" {
		// buildout's [versions]: every entry is a pin.
		for _, n := range b.AttrNames() {
			c.version(b.Attrs[n], ev, "version of "+n)
		}
		return
	}
	c.download(b, ev, module, recipe)
	c.git(b, ev)
	for _, n := range b.AttrNames() {
		if n == "version" || strings.HasSuffix(n, "_version") || strings.HasSuffix(n, "-version") {
			c.version(b.Attrs[n], ev, n+" of part "+b.Name())
		}
	}
	if a := b.Attrs["patches"]; a != nil {
		v := eval(ev, a)
		var entries []string
		if s, ok := knownString(v); ok {
			entries = strings.Fields(s)
		} else if v.IsWhollyKnown() && !v.IsNull() && (v.Type().IsTupleType() || v.Type().IsListType()) {
			for _, x := range v.AsValueSlice() {
				if s, ok := knownString(x); ok {
					entries = append(entries, s)
				}
			}
		}
		for _, s := range entries {
			if isRemote(s) && !pinnedFragment(s) {
				c.add(Problem{Rule: RuleChecksum, Range: a.Range, Message: fmt.Sprintf("patch %s of part %s has no checksum", s, b.Name()),
					Fix: fmt.Sprintf("write %s#sha256=HEX (or #MD5HEX)", s)})
			}
		}
	}
}

func (c *checker) download(b *profile.Block, ev *profile.Evaluator, module, recipe string) {
	a := b.Attrs["url"]
	if a == nil {
		return
	}
	cookbook := module == "cookbook" || module == "promises"
	if cookbook && !downloadRecipes[recipe] {
		return // a url that is configuration (template values…), not a download
	}
	v := eval(ev, a)
	s, known := knownString(v)
	if !cookbook && known && !isRemote(s) {
		return
	}
	if known {
		c.floatingURL(s, a.Range)
	}
	for _, n := range checksumAttrs {
		if _, ok := b.Attrs[n]; ok {
			return
		}
	}
	if known && pinnedFragment(s) {
		return
	}
	what := "a URL computed at install time"
	if known {
		what = s
	}
	fix := `add sha256 = "HEX", the sha256 of the file`
	if known && !isRemote(s) {
		p := strings.TrimPrefix(s, "file://")
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(a.Range.Filename), p)
		}
		if sum, err := fileSHA256(p); err == nil {
			fix = fmt.Sprintf(`add sha256 = "%s" (the sha256 of %s as it is now)`, sum, s)
		}
	}
	c.add(Problem{Rule: RuleChecksum, Range: a.Range, Message: fmt.Sprintf("part %s downloads %s without a checksum", b.Name(), what), Fix: fix})
}

// git checks a git checkout (slapos.recipe.build:gitclone's options):
// the ref must be a commit id or a tag.
func (c *checker) git(b *profile.Block, ev *profile.Evaluator) {
	repo := b.Attrs["repository"]
	if repo == nil {
		if u := b.Attrs["url"]; u != nil {
			if s, ok := knownString(eval(ev, u)); ok && (strings.HasPrefix(s, "git://") || strings.HasPrefix(s, "git+") || strings.HasSuffix(s, ".git")) {
				repo = u
			}
		}
	}
	if repo == nil {
		return
	}
	rev := b.Attrs["revision"]
	if rev == nil {
		rev = b.Attrs["ref"]
	}
	if rev == nil {
		at := repo.Range
		what := "the default branch"
		if br := b.Attrs["branch"]; br != nil {
			at = br.Range
			what = "a branch"
		}
		c.add(Problem{Rule: RuleFloating, Range: at, Message: fmt.Sprintf("part %s checks out %s, which moves", b.Name(), what),
			Fix: `add revision = "<40-hex commit id>" (git rev-parse TAG^{commit}) or a tag`})
		return
	}
	s, ok := knownString(eval(ev, rev))
	if !ok {
		c.add(Problem{Rule: RuleFloating, Range: rev.Range, Message: fmt.Sprintf("the revision of part %s is chosen at install time", b.Name()), Fix: "write the commit id or tag literally"})
		return
	}
	if why := floatingRef(s); why != "" {
		c.add(Problem{Rule: RuleFloating, Range: rev.Range, Message: fmt.Sprintf("part %s checks out %q, %s", b.Name(), s, why),
			Fix: fmt.Sprintf(`write the commit id: revision = "$(git rev-parse %s^{commit})", or a tag (refs/tags/NAME)`, s)})
	}
}

// floatingRef says why a git ref is not a commit id or a tag, or "".
func floatingRef(s string) string {
	if (len(s) == 40 || len(s) == 64) && isHex(strings.ToLower(s)) {
		return ""
	}
	if strings.HasPrefix(s, "refs/tags/") {
		return ""
	}
	if strings.HasPrefix(s, "refs/heads/") || movingNames[strings.ToLower(s)] {
		return "a branch, which moves"
	}
	if len(s) >= 7 && strings.Trim(s, "0123456789abcdef") == "" && strings.ContainsAny(s, "abcdef") {
		return "an abbreviated commit id, which can become ambiguous"
	}
	if versionTag(s) {
		return ""
	}
	return "which may be a branch: only commit ids and tags are fixed"
}

// versionTag recognises tags named like versions: v1.2.3, 1.2, 2.0-rc1.
func versionTag(s string) bool {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if t == "" || t[0] < '0' || t[0] > '9' {
		return false
	}
	return !strings.ContainsAny(t, "*^~<>| ")
}

var movingNames = map[string]bool{
	"latest": true, "stable": true, "current": true, "master": true, "main": true, "head": true,
	"trunk": true, "develop": true, "development": true, "dev": true, "nightly": true, "edge": true,
	"snapshot": true, "tip": true, "default": true, "*": true, "any": true, "": true,
}

// floatingVersion says why a version is not one exact version, or "".
func floatingVersion(s string) string {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "=="), "=")
	switch {
	case movingNames[strings.ToLower(t)]:
		return "a name that moves"
	case strings.ContainsAny(t, "<>~^*|!,") || strings.Contains(t, " "):
		return "a range"
	case strings.HasSuffix(strings.ToLower(t), ".x"):
		return "a range"
	}
	return ""
}

func (c *checker) version(a *profile.Attr, ev *profile.Evaluator, what string) {
	v := eval(ev, a)
	if !v.IsKnown() {
		c.add(Problem{Rule: RuleFloating, Range: a.Range, Message: what + " is chosen at install time", Fix: "write the exact version literally"})
		return
	}
	s, ok := knownString(v)
	if !ok {
		return
	}
	if why := floatingVersion(s); why != "" {
		c.add(Problem{Rule: RuleFloating, Range: a.Range, Message: fmt.Sprintf("%s is %q, %s", what, s, why), Fix: "write one exact version, e.g. \"1.4.2\""})
	}
}

// floatingURL flags URLs that name a branch or "latest": even with a
// checksum they stop working when the branch moves.
func (c *checker) floatingURL(u string, at hcl.Range) {
	if !isRemote(u) {
		return
	}
	base, _, _ := strings.Cut(u, "#")
	path, query, _ := strings.Cut(base, "?")
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
	}
	segs := strings.Split(path, "/")
	if strings.Contains(path, "/refs/heads/") {
		c.add(Problem{Rule: RuleFloating, Range: at, Message: "URL " + base + " names a branch", Fix: "use the URL of a tag or commit"})
		return
	}
	for _, s := range segs[1:] {
		name := strings.ToLower(s)
		for _, ext := range []string{".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip"} {
			name = strings.TrimSuffix(name, ext)
		}
		if name != "" && name != "*" && movingNames[name] && name != "default" && name != "current" {
			c.add(Problem{Rule: RuleFloating, Range: at, Message: fmt.Sprintf("URL %s names %q, which moves", base, s), Fix: "use the URL of a tag, a commit or a versioned file"})
			return
		}
	}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if (k == "ref" || k == "branch" || k == "version") && floatingRef(v) != "" && !versionTag(v) {
			c.add(Problem{Rule: RuleFloating, Range: at, Message: fmt.Sprintf("URL %s asks for %s=%s, which moves", base, k, v), Fix: "ask for a tag or commit id"})
			return
		}
	}
}
