package buildout

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Warning kinds: what the converter could not carry over exactly. Each
// warning names the file and line; nothing is dropped silently.
const (
	WarnJinjaTemplate    = "jinja2-template"     // the file must be rendered first
	WarnUnmappedRecipe   = "unmapped-recipe"     // no built-in equivalent: kept as is
	WarnConditional      = "conditional-section" // [name:expr] decided at conversion time
	WarnTemplatedExtends = "templated-extends"   // extends computed at render time
	WarnURLExtends       = "url-extends"         // needs #sha256=… in slapnode
	WarnBadReference     = "invalid-reference"   // ${...} buildout itself rejects
	WarnRuntimeSection   = "runtime-section"     // section injected by slapos node
	WarnBuildoutOption   = "buildout-option"     // [buildout] option without slapnode meaning
	WarnEngineKey        = "engine-key"          // ${buildout:executable}: no Python in slapnode
	WarnProfileBase      = "profile-base-location"
	WarnMissingMacro     = "missing-macro" // --flatten: a <= names an unknown section
	WarnEmptyName        = "empty-name"    // `+= x`: an option without a name
	WarnReservedName     = "reserved-name" // an option named macro or depends_on
	// WarnBuildoutTemplate: a *.in file using $${...}: it is rendered by
	// slapos.recipe.template (${} resolved at software time, $${} kept for
	// the instance), so both levels are written literally.
	WarnBuildoutTemplate = "buildout-template"
)

// Warning is one thing the converter could not carry over exactly.
type Warning struct {
	Pos  Pos
	Kind string
	Msg  string
	// Subject is what the warning is about when it can be counted: the
	// recipe of an unmapped-recipe warning.
	Subject string
}

func (w Warning) String() string { return fmt.Sprintf("%s: warning: %s: %s", w.Pos, w.Kind, w.Msg) }

// ConvertOptions configures the converter.
type ConvertOptions struct {
	// RecipeMap adds to (and overrides) DefaultRecipeMap: OLD entry point
	// (`egg:entry`, or `egg` for the default entry point) to NEW
	// (`MODULE:RECIPE`).
	RecipeMap map[string]string
	// Env decides `[name:expr]` sections; nil means DefaultCondEnv.
	Env *CondEnv
	// Kind is "software" or "instance": what ${buildout:directory} is
	// (software.path or partition.path). "" guesses from the file name:
	// instance*, template* and *.in files are instance profiles.
	Kind string
	// NoAdapt keeps every option as buildout names it, even for recipes
	// mapped to the cookbook (whose options are otherwise rewritten into
	// the cookbook's form: see adapt.go).
	NoAdapt bool

	// closure is what the other files converted with this one define (the
	// extends closure of a release): nil for a file converted alone.
	closure *closureInfo
	// software, for the root of a software release, is its software block.
	software *SoftwareMeta
	// rootParts, for the root of a release, is the parts list buildout
	// computes from the whole closure (see rootParts in release.go); nil:
	// the parts options are converted as written.
	rootParts *[]string
	// instanceRoot: the file is the root of an instance profile, to which
	// slapgrid appends its tail (InstanceTail).
	instanceRoot bool
}

// SoftwareMeta is what a converted release says about itself: its
// `software` block.
type SoftwareMeta struct {
	Name, Version, Description string
}

// closureInfo is what the files of a release define, as far as one file's
// conversion depends on it.
type closureInfo struct {
	buildout map[string]bool // [buildout] options set by some file
}

// Result is the conversion of one file (or of a closure, flattened).
type Result struct {
	Path     string // the input file
	Output   string // suggested output path (.cfg → .hcl)
	HCL      []byte // nil when the file could not be converted (a template)
	Warnings []Warning
}

// HCLName renames a profile path for its converted form: the last `.cfg`
// of the base name becomes `.hcl` (software.cfg → software.hcl,
// instance.cfg.in → instance.hcl.in).
func HCLName(p string) string {
	dir, base := path.Split(p)
	if i := strings.LastIndex(base, ".cfg"); i >= 0 {
		base = base[:i] + ".hcl" + base[i+4:]
	} else {
		base += ".hcl"
	}
	return dir + base
}

// JinjaLine returns the first line (1-based) where the file is a jinja2
// template rather than buildout, or 0 for a buildout file. jinja2 inside
// block values (inline templates) never counts. In a file named as a
// template (*.in, *.jinja2, *.jinja), jinja2 anywhere else does: a header,
// an option line or a statement line. In a plain *.cfg, only jinja2 that
// makes the buildout structure does (a statement line, a computed section
// or option name), because such files carry jinja2 in option values that a
// recipe renders (component/perl/buildout.cfg).
func JinjaLine(path string, src []byte) int {
	named := strings.HasSuffix(path, ".in") || strings.HasSuffix(path, ".jinja2") || strings.HasSuffix(path, ".jinja")
	inValue := false
	for i, line := range splitLines(src) {
		if line != "" && (line[0] == '#' || line[0] == ';') {
			continue
		}
		if inValue && (line == "" || pyIsSpace(rune(line[0]))) {
			continue
		}
		isOption := optionStart.MatchString(line)
		hasJinja := strings.Contains(line, "{%") || strings.Contains(line, "{{") || strings.Contains(line, "{#")
		if hasJinja && (named || !isOption) {
			return i + 1
		}
		inValue = isOption
	}
	return 0
}

// cvOption / cvSection are the converter's view of a section: per file
// (from the blocks) or flattened (from a resolved closure).
type cvOption struct {
	name  string
	op    Op
	value string
	pos   Pos
	// comment holds the column-0 comment lines written above the option or
	// inside its value, without their marker.
	comment []string
}

type cvSection struct {
	name    string
	pos     Pos
	options []*cvOption
	comment []string // the comment lines above the section header
}

type converter struct {
	opts     ConvertOptions
	recipes  map[string]string
	res      *Result
	file     string
	kind     string
	macros   map[string]bool // sections used as <= macros
	defined  map[string]bool
	buildout map[string]bool // options set in [buildout] here
	runtime  map[string]bool // runtime sections already warned about
	curOpt   string          // option being converted, for self-references
	header   []string        // file comments before the first section
	trailing []string        // file comments after the last option
	dropped  []string        // sections dropped by their condition, as text
	baseDirs map[string]string
	rootDir  string
	flatten  bool
	recorded []grantSection // sections with a recipe, for emitModules (recipes.go)
	// closureNames are the sections of the extends closure (adapt.go).
	closureNames map[string]bool
	// closureKnown: the closure could be loaded, so closureNames is
	// complete.
	closureKnown bool
	// closureCfg is the loaded closure (closure()).
	closureCfg    *Config
	closureLoaded bool
	// topLevel: the value converted is a top-level attribute (parts), where
	// [buildout]'s own options are part.buildout.X, not self.X.
	topLevel bool
}

func newConverter(file string, opts ConvertOptions) *converter {
	c := &converter{opts: opts, recipes: map[string]string{}, file: file,
		macros: map[string]bool{}, defined: map[string]bool{}, buildout: map[string]bool{}, runtime: map[string]bool{}}
	for k, v := range DefaultRecipeMap {
		c.recipes[k] = v
	}
	for k, v := range opts.RecipeMap {
		c.recipes[k] = v
	}
	if c.opts.Env == nil {
		c.opts.Env = DefaultCondEnv()
	}
	c.kind = opts.Kind
	if c.kind == "" {
		base := filepath.Base(file)
		if strings.HasPrefix(base, "instance") || strings.HasPrefix(base, "template") || strings.HasSuffix(base, ".in") {
			c.kind = "instance"
		} else {
			c.kind = "software"
		}
	}
	c.res = &Result{Path: file, Output: HCLName(file)}
	return c
}

func (c *converter) warn(pos Pos, kind, format string, args ...any) {
	c.res.Warnings = append(c.res.Warnings, Warning{Pos: pos, Kind: kind, Msg: fmt.Sprintf(format, args...)})
}

// ConvertFile converts one .cfg file to one HCL file. `extends` stays
// `extends` (renamed to .hcl); the other files of the closure are converted
// by their own calls. A jinja2 template is not converted: the Result has
// no HCL and a jinja2-template warning. A file that does not parse returns
// the parse errors.
func ConvertFile(file string, src []byte, opts ConvertOptions) (*Result, error) {
	c := newConverter(file, opts)
	if l := JinjaLine(file, src); l > 0 {
		c.warn(Pos{file, l, 1}, WarnJinjaTemplate, "the file is a jinja2 template ({%% %%} / {{ }} outside option values): render it first (as slapos.recipe.template:jinja2 would), then convert the result")
		return c.res, nil
	}
	f, err := Parse(file, src)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(file, ".in") {
		for i, l := range splitLines(src) {
			if strings.Contains(l, "$${") {
				c.warn(Pos{file, i + 1, strings.Index(l, "$${") + 1}, WarnBuildoutTemplate, "the file is a template rendered by slapos.recipe.template: its ${...} are resolved when the software is built and its $${...} by the instance; both are written as they are (references and literal $${...}); convert the rendered file for an exact result")
				break
			}
		}
	}
	var order []string
	secs := map[string]*cvSection{}
	notes := attributeComments(f)
	c.header = notes.header
	c.trailing = notes.trailing
	for bi, b := range f.Blocks {
		if b.Condition != "" {
			ok, err := c.opts.Env.Eval(b.Condition)
			env := c.envDesc()
			switch {
			case err != nil:
				c.warn(b.Pos, WarnConditional, "[%s:%s] dropped: cannot evaluate the condition (%v); slapnode profiles have no conditional parts", b.Name, b.Condition, err)
				c.dropped = append(c.dropped, droppedText(b, "its condition cannot be evaluated", notes, bi))
				continue
			case !ok:
				c.warn(b.Pos, WarnConditional, "[%s:%s] dropped: the condition is false for %s; slapnode profiles have no conditional parts", b.Name, b.Condition, env)
				c.dropped = append(c.dropped, droppedText(b, "false for "+env, notes, bi))
				continue
			default:
				c.warn(b.Pos, WarnConditional, "[%s:%s] kept: the condition is true for %s; slapnode profiles have no conditional parts", b.Name, b.Condition, env)
			}
		}
		s, ok := secs[b.Name]
		above := notes.blocks[bi]
		if b.Condition != "" {
			above = append([]string{fmt.Sprintf("from [%s:%s] (line %d)", b.Name, b.Condition, b.Pos.Line)}, above...)
		}
		if !ok {
			s = &cvSection{name: b.Name, pos: b.Pos, comment: above}
			secs[b.Name] = s
			order = append(order, b.Name)
			c.defined[b.Name] = true
			above = nil
		}
		for oi, o := range b.Options {
			cm := notes.options[[2]int{bi, oi}]
			if oi == 0 && len(above) > 0 {
				// The header of a section written again: its comments go
				// with the first option it adds.
				cm = append(above, cm...)
				above = nil
			}
			s.set(&cvOption{name: o.Key, op: o.Op, value: o.Value, pos: o.Pos, comment: cm})
		}
		s.comment = append(s.comment, above...)
	}
	if c.opts.instanceRoot && secs["slap-connection"] == nil {
		// slapgrid appends its tail to the instance profile it runs: its
		// options replace the file's own.
		tail, err := Parse(file, []byte(InstanceTail()))
		if err != nil {
			return nil, err
		}
		for _, b := range tail.Blocks {
			s, ok := secs[b.Name]
			if !ok {
				s = &cvSection{name: b.Name, pos: Pos{File: file}}
				secs[b.Name] = s
				order = append(order, b.Name)
				c.defined[b.Name] = true
			}
			for _, o := range b.Options {
				s.set(&cvOption{name: o.Key, op: o.Op, value: o.Value, pos: Pos{File: file}})
			}
		}
	}
	for _, s := range secs {
		for _, o := range s.options {
			if o.name == "<" {
				for _, m := range macroNames(o.value) {
					c.macros[m] = true
				}
			}
		}
	}
	var list []*cvSection
	for _, n := range order {
		list = append(list, secs[n])
	}
	return c.emit(list)
}

// set adds an option with configparser's rule: the same key again
// replaces the earlier value in place (its comments are kept).
func (s *cvSection) set(o *cvOption) {
	for i, e := range s.options {
		if e.name == o.name {
			o.comment = append(e.comment, o.comment...)
			s.options[i] = o
			return
		}
	}
	s.options = append(s.options, o)
}

func (c *converter) envDesc() string {
	e := c.opts.Env
	return fmt.Sprintf("%s %d.%d on %s/%s", e.Implementation, e.PythonVersion[0], e.PythonVersion[1], e.Platform, e.Machine)
}

// ConvertConfig converts a loaded closure into one self-contained HCL file
// (`--flatten`): `extends` are merged, `<=` macros expanded and `+=`/`-=`
// applied, exactly as Resolve does before substitution, so only references
// remain to be evaluated by slapnode.
func ConvertConfig(cfg *Config, opts ConvertOptions) (*Result, error) {
	c := newConverter(cfg.Root, opts)
	c.flatten = true
	c.rootDir = filepath.Dir(cfg.Root)
	c.baseDirs = map[string]string{}
	r := &resolver{cfg: cfg, data: map[string]*secState{}}
	names := sortedKeys(cfg.Sections)
	var list []*cvSection
	for _, name := range names {
		c.defined[name] = true
	}
	for _, name := range names {
		raw := map[string]string{}
		src := ""
		for k, v := range cfg.Sections[name] {
			if v.Source == "DEFAULT_VALUE" || v.Source == "COMPUTED_VALUE" {
				// Engine-provided ([buildout] directory, bin-directory…,
				// default pins): slapnode provides them, and writing this
				// host's paths would pin the profile to it.
				continue
			}
			raw[k] = v.Text
			if src == "" || k != ProfileBaseOption {
				src = v.Source
			}
		}
		if m, ok := raw["<"]; ok {
			for _, n := range macroNames(m) {
				c.macros[n] = true
			}
			// A broken macro fails only when buildout uses the section:
			// keep it unexpanded (macro = [...]) and say why.
			if ext, err := r.extendRaw(name, raw, nil); err != nil {
				c.warn(Pos{File: cfg.Sections[name]["<"].sourceOr(cfg.Root)}, WarnMissingMacro, "[%s] cannot be expanded (%v): kept with macro = [...]", name, err)
			} else {
				raw = ext
			}
		}
		if d, ok := raw[ProfileBaseOption]; ok {
			c.baseDirs[name] = d
			delete(raw, ProfileBaseOption)
		}
		s := &cvSection{name: name, pos: Pos{File: src}}
		for _, k := range sortedKeys(raw) {
			o := &cvOption{name: k, op: OpSet, value: raw[k], pos: Pos{File: cfg.Sections[name][k].sourceOr(src)}}
			if strings.HasSuffix(k, "+") || strings.HasSuffix(k, "-") {
				// Left over when no lower definition existed: buildout
				// keeps the key as a plain option name.
				o.name = k
			}
			s.options = append(s.options, o)
		}
		list = append(list, s)
	}
	return c.emit(list)
}

func (v *Value) sourceOr(def string) string {
	if v == nil || v.Source == "" {
		return def
	}
	return v.Source
}

// ConvertClosure is ConvertConfig for a file path.
func ConvertClosure(file string, lopts LoadOptions, copts ConvertOptions) (*Result, error) {
	if lopts.Env == nil {
		lopts.Env = copts.Env
	}
	cfg, err := Load(file, lopts)
	if err != nil {
		return nil, err
	}
	if copts.Kind == "software" || copts.Kind == "" && guessKind(file) == "software" {
		copts.software = softwareMeta(cfg.Root)
		return ConvertConfig(cfg, copts)
	}
	// An instance profile, as the node converts one in memory.
	res, err := ConvertInstance(cfg, copts)
	if err != nil {
		return nil, err
	}
	return res.Result, nil
}

func (c *converter) emit(secs []*cvSection) (*Result, error) {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(comment(fmt.Sprintf("Converted from %s by slapnode convert (%s profile).", filepath.Base(c.file), c.kind)))
	for _, l := range c.header {
		body.AppendUnstructuredTokens(comment(l))
	}
	if sw := c.opts.software; sw != nil {
		body.AppendNewline()
		blk := body.AppendNewBlock("software", []string{sw.Name})
		blk.Body().SetAttributeRaw("version", raw(quoteLiteral(sw.Version)))
		if sw.Description != "" {
			blk.Body().SetAttributeRaw("description", raw(quoteLiteral(sw.Description)))
		}
	}
	for _, s := range secs {
		if s.name == "buildout" {
			for _, o := range s.options {
				c.buildout[strings.TrimRight(o.name, " +-")] = true
			}
		}
	}
	if rp := c.opts.rootParts; rp != nil && !c.setsParts(secs) {
		body.AppendNewline()
		if len(*rp) == 0 {
			body.AppendUnstructuredTokens(comment("No file of the release sets [buildout] parts: buildout installs nothing."))
		} else {
			body.AppendUnstructuredTokens(comment("The [buildout] parts of the files this one extends, as buildout merges them."))
		}
		var items []string
		for _, p := range *rp {
			items = append(items, quoteLiteral(MangleName(p)))
		}
		body.SetAttributeRaw("parts", raw("["+strings.Join(items, ", ")+"]"))
	}
	for _, s := range secs {
		if s.name == "buildout" {
			c.emitBuildout(body, s)
		}
	}
	for _, s := range secs {
		if s.name != "buildout" {
			c.emitPart(body, s, s.options)
		}
	}
	c.emitModules(body)
	for _, d := range c.dropped {
		body.AppendNewline()
		body.AppendUnstructuredTokens(comment(d))
	}
	if len(c.trailing) > 0 {
		body.AppendNewline()
		for _, l := range c.trailing {
			body.AppendUnstructuredTokens(comment(l))
		}
	}
	out, err := finish(f)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", c.file, err)
	}
	c.res.HCL = out
	sortWarnings(c.res.Warnings)
	return c.res, nil
}

// sortWarnings orders warnings by position.
func sortWarnings(ws []Warning) {
	sort.SliceStable(ws, func(i, j int) bool {
		a, b := ws[i].Pos, ws[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// fileComments is where each column-0 comment line of a file belongs: the
// file header (before the first section), a section header, an option
// (the comments above it or inside its value), or the end of the file.
type fileComments struct {
	header   []string
	blocks   map[int][]string    // block index -> comments above its header
	options  map[[2]int][]string // {block, option} -> comments
	trailing []string
}

// attributeComments attaches every comment to the item that follows it (a
// comment describes what comes below it), or to the option whose value it
// sits in; nothing is dropped.
func attributeComments(f *File) fileComments {
	fc := fileComments{blocks: map[int][]string{}, options: map[[2]int][]string{}}
	type item struct {
		start, end int
		block, opt int // opt -1: the header
	}
	var items []item
	for bi, b := range f.Blocks {
		items = append(items, item{b.Pos.Line, b.Pos.Line, bi, -1})
		for oi, o := range b.Options {
			items = append(items, item{o.Pos.Line, max(o.End, o.Pos.Line), bi, oi})
		}
	}
	lines := make([]int, 0, len(f.Comments))
	for l := range f.Comments {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	for _, l := range lines {
		text := commentText(f.Comments[l])
		// The first item that ends at or after the line: the option whose
		// value holds the line, or the item below it.
		i := sort.Search(len(items), func(i int) bool { return items[i].end >= l })
		switch {
		case i == len(items):
			fc.trailing = append(fc.trailing, text)
		case i == 0 && items[0].start > l:
			fc.header = append(fc.header, text)
		case items[i].opt < 0:
			fc.blocks[items[i].block] = append(fc.blocks[items[i].block], text)
		default:
			k := [2]int{items[i].block, items[i].opt}
			fc.options[k] = append(fc.options[k], text)
		}
	}
	return fc
}

// commentText is a comment line without its # or ; marker and one space.
func commentText(line string) string {
	return strings.TrimPrefix(strings.TrimPrefix(line[1:], " "), "#")
}

// droppedText keeps a section dropped by its condition as a comment in
// the output, so its content is still there for a human to carry over.
func droppedText(b *Block, why string, notes fileComments, bi int) string {
	var sb strings.Builder
	for _, l := range notes.blocks[bi] {
		fmt.Fprintf(&sb, "%s\n", l)
	}
	fmt.Fprintf(&sb, "[%s:%s] (line %d) not converted: %s\n", b.Name, b.Condition, b.Pos.Line, why)
	for oi, o := range b.Options {
		for _, l := range notes.options[[2]int{bi, oi}] {
			fmt.Fprintf(&sb, "  # %s\n", l)
		}
		lines := strings.Split(o.Value, "\n")
		fmt.Fprintf(&sb, "  %s %s %s\n", o.Name, o.Op, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&sb, "    %s\n", l)
		}
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// finish formats the file and checks that it parses: a converter bug must
// never produce a file slapnode cannot read.
func finish(f *hclwrite.File) ([]byte, error) {
	out := hclwrite.Format(f.Bytes())
	if _, diags := hclsyntax.ParseConfig(out, "converted.hcl", hcl.InitialPos); diags.HasErrors() {
		return nil, fmt.Errorf("generated HCL does not parse (a converter bug; please report it): %s", diags.Error())
	}
	return out, nil
}

func comment(text string) hclwrite.Tokens {
	var ts hclwrite.Tokens
	for _, l := range strings.Split(text, "\n") {
		ts = append(ts, &hclwrite.Token{Type: hclsyntax.TokenComment, Bytes: []byte("# " + l + "\n")})
	}
	return ts
}

func raw(expr string) hclwrite.Tokens {
	return hclwrite.Tokens{&hclwrite.Token{Type: hclsyntax.TokenIdent, Bytes: []byte(expr)}}
}

func (c *converter) emitBuildout(body *hclwrite.Body, s *cvSection) {
	var rest []*cvOption
	top := func(o *cvOption) {
		for _, l := range o.comment {
			body.AppendUnstructuredTokens(comment(l))
		}
	}
	for _, l := range s.comment {
		body.AppendUnstructuredTokens(comment(l))
	}
	for _, o := range s.options {
		name := strings.TrimRight(o.name, " +-")
		switch {
		case name == "extends" && !c.flatten:
			if o.op != OpSet {
				c.warn(o.pos, WarnBuildoutOption, "extends %s is not an extends list buildout reads; kept as the option %q of part \"buildout\"", o.op, o.name)
				rest = append(rest, o)
				continue
			}
			var items []string
			for _, e := range strings.Fields(o.value) {
				switch {
				case strings.Contains(e, "${") || strings.Contains(e, "{{"):
					c.warn(o.pos, WarnTemplatedExtends, "extends entry %q is computed when the template is rendered; kept as written", e)
					items = append(items, quoteLiteral(e))
				case isURL(e):
					c.warn(o.pos, WarnURLExtends, "extends %s: slapnode needs the URL to carry #sha256=HEX of the converted file", e)
					items = append(items, quoteLiteral(HCLName(e)))
				default:
					items = append(items, quoteLiteral(HCLName(e)))
				}
			}
			top(o)
			body.SetAttributeRaw("extends", raw("["+strings.Join(items, ", ")+"]"))
		case name == "parts" && c.opts.rootParts != nil:
			// The root of a release: the list buildout computes from its
			// whole closure.
			if o.name != "parts" && c.hasPlainParts(s) {
				top(o)
				continue
			}
			top(o)
			var items []string
			for _, p := range *c.opts.rootParts {
				items = append(items, quoteLiteral(MangleName(p)))
			}
			if o.op != OpSet {
				body.AppendUnstructuredTokens(comment(fmt.Sprintf("[buildout] parts %s %s: the list buildout computes from the files this one extends.", o.op, oneLine(o.value))))
			}
			body.SetAttributeRaw("parts", raw("["+strings.Join(items, ", ")+"]"))
		case name == "parts":
			// =, += and -= in one section: buildout applies += then -=
			// to the section's own value, else to the earlier one.
			var ops [3]*cvOption
			for _, p := range s.options {
				if strings.TrimRight(p.name, " +-") == "parts" {
					ops[p.op] = p
				}
			}
			if o != ops[0] && o != ops[1] && o != ops[2] {
				continue
			}
			if first := firstOf(ops[:]...); o != first {
				continue
			}
			for _, p := range ops {
				if p != nil {
					top(p)
				}
			}
			body.SetAttributeRaw("parts", raw(c.partsExpr(ops[OpSet], ops[OpAppend], ops[OpRemove])))
		case name == "extensions" || name == "develop":
			c.warn(o.pos, WarnBuildoutOption, "[buildout] %s (%s) has no slapnode equivalent (buildout extensions and develop eggs are Python); kept as an option of part \"buildout\"", name, oneLine(o.value))
			rest = append(rest, o)
		default:
			rest = append(rest, o)
		}
	}
	if len(rest) > 0 {
		c.emitPart(body, &cvSection{name: s.name, pos: s.pos}, rest)
	}
}

// partsExpr writes [buildout] parts: a list of names; `parts +=` and
// `parts -=` work on base.parts, the list of the files extended before
// (buildout splits the value on whitespace); a computed value is split the
// same way.
func (c *converter) partsExpr(set, add, del *cvOption) string {
	list := func(o *cvOption) string {
		if strings.Contains(o.value, "${") {
			c.topLevel = true
			defer func() { c.topLevel = false }()
			return "regexall(\"\\\\S+\", " + c.expr("buildout", o.value, o.pos) + ")"
		}
		var items []string
		for _, p := range strings.Fields(o.value) {
			items = append(items, quoteLiteral(MangleName(p)))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	expr := "base.parts"
	if set != nil {
		expr = list(set)
	}
	if add != nil {
		expr = "concat(" + expr + ", " + list(add) + ")"
	}
	if del != nil {
		expr = "[for p in " + expr + " : p if !contains(" + list(del) + ", p)]"
	}
	return expr
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (c *converter) emitPart(body *hclwrite.Body, s *cvSection, opts []*cvOption) {
	if r := plainOption(opts, "recipe"); r != nil {
		orig := strings.TrimSpace(r.value)
		// Instance-side recipes: only an instance profile runs them (a
		// software profile may carry one, unused: it is left as written).
		if kind, variant := InstanceRecipe(orig); kind != "" && c.kind == "instance" && c.opts.RecipeMap[orig] == "" {
			c.emitNodeSection(body, s, orig, kind, variant, opts)
			return
		}
		if orig == "slapos.cookbook:publish-early" && c.kind == "instance" && c.opts.RecipeMap[orig] == "" {
			c.emitPublishEarly(body, s, opts)
			return
		}
	}
	if c.kind == "instance" && slices.Contains(TailSections, s.name) {
		s.comment = append(s.comment, fmt.Sprintf("[%s] is in slapgrid's tail: the node fills its options when it applies the profile.", s.name))
	}
	c.emitPartAs(body, s, MangleName(s.name), opts)
}

// emitPartAs writes a section as the part labelled label.
func (c *converter) emitPartAs(body *hclwrite.Body, s *cvSection, label string, opts []*cvOption) {
	body.AppendNewline()
	for _, l := range s.comment {
		body.AppendUnstructuredTokens(comment(l))
	}
	blk := body.AppendNewBlock("part", []string{label})
	b := blk.Body()
	noted := map[*cvOption]bool{}
	note := func(o *cvOption) {
		if o == nil || noted[o] {
			return
		}
		noted[o] = true
		for _, l := range o.comment {
			b.AppendUnstructuredTokens(comment(l))
		}
	}
	all := opts
	plain := map[string]*cvOption{}
	for _, o := range opts {
		if o.op == OpSet {
			plain[o.name] = o
		}
	}
	var adapted []attrExpr
	if r := plain["recipe"]; r != nil {
		orig := strings.TrimSpace(r.value)
		opts, adapted = c.adapt(s, orig, c.recipes[orig], opts, false)
	} else if orig := c.inheritedRecipe(s.name); orig != "" && !nodeRecipe(orig) {
		// The recipe comes from a macro or an earlier file: the options
		// written here are the same recipe's, adapted alike.
		opts, adapted = c.adapt(s, orig, c.recipes[orig], opts, true)
	}
	var rest []*cvOption
	for _, o := range opts {
		switch {
		case o.name == "recipe":
			note(o)
			b.SetAttributeRaw("recipe", raw(c.recipe(s.name, o)))
		case o.name == "<":
			var items []string
			for _, m := range macroNames(o.value) {
				items = append(items, quoteLiteral(MangleName(m)))
			}
			note(o)
			b.SetAttributeRaw("macro", raw("["+strings.Join(items, ", ")+"]"))
		case o.name == "<part-dependencies>":
			var items []string
			for _, d := range strings.Fields(o.value) {
				items = append(items, "part."+MangleName(d))
			}
			note(o)
			b.SetAttributeRaw("depends_on", raw("["+strings.Join(items, ", ")+"]"))
		default:
			rest = append(rest, o)
		}
	}
	for _, o := range rest {
		name := o.name
		if o.op != OpSet {
			name = strings.TrimRight(o.name, map[Op]string{OpAppend: " +", OpRemove: " -"}[o.op])
		}
		if name == "" {
			c.warn(o.pos, WarnEmptyName, "[%s] option %q has an empty name once its operator is removed; not converted", s.name, o.name)
			continue
		}
		c.curOpt = name
		attr := MangleName(name)
		switch attr {
		case "recipe", "macro", "depends_on":
			renamed := attr + "_option"
			c.warn(o.pos, WarnReservedName, "[%s] option %q is a reserved attribute of part blocks; written as %q", s.name, name, renamed)
			attr = renamed
		}
		// =, += and -= of one name in one section are one attribute:
		// buildout applies += then -= to the section's own value, else to
		// the earlier one (base.NAME: that of the files extended before, or
		// of the <= macro for a section defined here first, or none;
		// docs/profiles.md §1.1).
		var ops [3]*cvOption
		for _, p := range rest {
			pn := p.name
			if p.op != OpSet {
				pn = strings.TrimRight(p.name, map[Op]string{OpAppend: " +", OpRemove: " -"}[p.op])
			}
			if pn == name {
				ops[p.op] = p
			}
		}
		if o != firstOf(ops[:]...) {
			continue // written with the first of its name
		}
		if ops[OpAppend] == nil && ops[OpRemove] == nil {
			note(o)
			b.SetAttributeRaw(attr, raw(c.expr(s.name, o.value, o.pos)))
			continue
		}
		expr := "base." + attr
		if p := ops[OpSet]; p != nil {
			note(p)
			expr = c.expr(s.name, p.value, p.pos)
		}
		for _, op := range []Op{OpAppend, OpRemove} {
			p := ops[op]
			if p == nil {
				continue
			}
			note(p)
			args := []string{expr}
			for _, l := range strings.Split(p.value, "\n") {
				args = append(args, c.expr(s.name, l, p.pos))
			}
			expr = map[Op]string{OpAppend: "appendlines", OpRemove: "removelines"}[op] + "(" + strings.Join(args, ", ") + ")"
		}
		b.SetAttributeRaw(attr, raw(expr))
	}
	// The comments of options an adapter rewrote go before what it wrote.
	for _, o := range all {
		note(o)
	}
	for _, a := range adapted {
		b.SetAttributeRaw(a.name, raw(a.expr))
	}
}

// setsParts reports whether the file's [buildout] sets parts.
func (c *converter) setsParts(secs []*cvSection) bool {
	for _, s := range secs {
		if s.name == "buildout" {
			for _, o := range s.options {
				if strings.TrimRight(o.name, " +-") == "parts" {
					return true
				}
			}
		}
	}
	return false
}

func (c *converter) hasPlainParts(s *cvSection) bool {
	for _, o := range s.options {
		if o.name == "parts" {
			return true
		}
	}
	return false
}

// macroNames splits a `<=` value as buildout does: one section per line
// (`<= a b` names the section "a b", which does not exist).
func macroNames(v string) []string {
	var out []string
	for _, l := range strings.Split(v, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// firstOf returns the option of ops that comes first in its file.
func firstOf(ops ...*cvOption) *cvOption {
	var first *cvOption
	for _, o := range ops {
		if o != nil && (first == nil || o.pos.Line < first.pos.Line) {
			first = o
		}
	}
	return first
}

func (c *converter) recipe(section string, o *cvOption) string {
	r := strings.TrimSpace(o.value)
	if r == "" {
		// Cancels an inherited recipe: the part is a data part
		// (docs/profiles.md §1.3).
		return `""`
	}
	if strings.Contains(r, "${") {
		c.warn(o.pos, WarnUnmappedRecipe, "[%s] recipe %q is computed; kept as written", section, r)
		return c.expr(section, r, o.pos)
	}
	if n, ok := c.recipes[r]; ok {
		return quoteLiteral(n)
	}
	c.warn(o.pos, WarnUnmappedRecipe, "[%s] recipe %s has no built-in equivalent: kept as written with its options (map it with --recipe-map %s=MODULE:RECIPE)", section, r, r)
	c.res.Warnings[len(c.res.Warnings)-1].Subject = r
	return quoteLiteral(r)
}

// segment of a value: literal text, or an HCL expression.
type segment struct {
	lit  string
	expr string
}

// segments splits a buildout value into literal text and references, the
// way buildout substitutes it: `$$` pieces are never references.
func (c *converter) segments(section, v string, pos Pos, unescape bool) []segment {
	var segs []segment
	addLit := func(s string) {
		if s == "" {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].expr == "" {
			segs[n-1].lit += s
			return
		}
		segs = append(segs, segment{lit: s})
	}
	for i, piece := range strings.Split(v, "$$") {
		if i > 0 {
			if unescape {
				addLit("$")
			} else {
				addLit("$$")
			}
		}
		last := 0
		for _, loc := range refSplit.FindAllStringIndex(piece, -1) {
			addLit(piece[last:loc[0]])
			last = loc[1]
			ref := piece[loc[0]:loc[1]]
			sec, opt, err := CheckRef(ref)
			if err != nil {
				c.warn(pos, WarnBadReference, "[%s] %v; kept as literal text (buildout fails if the option is used)", section, err)
				addLit(ref)
				continue
			}
			segs = append(segs, c.reference(section, sec, opt, pos)...)
		}
		addLit(piece[last:])
	}
	return segs
}

// engineDirs are the [buildout] directories the engine provides, as
// suffixes of the software (or partition) directory. shared-part-list is
// what slapgrid sets when the node shares parts between releases: slapnode
// builds a `shared = true` part in its own location, so the only directory
// holding the release's parts is its parts directory.
var engineDirs = map[string]string{"directory": "", "bin-directory": "/bin", "parts-directory": "/parts", "eggs-directory": "/eggs", "develop-eggs-directory": "/develop-eggs", "shared-part-list": "/parts"}

var slapConnection = map[string]string{"computer-id": "node.id", "partition-id": "partition.id"}

// hostPython is ${buildout:executable} when no profile sets it: the Python
// that runs buildout, in slapnode the host's (the resolver's default too).
const hostPython = "/usr/bin/python3"

func (c *converter) reference(self, sec, opt string, pos Pos) []segment {
	if sec == "" {
		sec = self
	}
	switch {
	case opt == "_buildout_section_name_" && sec == self:
		if c.flatten {
			return []segment{{lit: self}}
		}
		// In a <= macro it names the section using the macro: block.name.
		return []segment{{expr: "block.name"}}
	case opt == ProfileBaseOption:
		if c.flatten {
			d, ok := c.baseDirs[sec]
			if !ok {
				break
			}
			rel, err := filepath.Rel(c.rootDir, d)
			if err != nil || rel == "." {
				return []segment{{expr: "profile.dir"}}
			}
			return []segment{{expr: "profile.dir"}, {lit: "/" + filepath.ToSlash(rel)}}
		}
		if sec == self {
			// The directory of the file defining the section (for a <=
			// macro, the section using it): block.dir.
			return []segment{{expr: "block.dir"}}
		}
		c.warn(pos, WarnProfileBase, "${%s:%s} is the directory of the file defining [%s]; written as profile.dir, the directory of the profile applied", sec, opt, sec)
		return []segment{{expr: "profile.dir"}}
	case sec == "buildout":
		// `eggs-directory = ${buildout:eggs-directory}` in [buildout] (a
		// template passing the software's value on) names the engine's
		// value, not itself.
		selfRef := self == "buildout" && c.curOpt == opt
		set := c.buildout[opt] || c.opts.closure != nil && c.opts.closure.buildout[opt]
		if suffix, ok := engineDirs[opt]; ok && (!set || selfRef) {
			root := "software.path"
			if c.kind == "instance" {
				root = "partition.path"
			}
			return []segment{{expr: root}, {lit: suffix}}
		}
		if set && !selfRef {
			break
		}
		if opt == "executable" {
			c.warn(pos, WarnEngineKey, "${buildout:executable} is the Python running buildout: written as %s, the host's", hostPython)
			return []segment{{lit: hostPython}}
		}
		if v, ok := buildoutDefaults[opt]; ok && (c.opts.closure != nil || c.flatten) {
			// A default of buildout's own that no file of the release sets.
			return []segment{{lit: v}}
		}
	case sec == "slap-connection":
		if e, ok := slapConnection[opt]; ok {
			return []segment{{expr: e}}
		}
		if !c.defined[sec] && !c.runtime[sec] {
			c.runtime[sec] = true
			c.warn(pos, WarnRuntimeSection, "[slap-connection] is injected by slapos node; slapnode provides node.id and partition.id only: ${slap-connection:%s} written as part.slap-connection.%s", opt, MangleName(opt))
		}
	}
	if sec == self && !c.topLevel {
		// ${:opt} is the section's own option — in a <= macro, the option of
		// the part that uses the macro: self.opt (docs/profiles.md §1.3).
		return []segment{{expr: "self." + MangleName(opt)}}
	}
	return []segment{{expr: "part." + MangleName(sec) + "." + MangleName(opt)}}
}

// buildoutDefaults are [buildout] options buildout itself sets (zc.buildout's
// _buildout_default_options), without the engine's directories and Python.
var buildoutDefaults = map[string]string{
	"allow-hosts": "*", "allow-picked-versions": "true", "find-links": "", "install-from-cache": "false",
	"installed": ".installed.cfg", "log-format": "", "log-level": "INFO", "newest": "true", "offline": "false",
	"prefer-final": "true", "python": "buildout", "show-picked-versions": "false", "socket-timeout": "",
	"update-versions-file": "", "use-dependency-links": "true", "allow-unknown-extras": "false",
}

// expr renders a buildout value as an HCL expression: a lone reference is
// a bare traversal, one line is a quoted template, several lines are a
// heredoc (chomp removes the newline a heredoc always ends with, so the
// value is exact).
func (c *converter) expr(section, v string, pos Pos) string {
	return c.exprWith(section, v, pos, false)
}

// exprWith is expr; unescape renders buildout's `$$` as `$`, as
// slapos.recipe.template does when it renders a template.
func (c *converter) exprWith(section, v string, pos Pos, unescape bool) string {
	segs := c.segments(section, v, pos, unescape)
	if len(segs) == 1 && segs[0].expr != "" {
		return segs[0].expr
	}
	// A literal `$` right before an interpolation would read as the
	// `$${` escape: move it into an interpolation of its own.
	for i := 0; i+1 < len(segs); i++ {
		if segs[i].expr == "" && segs[i+1].expr != "" && strings.HasSuffix(segs[i].lit, "$") {
			t := strings.TrimRight(segs[i].lit, "$")
			dollars := segs[i].lit[len(t):]
			segs[i].lit = t
			segs = append(segs[:i+1], append([]segment{{expr: fmt.Sprintf("%q", dollars)}}, segs[i+1:]...)...)
		}
	}
	if !strings.Contains(v, "\n") {
		var b strings.Builder
		b.WriteByte('"')
		for _, s := range segs {
			if s.expr != "" {
				b.WriteString("${" + s.expr + "}")
			} else {
				b.WriteString(escapeQuoted(s.lit))
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	var b strings.Builder
	for _, s := range segs {
		if s.expr != "" {
			b.WriteString("${" + s.expr + "}")
		} else {
			b.WriteString(escapeTemplate(s.lit))
		}
	}
	content := b.String()
	delim := "EOT"
	for n := 1; heredocClash(content, delim); n++ {
		delim = fmt.Sprintf("EOT%d", n)
	}
	return "chomp(<<" + delim + "\n" + content + "\n" + delim + "\n)"
}

func heredocClash(content, delim string) bool {
	for _, l := range strings.Split(content, "\n") {
		if strings.TrimSpace(l) == delim {
			return true
		}
	}
	return false
}

func escapeTemplate(s string) string {
	s = strings.ReplaceAll(s, "${", "$${")
	return strings.ReplaceAll(s, "%{", "%%{")
}

func escapeQuoted(s string) string {
	var b strings.Builder
	for _, r := range escapeTemplate(s) {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

func quoteLiteral(s string) string { return `"` + escapeQuoted(s) + `"` }

// Summary counts a batch of conversions for the report line.
type Summary struct {
	Files, Converted, Failed int
	// Copied counts the files the profiles read, copied beside the HCL.
	Copied   int
	Warnings map[string]int
	Unmapped map[string]int
}

// Add accounts one result (nil with err for a file that did not parse).
func (s *Summary) Add(r *Result, err error) {
	if s.Warnings == nil {
		s.Warnings, s.Unmapped = map[string]int{}, map[string]int{}
	}
	s.Files++
	if err != nil {
		s.Failed++
		return
	}
	if r.HCL != nil {
		s.Converted++
	}
	for _, w := range r.Warnings {
		s.Warnings[w.Kind]++
		if w.Kind == WarnUnmappedRecipe && w.Subject != "" {
			s.Unmapped[w.Subject]++
		}
	}
}

func (s *Summary) String() string {
	var parts []string
	for _, k := range sortedKeys(s.Warnings) {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.Warnings[k]))
	}
	total := 0
	for _, n := range s.Warnings {
		total += n
	}
	w := fmt.Sprintf("%d warnings", total)
	if len(parts) > 0 {
		w += " (" + strings.Join(parts, ", ") + ")"
	}
	copied := ""
	if s.Copied > 0 {
		copied = fmt.Sprintf(" %d files copied,", s.Copied)
	}
	return fmt.Sprintf("%d files, %d converted, %d failed,%s %s", s.Files, s.Converted, s.Failed, copied, w)
}

// UnmappedByFrequency lists unmapped recipes, most frequent first.
func (s *Summary) UnmappedByFrequency() []string {
	keys := sortedKeys(s.Unmapped)
	sort.SliceStable(keys, func(i, j int) bool { return s.Unmapped[keys[i]] > s.Unmapped[keys[j]] })
	return keys
}

// nodeRecipe reports whether a recipe is one of those written in a form
// the node acts on (emitNodeSection, emitPublishEarly), never adapted.
func nodeRecipe(r string) bool {
	k, _ := InstanceRecipe(r)
	return k != "" || NodeRecipes[r] != ""
}
