package buildout

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Option adapters: a buildout recipe and the cookbook recipe it maps to do
// not always name or shape their options alike (docs/recipes.md). When a
// section's recipe is mapped by the built-in table, its options are
// rewritten into the cookbook's form; what cannot be rewritten is kept and
// reported. A --recipe-map target is the user's recipe: its options are
// left as buildout wrote them.

// More warning kinds, for the adapters.
const (
	WarnTemplateContext = "template-context" // a jinja2 context line with no HCL form
	WarnTemplateFile    = "template-file"    // a plain template file: buildout substitution inside it
	WarnPythonCode      = "python-code"      // Python code using what slapnode has no equivalent for
	WarnHostPython      = "host-python"      // zc.recipe.egg's python = SECTION: the host's python3 is used
)

// attrExpr is an attribute written by an adapter: a ready HCL expression.
type attrExpr struct {
	name string
	expr string
}

// adapt rewrites the options of a section whose recipe is orig, mapped to
// target. It returns the options left to write as usual and the
// attributes it wrote itself. inherited says the section takes its recipe
// from a macro or an earlier file: then only the options written here are
// rewritten, and no default is added over what the recipe's own section
// set.
func (c *converter) adapt(s *cvSection, orig, target string, opts []*cvOption, inherited bool) ([]*cvOption, []attrExpr) {
	c.record(s, orig, opts)
	if c.opts.NoAdapt || DefaultRecipeMap[orig] != target || c.opts.RecipeMap[orig] != "" {
		return opts, nil
	}
	switch orig {
	case "slapos.recipe.template", "slapos.recipe.template:default":
		return c.adaptTemplate(s, opts, false, inherited)
	case "slapos.recipe.template:jinja2":
		return c.adaptTemplate(s, opts, true, inherited)
	case "collective.recipe.template", "collective.recipe.template:default":
		return c.adaptCollective(s, opts, inherited)
	case "slapos.recipe.build", "slapos.recipe.build:default":
		return c.adaptBuild(s, opts)
	case "slapos.recipe.cmmi", "slapos.recipe.cmmi:default", "slapos.recipe.build:cmmi":
		return c.environmentSection(s, opts)
	case "zc.recipe.egg", "zc.recipe.egg:default", "zc.recipe.egg:script", "zc.recipe.egg:scripts",
		"zc.recipe.egg:eggs", "zc.recipe.egg:custom", "zc.recipe.egg:develop":
		return c.adaptEgg(s, orig, opts)
	case "rubygemsrecipe":
		var attrs []attrExpr
		if plainOption(opts, "deployment") == nil {
			// The recipe's default: not allow_picked_versions().
			attrs = append(attrs, attrExpr{"deployment", "lower(trimspace(" + c.expr(s.name, "${buildout:allow-picked-versions}", s.pos) + ")) == \"false\""})
		}
		if plainOption(opts, "bin-directory") == nil {
			attrs = append(attrs, attrExpr{"bin-directory", c.expr(s.name, "${buildout:bin-directory}", s.pos)})
		}
		return opts, attrs
	case "slapos.cookbook:certificate_authority.request":
		if plainOption(opts, "name") == nil && !inherited {
			// The recipe's default: the section's name.
			return opts, []attrExpr{{"name", quoteLiteral(s.name)}}
		}
		return opts, nil
	case "zc.recipe.testrunner":
		return c.adaptTestrunner(s, opts)
	case "slapos.cookbook:publish.serialised":
		return opts, []attrExpr{{"serialised", "true"}}
	case "slapos.cookbook:cron":
		// The dcron service: a launcher of dcrond with the recipe's options.
		return opts, []attrExpr{
			{"command-line", `[trimspace(self.dcrond-binary), "-s", self.cron-entries, "-c", self.crontabs, "-t", self.cronstamps, "-f", "-l", "5", "-M", self.catcher, "-L", self.log-file]`},
			{"wrapper-path", "self.binary"},
		}
	case "slapos.cookbook:simplelogger":
		// A script appending its input to log, each line prefixed with the
		// time, then a separator line.
		return opts, []attrExpr{
			{"output", "self.wrapper"},
			{"mode", `"0755"`},
			{"content", `"#!/bin/sh\n# Written by slapnode's cookbook (slapos.cookbook:simplelogger).\nprefix=$(date +%Y-%m-%d.%H:%M.%s:)\n{ while IFS= read -r line || [ -n \"$line\" ]; do printf '%s %s\\n' \"$prefix\" \"$line\"; done; printf '%s ------------------------\\n' \"$prefix\"; } >> '${replace(self.log, "'", "'\\''")}'\n"`},
		}
	}
	return opts, nil
}

// plainOption returns the plain (=) option name of opts, or nil.
func plainOption(opts []*cvOption, name string) *cvOption {
	for _, o := range opts {
		if o.op == OpSet && o.name == name {
			return o
		}
	}
	return nil
}

// without returns opts without the plain options named.
func without(opts []*cvOption, names ...string) []*cvOption {
	var out []*cvOption
	for _, o := range opts {
		drop := false
		for _, n := range names {
			if o.op == OpSet && o.name == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, o)
		}
	}
	return out
}

// environmentSection rewrites `environment = SECTION` (slapos.recipe.cmmi,
// slapos.recipe.build and zc.recipe.egg:custom read the variables of that
// section) as a reference to the section's part: the recipe then receives
// its options as an object.
func (c *converter) environmentSection(s *cvSection, opts []*cvOption) ([]*cvOption, []attrExpr) {
	o := plainOption(opts, "environment")
	if o == nil {
		return opts, nil
	}
	v := strings.TrimSpace(o.value)
	if v == "" || strings.ContainsAny(v, "=\n ${") {
		return opts, nil
	}
	return without(opts, "environment"), []attrExpr{{"environment", "part." + MangleName(v)}}
}

// buildoutRef finds the sections Python code reads: buildout['NAME'],
// buildout["NAME"], and buildout[options['KEY']] (KEY's value).
var (
	buildoutRef    = regexp.MustCompile(`buildout\[\s*(?:'([^'\\]+)'|"([^"\\]+)")\s*\]`)
	buildoutOptRef = regexp.MustCompile(`buildout\[\s*(?:self\.)?options\[\s*(?:'([^'\\]+)'|"([^"\\]+)")\s*\]\s*\]`)
)

// adaptBuild passes the sections slapos.recipe.build's Python code reads
// (self.buildout[NAME]) as the option `buildout`, an object of parts: the
// shim offers them as self.buildout. Only the sections init and install
// name literally are passed: update code, which buildout runs to set up
// its own process for later parts (os.environ…), has no such effect in
// slapnode, and passing what it reads would make the part depend on
// sections buildout only reads when needed.
func (c *converter) adaptBuild(s *cvSection, opts []*cvOption) ([]*cvOption, []attrExpr) {
	out, attrs := c.environmentSection(s, opts)
	code := map[string]*cvOption{}
	for _, k := range []string{"init", "install", "update"} {
		if o := plainOption(opts, k); o != nil {
			code[k] = o
		}
	}
	if len(code) == 0 {
		return out, attrs // plone.recipe.command's form: commands
	}
	for _, k := range []string{"init", "install", "update"} {
		o := code[k]
		if o == nil {
			continue
		}
		for _, bad := range []string{"buildout.parse(", "easy_install"} {
			if strings.Contains(o.value, bad) {
				c.warn(o.pos, WarnPythonCode, "[%s] %s uses %s, which has no slapnode equivalent (buildout's own machinery); the code fails where it reaches it", s.name, k, strings.TrimSuffix(bad, "("))
			}
		}
	}
	names := map[string]bool{}
	for _, k := range []string{"init", "install"} {
		o := code[k]
		if o == nil {
			continue
		}
		for _, m := range buildoutRef.FindAllStringSubmatch(o.value, -1) {
			names[m[1]+m[2]] = true
		}
		for _, m := range buildoutOptRef.FindAllStringSubmatch(o.value, -1) {
			if v := plainOption(opts, m[1]+m[2]); v != nil && !strings.Contains(v.value, "${") && strings.TrimSpace(v.value) != "" {
				names[strings.TrimSpace(v.value)] = true
			}
		}
	}
	if len(names) == 0 {
		return out, attrs
	}
	var items []string
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, n := range keys {
		switch {
		case n == "buildout":
			items = append(items, fmt.Sprintf("\"buildout\" = %s", c.buildoutSection(s)))
		case n == "slap-connection" && !c.defined[n]:
			c.warn(s.pos, WarnRuntimeSection, "[%s] the Python code reads [slap-connection], which slapos node injects; slapnode does not pass it (the code fails where it reads it)", s.name)
		case !c.hasSection(n) && (c.flatten || c.closureKnown):
			// A section the code makes itself (self.buildout.parse('[NAME]…'),
			// component/ZEO) or one no file defines: buildout would fail
			// only where the code reads it, so does the shim.
			c.warn(s.pos, WarnPythonCode, "[%s] the Python code reads section [%s], which no file of the closure defines; not passed", s.name, n)
		default:
			items = append(items, fmt.Sprintf("%s = part.%s", quoteLiteral(n), MangleName(n)))
		}
	}
	if len(items) > 0 {
		attrs = append(attrs, attrExpr{"buildout", "{\n" + strings.Join(items, "\n") + "\n}"})
	}
	return out, attrs
}

// adaptEgg adapts zc.recipe.egg's entry points.
func (c *converter) adaptEgg(s *cvSection, orig string, opts []*cvOption) ([]*cvOption, []attrExpr) {
	out, attrs := opts, []attrExpr(nil)
	if orig == "zc.recipe.egg:custom" || orig == "zc.recipe.egg:develop" {
		out, attrs = c.environmentSection(s, opts)
	}
	if o := plainOption(out, "python"); o != nil {
		// zc.recipe.egg reads buildout[python]['executable']: the
		// cookbook runs that path when the host has it, the host's
		// python3 otherwise (and says so).
		sec := strings.TrimSpace(o.value)
		switch {
		case sec == "" || strings.ContainsAny(sec, " \n${}"):
			c.warn(o.pos, WarnHostPython, "[%s] python = %s is not a section name: the eggs are installed with the host's python3", s.name, oneLine(o.value))
		case !c.hasExecutable(sec):
			c.warn(o.pos, WarnHostPython, "[%s] python = %s: no file of the release gives [%s] an executable option; the eggs are installed with the host's python3", s.name, sec, sec)
		default:
			attrs = append(attrs, attrExpr{"python", c.expr(s.name, "${"+sec+":executable}", o.pos)})
		}
		out = without(out, "python")
	}
	if orig == "zc.recipe.egg:eggs" && plainOption(out, "scripts") == nil {
		attrs = append(attrs, attrExpr{"scripts", `""`})
	}
	if plainOption(out, "versions") == nil && c.hasSection("versions") {
		attrs = append(attrs, attrExpr{"versions", "part.versions"})
	}
	// buildout's own find-links and offline apply to every egg.
	for _, k := range []string{"find-links", "offline"} {
		if plainOption(out, k) == nil && c.buildout[k] {
			attrs = append(attrs, attrExpr{k, c.expr(s.name, "${buildout:"+k+"}", s.pos)})
		}
	}
	return out, attrs
}

// hasSection reports whether a section exists in what is converted: this
// file (or the flattened closure), or the closure this file extends.
func (c *converter) hasSection(name string) bool {
	if c.defined[name] {
		return true
	}
	if c.flatten {
		return false
	}
	if c.closureNames == nil {
		c.closureNames = map[string]bool{}
		if cfg := c.closure(); cfg != nil {
			c.closureKnown = true
			for n, sec := range cfg.Sections {
				// Sections buildout makes itself ([versions] with its
				// default pins) are not parts of the converted files.
				for _, v := range sec {
					if v.Source != "DEFAULT_VALUE" && v.Source != "COMPUTED_VALUE" && v.Source != "" {
						c.closureNames[n] = true
						break
					}
				}
			}
		}
	}
	return c.closureNames[name]
}

// adaptCollective maps collective.recipe.template to the cookbook's
// template recipe: input = inline:… and inline are the template text,
// which buildout substitutes as it reads the option (so HCL does), with
// $$ read as $ as the recipe renders it; input = FILE (or url) is a
// template file the recipe substitutes as buildout does: read now, as for
// slapos.recipe.template, for engine buildout.
func (c *converter) adaptCollective(s *cvSection, opts []*cvOption, inherited bool) ([]*cvOption, []attrExpr) {
	var out []*cvOption
	var attrs []attrExpr
	engine := `"none"`
	if inherited {
		engine = ""
	}
	for _, o := range opts {
		if o.op != OpSet {
			out = append(out, o)
			continue
		}
		switch o.name {
		case "inline":
			attrs = append(attrs, attrExpr{"inline", c.exprWith(s.name, strings.TrimLeft(o.value, " \t\n"), o.pos, true)})
		case "input", "url":
			if rest, ok := strings.CutPrefix(o.value, "inline:"); ok && o.name == "input" {
				attrs = append(attrs, attrExpr{"inline", c.exprWith(s.name, strings.TrimLeft(rest, " \t\n"), o.pos, true)})
				continue
			}
			rest, local := strings.CutPrefix(o.value, profileBaseRef)
			local = local && !strings.Contains(rest, "${")
			if local {
				// The directory of the file the section's base location
				// is (block.dir): not the applied profile's, for a
				// template of an extended file in another directory.
				attrs = append(attrs, attrExpr{"path", c.expr(s.name, o.value, o.pos)})
			} else {
				attrs = append(attrs, attrExpr{"url", c.expr(s.name, o.value, o.pos)})
			}
			engine = `"buildout"`
			if v := c.templateFileSections(s, o, rest, local); v != "" {
				attrs = append(attrs, attrExpr{"sections", v})
			}
		default:
			out = append(out, o)
		}
	}
	if engine != "" || len(attrs) > 0 {
		if engine == "" {
			engine = `"none"`
		}
		attrs = append(attrs, attrExpr{"engine", engine})
	}
	return out, attrs
}

// closure is the extends closure of the file converted (the file and what
// it extends), loaded once; nil when it cannot be loaded (a file missing,
// an extends URL).
func (c *converter) closure() *Config {
	if !c.closureLoaded {
		c.closureLoaded = true
		if cfg, err := Load(c.file, LoadOptions{Env: c.opts.Env}); err == nil {
			c.closureCfg = cfg
		}
	}
	return c.closureCfg
}

// inheritedRecipe is the recipe of a section that does not name one
// itself: the one an earlier file of the closure gives it, or its <=
// macros' (buildout copies the macro's recipe). "" when there is none or
// it cannot be known (the closure cannot be loaded, a computed recipe).
func (c *converter) inheritedRecipe(name string) string {
	if c.flatten {
		return ""
	}
	cfg := c.closure()
	if cfg == nil || cfg.Sections[name] == nil {
		return ""
	}
	raw := map[string]string{}
	for k, v := range cfg.Sections[name] {
		raw[k] = v.Text
	}
	r := &resolver{cfg: cfg, data: map[string]*secState{}}
	if ext, err := r.extendRaw(name, raw, nil); err == nil {
		raw = ext
	}
	rec := strings.TrimSpace(raw["recipe"])
	if strings.Contains(rec, "${") {
		return ""
	}
	return rec
}

// adaptTestrunner maps zc.recipe.testrunner to the cookbook's egg recipe:
// a script (script, default the part's name) calling zope.testrunner.run
// with the defaults, then --test-path of where the eggs are installed and
// -s for each egg listed (the recipe passes each egg's own location; the
// cookbook installs them all in the part's location, so -s keeps the run
// to the listed eggs' packages).
func (c *converter) adaptTestrunner(s *cvSection, opts []*cvOption) ([]*cvOption, []attrExpr) {
	text := func(k string) string {
		if o := plainOption(opts, k); o != nil {
			return o.value
		}
		return ""
	}
	eggs := text("eggs")
	var names []string
	for _, e := range strings.Fields(eggs) {
		if n := strings.FieldsFunc(e, func(r rune) bool { return strings.ContainsRune("[=<>!~;", r) }); len(n) > 0 {
			names = append(names, "'-s', '"+strings.ReplaceAll(n[0], "-", "_")+"'")
		}
	}
	script := strings.TrimSpace(text("script"))
	if script == "" {
		script = s.name
	}
	loc := "${buildout:parts-directory}/" + s.name
	if plainOption(opts, "location") != nil {
		loc = "${:location}"
	}
	defaults := strings.TrimSpace(text("defaults"))
	if defaults == "" {
		defaults = "[]"
	}
	args := fmt.Sprintf("%s + ['--test-path', '%s'%s]", defaults, loc, prefixComma(names))
	attrs := []attrExpr{
		{"egg", `"zope.testrunner"`},
		{"scripts", `""`},
		{"entry-points", quoteLiteral(script + "=zope.testrunner:run")},
		{"arguments", c.expr(s.name, args, s.pos)},
	}
	if wd := strings.TrimSpace(text("working-directory")); wd != "" {
		init := "import os\nos.chdir(" + pyQuote(wd) + ")\n" + text("initialization")
		attrs = append(attrs, attrExpr{"initialization", c.expr(s.name, init, s.pos)})
		opts = without(opts, "initialization")
	}
	return without(opts, "script", "defaults", "working-directory", "exit-with-status"), attrs
}

func prefixComma(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return ", " + strings.Join(items, ", ")
}

// pyQuote writes s as a Python string literal.
func pyQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`, "\n", `\n`).Replace(s) + "'"
}

// hasExecutable reports whether a section of the release has an
// `executable` option (a Python section, for zc.recipe.egg's python).
func (c *converter) hasExecutable(sec string) bool {
	cfg := c.closure()
	if cfg == nil || cfg.Sections[sec] == nil {
		return false
	}
	raw := map[string]string{}
	for k, v := range cfg.Sections[sec] {
		raw[k] = v.Text
	}
	r := &resolver{cfg: cfg, data: map[string]*secState{}}
	if ext, err := r.extendRaw(sec, raw, nil); err == nil {
		raw = ext
	}
	_, ok := raw["executable"]
	return ok
}
