package profile

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// OptionSpec is what a recipe or a promise check accepts, from its
// module's description: its options with their JSON types, and whether it
// takes others.
type OptionSpec struct {
	Known map[string][]string // option → JSON Schema types; empty: any
	Open  bool                // options it does not name are accepted
}

// CheckOptions give Check what it cannot know from the profile alone.
type CheckOptions struct {
	// Recipe describes MODULE:NAME's options; ok false when the module
	// or its description is not known (its options are not checked).
	Recipe func(module, name string) (spec *OptionSpec, ok bool)
	// Check is Recipe for promise checks.
	Check func(module, name string) (spec *OptionSpec, ok bool)
	// Names lists a module's recipes (promise false) or checks; ok false
	// when the module is not known.
	Names func(module string, promise bool) (names []string, ok bool)
}

// The attributes of a promise block that are its settings, not the
// check's options.
var promiseSettings = []string{"check", "every", "timeout", "test", "anomaly", "failure_amount", "latest_minute", "depends_on"}

// partReserved are the attributes of a part that are not recipe options.
var partReserved = []string{"recipe", "macro", "depends_on"}

// Check finds the mistakes of a loaded profile that evaluation would find
// late or never, all at once: options a recipe or a check does not take
// (with the closest one it does), values of the wrong type for block
// attributes and recipe options, references the graph cannot resolve.
// Values that depend on the node (parameters, partition, parts' outputs)
// are unknown here: only what is certain is reported.
func (p *Profile) Check(o CheckOptions) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var extra []*Block
	for _, typ := range []string{"service", "schedule", "promise", "publish", "publish_shared"} {
		extra = append(extra, p.BlocksOf(typ)...)
	}
	if _, d := p.Graph(extra); d.HasErrors() {
		diags = append(diags, d...)
	}
	c := &checker{p: p, o: o, reads: p.HelperReads()}
	for _, b := range p.Blocks {
		switch b.Type {
		case "part":
			diags = append(diags, c.checkPart(b)...)
		case "promise":
			diags = append(diags, c.checkPromise(b)...)
		}
		for name, k := range attrKinds[b.Type] {
			if a := b.Attrs[name]; a != nil {
				if msg := k.check(c.staticValue(a)); msg != "" {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %s", name),
						Detail: fmt.Sprintf("%s %s: %s", blockTitle(b), name, msg), Subject: a.Expr.Range().Ptr()})
				}
			}
		}
	}
	sortDiags(diags)
	return diags
}

func blockTitle(b *Block) string {
	if b.Name() == "" {
		return b.Type
	}
	return fmt.Sprintf("%s %q", b.Type, b.Name())
}

// sortDiags orders diagnostics by file and position, as a reader goes.
func sortDiags(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		if a == nil || b == nil {
			return a != nil
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// HelperReads lists, per part, the options some expression reads
// (part.NAME.KEY, or self.KEY inside the part); "*" when a part is read
// whole (handed to a template as an object). Such values are buildout's
// helper options: they are there to be read, so a recipe that does not
// take them does not make them mistakes.
func (p *Profile) HelperReads() map[string]map[string]bool {
	if p.reads != nil {
		return p.reads
	}
	out := map[string]map[string]bool{}
	defer func() { p.reads = out }()
	add := func(part, key string) {
		if out[part] == nil {
			out[part] = map[string]bool{}
		}
		out[part][key] = true
	}
	visit := func(owner *Block, a *Attr) {
		for _, t := range a.Variables() {
			switch t.RootName() {
			case "part":
				if len(t) < 2 {
					continue
				}
				name, ok := traverserName(t[1])
				if !ok {
					continue
				}
				key := "*"
				if len(t) >= 3 {
					if k, ok := traverserName(t[2]); ok {
						key = k
					}
				}
				add(name, key)
			case "self":
				if owner != nil && owner.Type == "part" && len(t) >= 2 {
					if k, ok := traverserName(t[1]); ok {
						add(owner.Name(), k)
					}
				}
			}
		}
	}
	for _, b := range p.Blocks {
		for _, a := range b.Attrs {
			visit(b, a)
		}
	}
	if p.PartsAttr != nil {
		visit(nil, p.PartsAttr)
	}
	return out
}

// literalString is the literal value of a part's recipe, or a promise's
// check ("" when it is computed).
func literalString(a *Attr) string {
	if a == nil || len(a.Variables()) > 0 {
		return ""
	}
	v, d := a.Expr.Value(nil)
	if d.HasErrors() || v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
		return ""
	}
	return v.AsString()
}

// checker is one Check: what it asked the module descriptions, and the
// functions of each directory, are kept for every block that needs them
// again (a release's parts use a few recipes many times).
type checker struct {
	p     *Profile
	o     CheckOptions
	reads map[string]map[string]bool
	specs map[specKey]specAnswer
	names map[specKey]namesAnswer
	funcs map[string]map[string]function.Function // by directory
}

type specKey struct {
	mod, name string // name "" for Names
	promise   bool
}

type specAnswer struct {
	spec  *OptionSpec
	known bool
	// sorted are spec.Known's names in order.
	sorted []string
}

type namesAnswer struct {
	names []string
	ok    bool
}

func (c *checker) spec(mod, name string, promise bool) specAnswer {
	k := specKey{mod, name, promise}
	if a, ok := c.specs[k]; ok {
		return a
	}
	var a specAnswer
	if promise {
		a.spec, a.known = c.o.Check(mod, name)
	} else {
		a.spec, a.known = c.o.Recipe(mod, name)
	}
	if a.known && a.spec != nil {
		a.sorted = make([]string, 0, len(a.spec.Known))
		for n := range a.spec.Known {
			a.sorted = append(a.sorted, n)
		}
		sort.Strings(a.sorted)
	}
	if c.specs == nil {
		c.specs = map[specKey]specAnswer{}
	}
	c.specs[k] = a
	return a
}

// isTemplate reports a quoted string or a heredoc other than a lone
// "${…}" ("a", "${a}/b"): hclsyntax evaluates it to a string, known or
// not, or fails (then staticValue's type is unknown): it cannot mismatch
// an option that takes strings.
func isTemplate(e hcl.Expression) bool {
	_, ok := e.(*hclsyntax.TemplateExpr)
	return ok
}

// unknownEntry reports a recipe or check its module does not have.
func (c *checker) unknownEntry(a *Attr, mod, name string, promise bool) *hcl.Diagnostic {
	if c.o.Names == nil {
		return nil
	}
	k := specKey{mod: mod, promise: promise}
	n, seen := c.names[k]
	if !seen {
		n.names, n.ok = c.o.Names(mod, promise)
		if c.names == nil {
			c.names = map[specKey]namesAnswer{}
		}
		c.names[k] = n
	}
	return unknownEntry(a, n.names, n.ok, mod, name, promise)
}

func (c *checker) checkPart(b *Block) hcl.Diagnostics {
	recipe := literalString(b.Attrs["recipe"])
	mod, name, ok := strings.Cut(recipe, ":")
	if !ok || c.o.Recipe == nil {
		return nil
	}
	if d := c.unknownEntry(b.Attrs["recipe"], mod, name, false); d != nil {
		return hcl.Diagnostics{d}
	}
	sa := c.spec(mod, name, false)
	spec := sa.spec
	if !sa.known || spec == nil {
		return nil
	}
	var diags hcl.Diagnostics
	check := func(an string, a *Attr, types []string) {
		if len(types) == 0 || isTemplate(a.Expr) && contains(types, "string") {
			return // any value, or a string (jsonTypeMismatch)
		}
		if msg := jsonTypeMismatch(c.staticValue(a), types); msg != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid option type",
				Detail: fmt.Sprintf("Option %s of %s: %s", an, recipe, msg), Subject: a.Expr.Range().Ptr()})
		}
	}
	if spec.Open || b.Buildout || c.reads[b.Name()]["*"] {
		// Every option the recipe does not name is accepted: only the
		// types of those it names are checked, in the same order.
		for _, an := range sa.sorted {
			if a := b.Attrs[an]; a != nil && !a.Helper && !contains(partReserved, an) {
				check(an, a, spec.Known[an])
			}
		}
		return diags
	}
	reads := c.reads[b.Name()]
	for _, an := range b.AttrNames() {
		a := b.Attrs[an]
		if contains(partReserved, an) || a.Helper {
			continue
		}
		types, named := spec.Known[an]
		if !named {
			if reads[an] {
				continue
			}
			diags = append(diags, unknownOption(a, "recipe "+recipe, an, spec, nil,
				fmt.Sprintf(" A value for other parts to read belongs in the part's extra = { %s = … }.", an)))
			continue
		}
		check(an, a, types)
	}
	return diags
}

func (c *checker) checkPromise(b *Block) hcl.Diagnostics {
	check := literalString(b.Attrs["check"])
	mod, name, ok := strings.Cut(check, ":")
	if !ok || c.o.Check == nil {
		return nil
	}
	if d := c.unknownEntry(b.Attrs["check"], mod, name, true); d != nil {
		return hcl.Diagnostics{d}
	}
	sa := c.spec(mod, name, true)
	spec := sa.spec
	if !sa.known || spec == nil {
		return nil
	}
	var diags hcl.Diagnostics
	for _, an := range b.AttrNames() {
		if contains(promiseSettings, an) {
			continue
		}
		a := b.Attrs[an]
		types, named := spec.Known[an]
		if !named {
			if !spec.Open {
				diags = append(diags, unknownOption(a, "check "+check, an, spec, promiseSettings, ""))
			}
			continue
		}
		if len(types) == 0 {
			continue
		}
		if msg := jsonTypeMismatch(c.staticValue(a), types); msg != "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid option type",
				Detail: fmt.Sprintf("Option %s of %s: %s", an, check, msg), Subject: a.Expr.Range().Ptr()})
		}
	}
	return diags
}

// unknownEntry reports a recipe or check that names, its module's
// entries (ok false: the module is not known), does not hold.
func unknownEntry(a *Attr, names []string, ok bool, mod, name string, promise bool) *hcl.Diagnostic {
	if !ok || contains(names, name) {
		return nil
	}
	what := "recipe"
	if promise {
		what = "promise check"
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown " + what,
		Detail:  fmt.Sprintf("Module %q has no %s %q.%s It has: %s.", mod, what, name, suggest(name, names), strings.Join(names, ", ")),
		Subject: a.Expr.Range().Ptr()}
}

func unknownOption(a *Attr, what, name string, spec *OptionSpec, more []string, hint string) *hcl.Diagnostic {
	names := append([]string{}, more...)
	for k := range spec.Known {
		if !contains(names, k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	subject := a.Range
	if r := nameRange(a); r != nil {
		subject = *r
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown option",
		Detail:  fmt.Sprintf("The %s takes no option %q.%s It takes: %s.%s", what, name, suggest(name, names), strings.Join(names, ", "), hint),
		Subject: &subject}
}

// nameRange is the range of an attribute's name ("name = value" starts
// with it).
func nameRange(a *Attr) *hcl.Range {
	r := a.Range
	if r.Filename == "" || len(a.Name) == 0 || r.Start.Line != r.End.Line && r.Start.Byte+len(a.Name) > r.End.Byte {
		return nil
	}
	r.End = r.Start
	r.End.Byte += len(a.Name)
	r.End.Column += len(a.Name)
	return &r
}

// staticValue evaluates an attribute with every variable unknown: its
// type is known when the expression fixes it ("${x}" is a string, [a, b]
// a tuple), its value when it reads no variable. Evaluation errors are
// left to the real evaluation.
func (c *checker) staticValue(a *Attr) cty.Value {
	vars := map[string]cty.Value{}
	for _, t := range a.Variables() {
		vars[t.RootName()] = cty.DynamicVal
	}
	dir := filepath.Dir(a.Range.Filename)
	fns := c.funcs[dir]
	if fns == nil {
		fns = c.p.fileFuncs(dir, stdFuncs)
		if c.funcs == nil {
			c.funcs = map[string]map[string]function.Function{}
		}
		c.funcs[dir] = fns
	}
	ctx := &hcl.EvalContext{Variables: vars, Functions: fns}
	v, d := a.Expr.Value(ctx)
	if d.HasErrors() {
		return cty.DynamicVal
	}
	return v
}

// jsonTypeMismatch says why v cannot be an option of JSON types ("" when
// it can, or when its type is not known).
func jsonTypeMismatch(v cty.Value, types []string) string {
	if len(types) == 0 || v.IsNull() && v.IsKnown() {
		return ""
	}
	ty := v.Type()
	var is []string
	switch {
	case ty == cty.DynamicPseudoType:
		return ""
	case ty == cty.String:
		is = []string{"string"}
	case ty == cty.Number:
		is = []string{"number", "integer"}
	case ty == cty.Bool:
		is = []string{"boolean"}
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		is = []string{"array"}
	case ty.IsMapType() || ty.IsObjectType():
		is = []string{"object"}
	default:
		return ""
	}
	for _, t := range types {
		for _, x := range is {
			if t == x {
				return ""
			}
		}
	}
	return fmt.Sprintf("%s is required, not %s.", strings.Join(jsonNames(types), " or "), ty.FriendlyName())
}

func jsonNames(types []string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "array":
			out[i] = "a list"
		case "object":
			out[i] = "an object"
		case "integer":
			out[i] = "a whole number"
		case "boolean":
			out[i] = "true or false"
		default:
			out[i] = "a " + t
		}
	}
	return out
}

// kind is the type an attribute of a fixed block must have.
type kind struct {
	ty   cty.Type
	what string
	// valid checks a known value further (a duration, a size, one of a
	// few words); nil: any value of the type.
	valid func(v cty.Value) string
}

func (k kind) check(v cty.Value) string {
	if v.IsKnown() && v.IsNull() {
		return ""
	}
	ty := v.Type()
	if ty == cty.DynamicPseudoType {
		return ""
	}
	if k.ty == cty.DynamicPseudoType {
		if !ty.IsObjectType() && !ty.IsMapType() {
			return fmt.Sprintf("%s is required, not %s.", k.what, ty.FriendlyName())
		}
		return ""
	}
	c, err := convert.Convert(cty.UnknownVal(ty), k.ty)
	if err != nil || c == cty.NilVal {
		return fmt.Sprintf("%s is required, not %s.", k.what, ty.FriendlyName())
	}
	if k.valid != nil && v.IsWhollyKnown() {
		cv, err := convert.Convert(v, k.ty)
		if err == nil && !cv.IsNull() {
			return k.valid(cv)
		}
	}
	return ""
}

var (
	kString     = kind{ty: cty.String, what: "A string"}
	kBool       = kind{ty: cty.Bool, what: "true or false"}
	kStringList = kind{ty: cty.List(cty.String), what: `A list of strings, e.g. ["program", "arg"],`}
	kStringMap  = kind{ty: cty.Map(cty.String), what: `An object of strings, e.g. { NAME = "value" },`}
	kObject     = kind{ty: cty.DynamicPseudoType, what: "An object"}
	kDuration   = kind{ty: cty.String, what: `A duration such as "30s" or "2m"`, valid: func(v cty.Value) string {
		if d, err := time.ParseDuration(v.AsString()); err != nil || d <= 0 {
			return fmt.Sprintf("%q is not a positive duration such as \"30s\" or \"2m\".", v.AsString())
		}
		return ""
	}}
	kSize = kind{ty: cty.String, what: `A size such as "64MiB"`, valid: func(v cty.Value) string {
		if _, err := ParseSize(v.AsString()); err != nil {
			return err.Error() + "."
		}
		return ""
	}}
	kCount = kind{ty: cty.Number, what: "A whole number", valid: func(v cty.Value) string {
		if n, acc := v.AsBigFloat().Int64(); acc != 0 || n < 1 {
			return fmt.Sprintf("%s is not a whole number of 1 or more.", v.AsBigFloat().String())
		}
		return ""
	}}
	kNumber = kind{ty: cty.Number, what: "A number"}
)

func kOneOf(words ...string) kind {
	return kind{ty: cty.String, what: "A string", valid: func(v cty.Value) string {
		if !contains(words, v.AsString()) {
			return fmt.Sprintf("%q is not one of %s.%s", v.AsString(), strings.Join(quoted(words), ", "), suggest(v.AsString(), words))
		}
		return ""
	}}
}

func quoted(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// attrKinds are the types of the attributes of the blocks whose
// attributes are settings (docs/profiles.md §2, §3).
var attrKinds = map[string]map[string]kind{
	"software": {"version": kString, "description": kString, "title": kString},
	"module": {"source": kString, "sha256": kString, "memory": kSize, "timeout": kDuration,
		"allow_exec": kStringList, "allow_env": kStringList, "allow_net": kStringList, "description": kString},
	"instance": {"profile": kString, "parameters": kString, "connection": kString, "description": kString, "title": kString,
		"serialisation": kOneOf("xml", "json-in-xml"), "shared": kBool, "index": kNumber, "shared_parameters": kString},
	"service":  {"command": kStringList, "env": kStringMap, "watch": kBool, "stop_grace": kDuration, "dir": kString},
	"schedule": {"cron": kString, "command": kStringList, "env": kStringMap, "dir": kString},
	"promise": {"check": kString, "every": kDuration, "timeout": kDuration, "test": kBool, "anomaly": kBool,
		"failure_amount": kCount},
	"request": {"software": kString, "software_type": kString, "parameters": kObject, "shared": kBool,
		"state": kOneOf("started", "stopped", "destroyed"), "node": kString},
	"publish_shared": {"connections": kObject},
}
