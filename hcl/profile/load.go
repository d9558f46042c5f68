package profile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Kind tells a software profile from an instance profile: they accept
// different blocks.
type Kind int

const (
	// Software is a software release profile (software.hcl).
	Software Kind = iota
	// Instance is an instance profile (instance.hcl), evaluated per partition.
	Instance
)

func (k Kind) String() string {
	if k == Software {
		return "software"
	}
	return "instance"
}

// Attr is one attribute after merging. Base holds the attributes of the same
// block as they were before the file that defined this attribute was merged,
// so that `base.NAME` can be evaluated (buildout's += and -=). Base is nil
// when nothing defined the block before; for a part that copies a macro, it
// is then the attributes copied from the macro (buildout's += against a <=
// macro's value).
type Attr struct {
	Name  string
	Expr  hcl.Expression
	Range hcl.Range // the whole "name = expr" range
	Base  map[string]*Attr
	// topParts marks the top-level parts attribute, whose base.parts is an
	// empty list when no earlier file sets parts.
	topParts bool
	// Helper marks a value of a part's extra = { … }: readable as an
	// option of the part (part.NAME.KEY, self.KEY), never passed to its
	// recipe.
	Helper bool

	// vars is Expr.Variables(), computed once when the profile is loaded
	// (varsSet): loading, checking and evaluating a profile read each
	// attribute's variables several times, and each call walks the
	// expression anew.
	vars    []hcl.Traversal
	varsSet bool
}

// Variables returns a.Expr.Variables(), computed once for the attributes
// of a loaded profile (an Attr is not to change once loaded).
func (a *Attr) Variables() []hcl.Traversal {
	if a.varsSet {
		return a.vars
	}
	return a.Expr.Variables()
}

// newAttrs returns n attributes allocated at once.
func newAttrs(n int) []Attr { return make([]Attr, n) }

// Block is a merged block: the union of its definitions along the extends
// chain, later attributes replacing earlier ones.
type Block struct {
	Type     string
	Labels   []string
	Attrs    map[string]*Attr
	DefRange hcl.Range // of the last definition
	order    int       // first definition order, for stable output
	// deferred are errors reported only if the block is used (a macro
	// naming no part): buildout fails only when it initialises the section.
	deferred hcl.Diagnostics
	// Buildout: the block's last definition is in a file `slapnode
	// convert` wrote (its first line says so). A buildout section holds
	// any option: the options its recipe does not take are its helper
	// values, never mistakes.
	Buildout bool

	// dir is block.dir when a definition reads it: the directory of the
	// last definition that does, else of the last macro's that has one
	// ("" otherwise: the last definition's directory).
	dir string
}

// readsBlockDir reports whether an expression reads block.dir, given its
// variables.
func readsBlockDir(vars []hcl.Traversal) bool {
	for _, t := range vars {
		if t.RootName() != "block" || len(t) < 2 {
			continue
		}
		if a, ok := t[1].(hcl.TraverseAttr); ok && a.Name == "dir" {
			return true
		}
	}
	return false
}

// Name is the block's first label ("" for unlabelled blocks).
func (b *Block) Name() string {
	if len(b.Labels) == 0 {
		return ""
	}
	return b.Labels[0]
}

// AttrNames returns the attribute names in a stable order.
func (b *Block) AttrNames() []string {
	names := make([]string, 0, len(b.Attrs))
	for n := range b.Attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (b *Block) key() string { return blockKey(b.Type, b.Labels) }

func blockKey(typ string, labels []string) string {
	return typ + "\x00" + strings.Join(labels, "\x00")
}

// Profile is a loaded, merged profile.
type Profile struct {
	Kind  Kind
	File  string   // absolute path of the profile named by the user
	Dir   string   // its directory
	Files []string // every file loaded, in merge order (bases first)
	// Digest is the sha256 of every loaded file's path and content: a change
	// to any of them changes it.
	Digest string

	Blocks []*Block          // all merged blocks in first-definition order
	Locals map[string]*Attr  // merged locals
	Parts  []*Block          // part blocks, definition order
	Part   map[string]*Block // by name
	// Selected is the top-level `parts` list (nil when absent: every part).
	// A computed list (one that reads parts' options, as buildout's
	// `parts = ${section:list}`) is known only when the graph is built:
	// Selected is nil then and PartsAttr holds the expression.
	Selected      []string
	SelectedRange *hcl.Range
	// PartsAttr is the merged top-level `parts` attribute (nil when absent).
	// Its base.parts is the parts list of the files extended before.
	PartsAttr *Attr
	// partsComputed says PartsAttr needs the graph's evaluator.
	partsComputed bool

	parser *hclparse.Parser
	roots  []string // directories file functions may read
	reads  map[string]map[string]bool

	graphMu sync.Mutex
	graph   *graphMemo // the last Graph built, with the extra blocks it was built for
}

// graphMemo is a built graph: a first apply builds the same one twice
// (Check, then Apply), 3% of its CPU at 1000 parts.
type graphMemo struct {
	extra []*Block
	g     *Graph
	diags hcl.Diagnostics
}

// Sources returns the parsed files, for rendering diagnostics with snippets.
func (p *Profile) Sources() map[string]*hcl.File { return p.parser.Files() }

// BlocksOf returns the merged blocks of one type, in definition order.
func (p *Profile) BlocksOf(typ string) []*Block {
	var out []*Block
	for _, b := range p.Blocks {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// blockSchemas lists, per kind, the top-level blocks and whether each takes a
// label.
var blockSchemas = map[Kind][]hcl.BlockHeaderSchema{
	Software: {
		{Type: "software", LabelNames: []string{"name"}},
		{Type: "module", LabelNames: []string{"name"}},
		{Type: "part", LabelNames: []string{"name"}},
		{Type: "instance", LabelNames: []string{"software_type"}},
		{Type: "locals"},
	},
	Instance: {
		{Type: "module", LabelNames: []string{"name"}},
		{Type: "part", LabelNames: []string{"name"}},
		{Type: "service", LabelNames: []string{"name"}},
		{Type: "schedule", LabelNames: []string{"name"}},
		{Type: "promise", LabelNames: []string{"name"}},
		{Type: "publish"},
		{Type: "publish_shared"},
		{Type: "request", LabelNames: []string{"name"}},
		{Type: "locals"},
	},
}

var topAttrs = []hcl.AttributeSchema{{Name: "extends"}, {Name: "parts"}, {Name: "remove"}}

// Fixed attribute sets of the blocks whose attributes are not free-form
// options. nil means "any attribute" (parts, publish, promise options, locals).
var blockAttrs = map[string][]string{
	"software":       {"version", "description", "title"},
	"module":         {"source", "sha256", "memory", "timeout", "allow_exec", "allow_env", "allow_net", "description"},
	"instance":       {"profile", "parameters", "connection", "description", "title", "serialisation", "shared", "index", "shared_parameters"},
	"service":        {"command", "env", "watch", "stop_grace", "dir", "depends_on"},
	"schedule":       {"cron", "command", "env", "dir", "depends_on"},
	"request":        {"software", "software_type", "parameters", "shared", "state", "node", "depends_on"},
	"publish_shared": {"connections"},
}

// Load reads the profile at path and every file it extends, and merges them.
// All errors of all files are returned together.
func Load(path string, kind Kind) (*Profile, hcl.Diagnostics) {
	return load(path, kind, nil, LoadOptions{})
}

// LoadOptions tunes how a profile is loaded; the zero value is Load's.
type LoadOptions struct {
	// Cores is how many cores a large file may be parsed on at once
	// (docs/profiles.md §1.8); 0 means all of them. A caller running other
	// work meanwhile leaves it its core: the node loads the cookbook
	// while it parses a release (partition.Engine.Preload).
	Cores int
}

// LoadWith is Load with options.
func LoadWith(path string, kind Kind, o LoadOptions) (*Profile, hcl.Diagnostics) {
	return load(path, kind, nil, o)
}

// load is Load with some files' content given in memory (LoadSource).
func load(path string, kind Kind, mem map[string][]byte, o LoadOptions) (*Profile, hcl.Diagnostics) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid profile path", Detail: err.Error()}}
	}
	l := &loader{
		p: &Profile{
			Kind: kind, File: abs, Dir: filepath.Dir(abs),
			Locals: map[string]*Attr{}, Part: map[string]*Block{},
			parser: hclparse.NewParser(),
		},
		blocks: map[string]*Block{},
		seen:   map[string]bool{},
		mem:    mem,
		cores:  o.Cores,
	}
	l.load(abs, nil, nil)
	p := l.p
	h := sha256.New()
	for _, f := range p.Files {
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(l.content[f]))
		h.Write(l.content[f])
		dir := filepath.Dir(f)
		if !containsDir(p.roots, dir) {
			p.roots = append(p.roots, dir)
		}
	}
	p.Digest = hex.EncodeToString(h.Sum(nil))
	for _, b := range l.blocks {
		p.Blocks = append(p.Blocks, b)
	}
	sort.Slice(p.Blocks, func(i, j int) bool { return p.Blocks[i].order < p.Blocks[j].order })
	for _, b := range p.Blocks {
		switch b.Type {
		case "part":
			p.Parts = append(p.Parts, b)
			p.Part[b.Name()] = b
		case "locals":
			for n, a := range b.Attrs {
				p.Locals[n] = a
			}
		}
	}
	l.diags = append(l.diags, p.expandMacros()...)
	p.dropEmptyRecipes()
	l.diags = append(l.diags, p.staticParts()...)
	l.diags = append(l.diags, p.checkSelected()...)
	return p, l.diags
}

func containsDir(list []string, d string) bool {
	for _, x := range list {
		if x == d || strings.HasPrefix(d, x+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

type loader struct {
	cores   int // LoadOptions.Cores
	p       *Profile
	blocks  map[string]*Block
	seen    map[string]bool
	order   int
	diags   hcl.Diagnostics
	content map[string][]byte
	mem     map[string][]byte // files given in memory, by absolute path
	// buildout: the file being merged was written by slapnode convert.
	buildout bool
}

// load parses one file, loads what it extends first, then merges it.
func (l *loader) load(path string, stack []string, from *hcl.Range) {
	for i, s := range stack {
		if s == path {
			chain := append(append([]string{}, stack[i:]...), path)
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Extends cycle",
				Detail:  "The extends chain loops: " + strings.Join(chain, " -> ") + ". Remove one of these extends entries.",
				Subject: from,
			})
			return
		}
	}
	if l.seen[path] {
		return // a diamond: each file is merged once, at its first place
	}
	src, inMem := l.mem[path]
	var err error
	if !inMem {
		src, err = readBounded(path)
	}
	if err != nil {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Cannot read profile",
			Detail: fmt.Sprintf("%v.", err), Subject: from,
		})
		return
	}
	if l.content == nil {
		l.content = map[string][]byte{}
	}
	l.content[path] = src
	d, cuts := configBounds(src, path)
	if d != nil {
		l.diags = append(l.diags, d)
		l.seen[path] = true
		return
	}
	f, diags := parseConfig(l.p.parser, src, path, cuts, l.cores)
	l.diags = append(l.diags, diags...)
	if f == nil || diags.HasErrors() {
		l.seen[path] = true
		return
	}
	schema := &hcl.BodySchema{Attributes: topAttrs, Blocks: blockSchemas[l.p.Kind]}
	content, diags := f.Body.Content(schema)
	l.diags = append(l.diags, diags...)
	stack = append(stack, path)
	if a, ok := content.Attributes["extends"]; ok {
		for _, ext := range l.staticStrings(a) {
			target, d := l.resolveExtends(path, ext.val, ext.rng)
			if d != nil {
				l.diags = append(l.diags, d)
				continue
			}
			rng := ext.rng
			l.load(target, stack, &rng)
		}
	}
	l.seen[path] = true
	l.p.Files = append(l.p.Files, path)
	if a, ok := content.Attributes["remove"]; ok {
		for _, r := range l.staticStrings(a) {
			typ, name, ok := strings.Cut(r.val, ".")
			key := blockKey(typ, []string{name})
			if !ok || l.blocks[key] == nil {
				rng := r.rng
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Nothing to remove",
					Detail:  fmt.Sprintf("%q names no block defined by the profiles this one extends; write TYPE.NAME, e.g. \"part.dirs\".", r.val),
					Subject: &rng,
				})
				continue
			}
			delete(l.blocks, key)
		}
	}
	if a, ok := content.Attributes["parts"]; ok {
		var base map[string]*Attr
		if l.p.PartsAttr != nil {
			base = map[string]*Attr{"parts": l.p.PartsAttr}
		}
		l.p.PartsAttr = &Attr{Name: "parts", Expr: a.Expr, Range: a.Range, Base: base, topParts: true, vars: a.Expr.Variables(), varsSet: true}
		rng := a.Range
		l.p.SelectedRange = &rng
	}
	l.buildout = IsConverted(src)
	for _, hb := range content.Blocks {
		l.mergeBlock(hb)
	}
}

// convertedHeader starts the first line of every file `slapnode convert`
// writes.
var convertedHeader = []byte("# Converted from ")

// IsConverted reports whether a profile file was written by `slapnode
// convert` from a buildout file: its first line says so.
func IsConverted(src []byte) bool {
	line, _, _ := bytes.Cut(src, []byte("\n"))
	return bytes.HasPrefix(line, convertedHeader) && bytes.Contains(line, []byte(" by slapnode convert"))
}

type staticString struct {
	val string
	rng hcl.Range
}

// staticStrings evaluates a list-of-strings attribute that may not use
// variables (extends, parts, remove, macro).
func (l *loader) staticStrings(a *hcl.Attribute) []staticString {
	var out []staticString
	if exprs, d := hcl.ExprList(a.Expr); !d.HasErrors() {
		for _, e := range exprs {
			v, d := e.Value(nil)
			if d.HasErrors() || v.Type() != cty.String || v.IsNull() {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid " + a.Name + " entry",
					Detail:  "Each entry of " + a.Name + " must be a literal string (no references).",
					Subject: e.Range().Ptr(),
				})
				continue
			}
			out = append(out, staticString{v.AsString(), e.Range()})
		}
		return out
	}
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Invalid " + a.Name,
		Detail:  a.Name + " must be a list of strings, e.g. " + a.Name + " = [\"a\", \"b\"].",
		Subject: a.Expr.Range().Ptr(),
	})
	return nil
}

// resolveExtends turns an extends entry into a local file path. URLs must
// pin their content with #sha256=HEX; they are fetched through the download
// cache by FetchURL.
func (l *loader) resolveExtends(from, ext string, rng hcl.Range) (string, *hcl.Diagnostic) {
	if strings.Contains(ext, "://") {
		p, err := FetchURL(ext)
		if err != nil {
			return "", &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot extend URL", Detail: err.Error(), Subject: &rng}
		}
		return p, nil
	}
	if !filepath.IsAbs(ext) {
		ext = filepath.Join(filepath.Dir(from), ext)
	}
	return filepath.Clean(ext), nil
}

// mergeBlock merges one parsed block into the set: attributes of the new
// definition replace those of the same name.
func (l *loader) mergeBlock(hb *hcl.Block) {
	attrs, diags := hb.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	if allowed, fixed := blockAttrs[hb.Type]; fixed {
		for name, a := range attrs {
			if !contains(allowed, name) {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unsupported argument",
					Detail:  fmt.Sprintf("A %s block does not take %q.%s It takes: %s.", hb.Type, name, suggest(name, allowed), strings.Join(allowed, ", ")),
					Subject: a.NameRange.Ptr(),
				})
				delete(attrs, name)
			}
		}
	}
	var helpers map[string]bool
	// extra = { … } holds a part's helper values. Written as anything
	// but an object constructor it is an option like any other (buildout
	// sections have options named extra).
	if a := attrs["extra"]; a != nil && hb.Type == "part" && isObjectCons(a.Expr) {
		delete(attrs, "extra")
		for _, h := range l.helpers(a) {
			if attrs[h.Name] != nil {
				l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate option",
					Detail: fmt.Sprintf("%q is both an option of the part and a value of its extra: keep one.", h.Name), Subject: h.NameRange.Ptr()})
				continue
			}
			attrs[h.Name] = h
			if helpers == nil {
				helpers = map[string]bool{}
			}
			helpers[h.Name] = true
		}
	}
	key := blockKey(hb.Type, hb.Labels)
	b := l.blocks[key]
	existed := b != nil
	if b == nil {
		l.order++
		b = &Block{Type: hb.Type, Labels: hb.Labels, Attrs: map[string]*Attr{}, order: l.order}
		l.blocks[key] = b
	}
	b.DefRange = hb.DefRange
	b.Buildout = l.buildout
	var before map[string]*Attr
	if existed {
		before = make(map[string]*Attr, len(b.Attrs))
		for n, a := range b.Attrs {
			before[n] = a
		}
	}
	all := newAttrs(len(attrs))
	readsDir := false
	for name, a := range attrs {
		na := &all[0]
		all = all[1:]
		*na = Attr{Name: name, Expr: a.Expr, Range: a.Range, Base: before, Helper: helpers[name], vars: a.Expr.Variables(), varsSet: true}
		b.Attrs[name] = na
		readsDir = readsDir || readsBlockDir(na.vars)
	}
	if readsDir {
		// block.dir: the directory of the last definition that reads it
		// (SlapOS's ${:_profile_base_location_}, §1.3).
		b.dir = filepath.Dir(hb.DefRange.Filename)
	}
}

func isObjectCons(e hcl.Expression) bool {
	_, ok := e.(*hclsyntax.ObjectConsExpr)
	return ok
}

// helpers turns a part's extra = { KEY = expr, … } into attributes: each
// key a value of the part that its recipe does not get.
func (l *loader) helpers(a *hcl.Attribute) []*hcl.Attribute {
	pairs, d := hcl.ExprMap(a.Expr)
	if d.HasErrors() {
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid extra",
			Detail: "extra holds the part's helper values, written as an object: extra = { name = value, … }.", Subject: a.Expr.Range().Ptr()})
		return nil
	}
	var out []*hcl.Attribute
	for _, kv := range pairs {
		k, d := kv.Key.Value(nil)
		if d.HasErrors() || k.Type() != cty.String || k.IsNull() {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid extra key",
				Detail: "Each key of extra is a name written literally.", Subject: kv.Key.Range().Ptr()})
			continue
		}
		rng := hcl.RangeBetween(kv.Key.Range(), kv.Value.Range())
		out = append(out, &hcl.Attribute{Name: k.AsString(), Expr: kv.Value, Range: rng, NameRange: kv.Key.Range()})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// expandMacros implements buildout's `<=`: a part's `macro` list names parts
// whose attributes are copied first; the part's own attributes win. A macro
// naming no part, or a loop of macros, is an error of the part, reported
// when the part is used (as buildout fails only when it initialises it).
func (p *Profile) expandMacros() hcl.Diagnostics {
	var diags hcl.Diagnostics
	done := map[string]bool{}
	var expand func(b *Block, stack []string)
	expand = func(b *Block, stack []string) {
		name := b.Name()
		if done[name] {
			return
		}
		m, ok := b.Attrs["macro"]
		if !ok {
			done[name] = true
			return
		}
		for _, s := range stack {
			if s == name {
				b.deferred = append(b.deferred, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Macro cycle",
					Detail:  "The macros loop: " + strings.Join(append(stack, name), " -> ") + ".",
					Subject: m.Range.Ptr(),
				})
				return
			}
		}
		l := &loader{}
		names := l.staticStrings(&hcl.Attribute{Name: "macro", Expr: m.Expr, Range: m.Range})
		diags = append(diags, l.diags...)
		merged := map[string]*Attr{}
		copied := map[string]*Attr{}
		ownDir := b.dir != ""
		for _, n := range names {
			src := p.Part[n.val]
			if src == nil {
				rng := n.rng
				b.deferred = append(b.deferred, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown macro",
					Detail:  fmt.Sprintf("No part %q to copy options from.%s", n.val, suggest(n.val, p.partNames())),
					Subject: &rng,
				})
				continue
			}
			expand(src, append(stack, name))
			b.deferred = append(b.deferred, src.deferred...)
			if !ownDir && src.dir != "" {
				// buildout's <= copies the macro's _profile_base_location_
				// when the section has none of its own.
				b.dir = src.dir
			}
			for an, a := range src.Attrs {
				merged[an] = a
				copied[an] = a
			}
		}
		for an, a := range b.Attrs {
			if a.Base == nil && an != "macro" {
				// The part's first definition: base.NAME is the macro's
				// value, as buildout applies += / -= to what <= copied.
				c := *a
				c.Base = copied
				a = &c
			}
			merged[an] = a
		}
		delete(merged, "macro")
		b.Attrs = merged
		done[name] = true
	}
	for _, b := range p.Parts {
		expand(b, nil)
	}
	return diags
}

func (p *Profile) partNames() []string {
	names := make([]string, 0, len(p.Parts))
	for _, b := range p.Parts {
		names = append(names, b.Name())
	}
	return names
}

func (p *Profile) checkSelected() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, s := range p.Selected {
		if p.Part[s] == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unknown part in parts",
				Detail:  fmt.Sprintf("parts lists %q, but no part of that name is defined.%s", s, suggest(s, p.partNames())),
				Subject: p.SelectedRange,
			})
		}
	}
	return diags
}

// suggest returns " Did you mean "x"?" for the closest name, if any is close.
func suggest(name string, names []string) string {
	best, bestD := "", 4
	for _, n := range names {
		if d := levenshtein(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Input bounds (docs/profiles.md §1.8). hclsyntax's parser recurses once per
// nesting level (about 20 KiB of stack each: 20,000 levels took 447 MB,
// 100,000 overflowed the stack and killed the process), and evaluating an
// expression recurses once per operator of a chain, so both are bounded
// before the parser sees the bytes.
const (
	// MaxFileSize bounds every profile file and template (1 MiB; the
	// largest SlapOS profile is 44 KB).
	MaxFileSize = 1 << 20
	// MaxNesting bounds how deep an HCL file nests: brackets, braces,
	// parentheses, strings and ${…} interpolations, template directives,
	// runs of unary operators, and chains of binary operators, indexes and
	// conditionals within one expression.
	MaxNesting = 256
)

// readBounded reads a profile file of at most MaxFileSize bytes, without
// reading more than that from whatever path names (a device, a FIFO).
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB, the limit for a profile file: split it with extends", path, MaxFileSize>>20)
	}
	return src, nil
}

// checkBounds reports a file larger than MaxFileSize or nesting deeper
// than MaxNesting (src is a config file, or a template when template is
// set).
func checkBounds(src []byte, filename string, template bool) *hcl.Diagnostic {
	d, _ := bounds(src, filename, template, 0)
	return d
}

// configBounds is checkBounds for a profile file; it also returns where
// the file may be cut for parseConfig (nil: parse it whole).
func configBounds(src []byte, filename string) (*hcl.Diagnostic, []int) {
	return bounds(src, filename, false, splitBytes)
}

func bounds(src []byte, filename string, template bool, cutEvery int) (*hcl.Diagnostic, []int) {
	if len(src) > MaxFileSize {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "File too large",
			Detail: fmt.Sprintf("%s is larger than %d MiB, the limit for a profile file or template.", filename, MaxFileSize>>20)}, nil
	}
	s := nestScan{cutEvery: cutEvery}
	if s.run(src, template, MaxNesting) <= MaxNesting {
		return nil, s.cuts // the token pass would find no more (nestbound.go)
	}
	if depth, at := nesting(src, filename, template, MaxNesting); depth > MaxNesting {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Nesting too deep",
			Detail:  fmt.Sprintf("The file nests more than %d levels deep here (brackets, strings, interpolations, template directives and chains of operators each count one): slapnode refuses deeper input so that parsing it cannot exhaust memory. Split the expression, e.g. with locals.", MaxNesting),
			Subject: &at}, nil
	}
	return nil, nil
}

// nesting scans src with hclsyntax's lexer, which does not recurse, and
// returns how deep it nests, stopping at the first token deeper than
// limit (returned with its range). The count is an upper bound of the
// parser's and the evaluator's recursion: each open bracket, string,
// interpolation and template directive, each unary operator of a run, and
// each binary operator, index or conditional since the start of the
// current item (a comma, an =, or a newline where newlines separate items)
// counts one level.
func nesting(src []byte, filename string, template bool, limit int) (int, hcl.Range) {
	var toks hclsyntax.Tokens
	if template {
		toks, _ = hclsyntax.LexTemplate(src, filename, hcl.InitialPos)
	} else {
		toks, _ = hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	}
	type frame struct {
		chain     int  // operators of the current item at this level
		newlineEq bool // newlines separate items here (a body or object)
	}
	stack := []frame{{newlineEq: !template}}
	chains, unary, directives, deepest := 0, 0, 0, 0
	// afterOperand: the previous token ends an operand, so a [ is an
	// index and a - is binary (else a tuple and a negation).
	afterOperand := false
	for i, t := range toks {
		top := &stack[len(stack)-1]
		operand := afterOperand
		switch t.Type {
		case hclsyntax.TokenIdent, hclsyntax.TokenNumberLit, hclsyntax.TokenCParen, hclsyntax.TokenCBrack,
			hclsyntax.TokenCBrace, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			afterOperand = true
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
			if top.newlineEq {
				afterOperand = false
			}
		default:
			afterOperand = false
		}
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if t.Type == hclsyntax.TokenOBrack && operand {
				top.chain++ // an index extends the expression before it
				chains++
			}
			stack = append(stack, frame{newlineEq: t.Type == hclsyntax.TokenOBrace})
			if t.Type == hclsyntax.TokenTemplateControl && i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent {
				switch string(toks[i+1].Bytes) {
				case "if", "for":
					directives++
				case "endif", "endfor":
					directives = max(directives-1, 0)
				}
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 {
				chains -= top.chain
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenMinus:
			if operand {
				top.chain++
				chains++
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPercent,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr,
			hclsyntax.TokenQuestion:
			top.chain++
			chains++
		case hclsyntax.TokenComma, hclsyntax.TokenEqual:
			chains -= top.chain
			top.chain = 0
		case hclsyntax.TokenNewline:
			if top.newlineEq {
				chains -= top.chain
				top.chain = 0
			}
		}
		if (t.Type == hclsyntax.TokenMinus && !operand) || t.Type == hclsyntax.TokenBang {
			unary++
		} else if t.Type != hclsyntax.TokenNewline && t.Type != hclsyntax.TokenComment {
			unary = 0
		}
		if depth := len(stack) - 1 + chains + unary + directives; depth > deepest {
			deepest = depth
			if depth > limit {
				return depth, t.Range
			}
		}
	}
	return deepest, hcl.Range{}
}

// dropEmptyRecipes makes a part whose recipe is null or "" a data part:
// buildout's empty `recipe =` cancels an inherited recipe (the host's
// binaries are used instead of building them).
func (p *Profile) dropEmptyRecipes() {
	for _, b := range p.Parts {
		a := b.Attrs["recipe"]
		if a == nil || len(a.Variables()) > 0 {
			continue
		}
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			continue
		}
		if v.IsNull() || v.Type() == cty.String && v.IsKnown() && v.AsString() == "" {
			delete(b.Attrs, "recipe")
		}
	}
}

// staticParts evaluates the top-level parts list when it reads nothing but
// the lists of earlier files (a list literal, or concat(base.parts, […]));
// a list computed from parts' options is left to Graph.
func (p *Profile) staticParts() hcl.Diagnostics {
	a := p.PartsAttr
	if a == nil {
		return nil
	}
	if !onlyBase(a) {
		p.partsComputed = true
		return nil
	}
	v, diags := p.Evaluator(nil).EvalAttr(a)
	if diags.HasErrors() {
		return diags
	}
	names, d := partsList(v, a)
	p.Selected = names
	return d
}

// onlyBase reports whether an attribute (and the earlier definitions it
// reads through base) refers to nothing but base.
func onlyBase(a *Attr) bool {
	for _, t := range a.Variables() {
		if t.RootName() != "base" {
			return false
		}
		if len(t) >= 2 && a.Base != nil {
			if n, ok := traverserName(t[1]); ok && a.Base[n] != nil && !onlyBase(a.Base[n]) {
				return false
			}
		}
	}
	return true
}

// stringElems returns the elements of a known tuple or list whose
// elements are all non-null strings, as converting it to a list of
// strings would (ok false for any other value): go-cty's conversion of a
// 1000-name tuple unifies its element types pairwise, 6 ms.
func stringElems(v cty.Value) ([]string, bool) {
	ty := v.Type()
	if v.IsMarked() || !ty.IsTupleType() && !(ty.IsListType() && ty.ElementType() == cty.String) {
		return nil, false
	}
	names := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() != cty.String || e.IsNull() || !e.IsKnown() || e.IsMarked() {
			return nil, false
		}
		names = append(names, e.AsString())
	}
	return names, true
}

// partsList turns the value of parts into part names.
func partsList(v cty.Value, a *Attr) ([]string, hcl.Diagnostics) {
	bad := hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "Invalid parts",
		Detail:  `parts must be a list of part names, e.g. parts = ["a", "b"].`,
		Subject: a.Expr.Range().Ptr(),
	}}
	if v.IsNull() || !v.IsWhollyKnown() {
		return nil, bad
	}
	if names, ok := stringElems(v); ok {
		return names, nil
	}
	l, err := convert.Convert(v, cty.List(cty.String))
	if err != nil {
		return nil, bad
	}
	names := []string{}
	for _, s := range l.AsValueSlice() {
		if s.IsNull() {
			return nil, bad
		}
		names = append(names, s.AsString())
	}
	return names, nil
}
