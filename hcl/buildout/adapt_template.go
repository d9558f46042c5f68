package buildout

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Adapters of slapos.recipe.template and slapos.recipe.template:jinja2.

const profileBaseRef = "${:" + ProfileBaseOption + "}/"

func (c *converter) adaptTemplate(s *cvSection, opts []*cvOption, jinja, inherited bool) ([]*cvOption, []attrExpr) {
	var out []*cvOption
	var attrs []attrExpr
	plainFile := false
	byName := map[string]*cvOption{}
	for _, o := range opts {
		if o.op == OpSet {
			byName[o.name] = o
		}
	}
	for _, o := range opts {
		if o.op != OpSet {
			out = append(out, o)
			continue
		}
		switch {
		case o.name == "rendered" && byName["output"] == nil:
			// The old name of output. The option stays too: other
			// sections read it (switch-softwaretype's
			// default = dynamic-template:rendered).
			out = append(out, &cvOption{name: "output", op: OpSet, value: o.value, pos: o.pos}, o)
		case o.name == "inline" && !jinja:
			// slapos.recipe.template substitutes the text as buildout does:
			// ${} now (HCL does it), and $${x} becomes ${x}.
			attrs = append(attrs, attrExpr{"inline", c.exprWith(s.name, o.value, o.pos, true)})
		case (o.name == "url" || o.name == "template") && strings.HasPrefix(o.value, "inline:"):
			attrs = append(attrs, attrExpr{"inline", c.expr(s.name, strings.TrimLeft(strings.TrimPrefix(o.value, "inline:"), "\n"), o.pos)})
		case o.name == "url" || o.name == "template":
			// The template file: next to the profile, or a URL.
			rest, local := strings.CutPrefix(o.value, profileBaseRef)
			if local {
				// ${:filename}, as SlapOS's template-base macros name
				// the file (buildout.hash.cfg gives each part its
				// filename): the part's own plain options.
				rest = ownRefs(s.name, rest, byName)
			}
			local = local && !strings.Contains(rest, "${")
			if local {
				// The directory of the file the section's base location
				// is (block.dir): not the applied profile's, for a
				// template of an extended file in another directory.
				attrs = append(attrs, attrExpr{"path", c.expr(s.name, o.value, o.pos)})
			} else {
				attrs = append(attrs, attrExpr{"url", c.expr(s.name, o.value, o.pos)})
			}
			if !jinja {
				// slapos.recipe.template substitutes the file's
				// ${section:option} as buildout does: read it now, so its
				// references become the part's dependencies and values.
				plainFile = true
				if v := c.templateFileSections(s, o, rest, local); v != "" {
					attrs = append(attrs, attrExpr{"sections", v})
				}
			}
		case o.name == "context" && jinja:
			vars, sections, modules := c.templateVars(s, o, byName)
			if vars != "" {
				attrs = append(attrs, attrExpr{"vars", vars})
			}
			if sections != "" {
				attrs = append(attrs, attrExpr{"section-vars", sections})
			}
			if modules != "" {
				attrs = append(attrs, attrExpr{"modules", modules})
			}
		case o.name == "import-list" && jinja:
			attrs = append(attrs, attrExpr{"import-list", c.importList(s, o)})
		default:
			out = append(out, o)
		}
	}
	switch {
	case plainFile:
		attrs = append(attrs, attrExpr{"engine", `"buildout"`})
	case !jinja && (!inherited || len(attrs) > 0):
		// An inline template (or none yet): the text is not jinja2. A
		// section taking the recipe from elsewhere keeps that section's
		// engine unless it gives its own template.
		attrs = append(attrs, attrExpr{"engine", `"none"`})
	}
	return out, attrs
}

// ownRefs replaces, in v, the references to the section's own options
// (${:NAME} or ${SECTION:NAME}) whose value is plain text (no reference,
// no $$); the others are kept.
func ownRefs(section, v string, byName map[string]*cvOption) string {
	return refSplit.ReplaceAllStringFunc(v, func(r string) string {
		sec, opt, err := CheckRef(r)
		if err != nil || (sec != "" && sec != section) {
			return r
		}
		o := byName[opt]
		if o == nil || strings.Contains(o.value, "$") || strings.Contains(o.value, "\n") {
			return r
		}
		return strings.TrimSpace(o.value)
	})
}

// importList rewrites slapos.recipe.template:jinja2's import-list for
// cookbook:template, whose lines all name paths: the PATH of a "file" (and
// "folder") line is a buildout key, SECTION:OPTION, whose value is the
// path; "rawfile" and "rawfolder" give the path itself.
func (c *converter) importList(s *cvSection, o *cvOption) string {
	var lines []string
	for _, line := range strings.Split(o.value, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) == 3 && (f[0] == "file" || f[0] == "folder") && !strings.Contains(f[2], "${") {
			if strings.Count(f[2], ":") != 1 {
				c.warn(o.pos, WarnTemplateContext, "[%s] import-list line %q: a %s entry names a buildout key (SECTION:OPTION)", s.name, strings.TrimSpace(line), f[0])
			} else {
				f[2] = "${" + f[2] + "}"
			}
		}
		lines = append(lines, strings.Join(f, " "))
	}
	return c.expr(s.name, strings.Join(lines, "\n"), o.pos)
}

// templateFileSections reads the file of a plain slapos.recipe.template
// part (rel, relative to the directory of the profile defining the section,
// when local) and returns the HCL object of the ${section:option} it
// references, for cookbook:template's engine buildout. What cannot be read
// now is said in a warning.
func (c *converter) templateFileSections(s *cvSection, o *cvOption, rel string, local bool) string {
	if !local && c.macros[s.name] && strings.Contains(rel, "${:") {
		// A <= macro naming the file by an option its users set
		// (template-base's ${:filename}): each user's file is read.
		return ""
	}
	if !local {
		c.warn(o.pos, WarnTemplateFile, "[%s] the template %s is not a file beside the profile: its ${section:option} cannot be read at conversion time, so the parts it references are not dependencies; give them in sections = { SECTION = { OPTION = part.SECTION.OPTION } }", s.name, oneLine(o.value))
		return ""
	}
	file := filepath.Join(c.profileDirOf(s), filepath.FromSlash(rel))
	// The profile names the file (`${:_profile_base_location_}/../../dev/zero`
	// is local too): read as a profile is, bounded and without blocking.
	text, err := ReadBounded(file)
	if err == nil && len(text) > MaxFileSize {
		err = fmt.Errorf("larger than %d MiB", MaxFileSize>>20)
	}
	if err != nil {
		c.warn(o.pos, WarnTemplateFile, "[%s] cannot read the template to find its ${section:option} (%v): give them in sections = { SECTION = { OPTION = part.SECTION.OPTION } }", s.name, err)
		return ""
	}
	type ref struct{ sec, opt string }
	seen := map[ref]bool{}
	bySection := map[string][]string{}
	for i, line := range strings.Split(string(text), "\n") {
		for _, piece := range strings.Split(line, "$$") {
			for _, loc := range refSplit.FindAllStringIndex(piece, -1) {
				r := piece[loc[0]:loc[1]]
				sec, opt, err := CheckRef(r)
				pos := Pos{File: file, Line: i + 1, Col: strings.Index(line, r) + 1}
				if err != nil {
					c.warn(pos, WarnBadReference, "[%s] %v in the template; slapos.recipe.template fails on it", s.name, err)
					continue
				}
				if !seen[ref{sec, opt}] {
					seen[ref{sec, opt}] = true
					bySection[sec] = append(bySection[sec], opt)
				}
			}
		}
	}
	if len(bySection) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("{\n")
	for _, sec := range sortedKeys(bySection) {
		fmt.Fprintf(&b, "%s = {\n", quoteLiteral(sec))
		opts := bySection[sec]
		sort.Strings(opts)
		for _, opt := range opts {
			fmt.Fprintf(&b, "%s = %s\n", quoteLiteral(opt), c.expr(s.name, "${"+sec+":"+opt+"}", Pos{File: file}))
		}
		b.WriteString("}\n")
	}
	b.WriteString("}")
	return b.String()
}

// profileDirOf is the directory of the file defining a section (its
// ${:_profile_base_location_}).
func (c *converter) profileDirOf(s *cvSection) string {
	if c.flatten {
		if d, ok := c.baseDirs[s.name]; ok {
			return d
		}
		return c.rootDir
	}
	return filepath.Dir(c.file)
}

// templateVars turns slapos.recipe.template:jinja2's `context` lines
// (`key NAME SECTION:OPTION`, `raw NAME TEXT`, `section NAME SECTION`,
// `json NAME JSON`, `jsonkey NAME SECTION:OPTION`, `import NAME MODULE`)
// into HCL objects, as the cookbook's template recipe wants them: the
// variables, and the Python modules (`modules`).
func (c *converter) templateVars(s *cvSection, o *cvOption, byName map[string]*cvOption) (vars, sections, modules string) {
	var items, secs, mods []string
	var walk func(value string, depth int)
	walk = func(value string, depth int) {
		for _, line := range strings.Split(value, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			// `${:extra-context}`: more lines from an option of this section.
			if strings.HasPrefix(line, "${:") && strings.HasSuffix(line, "}") && depth < 8 {
				if inner := byName[line[3:len(line)-1]]; inner != nil {
					walk(inner.value, depth+1)
					continue
				}
			}
			f := strings.Fields(line)
			if len(f) < 3 {
				c.warn(o.pos, WarnTemplateContext, "[%s] context line %q has no HCL form: pass the value in vars yourself", s.name, line)
				continue
			}
			kind, name := f[0], f[1]
			// The text after KIND and NAME, inner spaces kept (raw values).
			rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, kind)), name))
			var expr string
			switch kind {
			case "key", "jsonkey":
				if !strings.Contains(rest, ":") || strings.ContainsAny(rest, " ${}") {
					c.warn(o.pos, WarnTemplateContext, "[%s] context line %q: want SECTION:OPTION", s.name, line)
					continue
				}
				expr = c.expr(s.name, "${"+rest+"}", o.pos)
				if kind == "jsonkey" {
					expr = "jsondecode(" + expr + ")"
				}
			case "raw":
				expr = c.expr(s.name, rest, o.pos)
			case "section":
				// The whole part: its keys are HCL names, which the
				// recipe reads back as the option names (section-vars).
				expr = "part." + MangleName(rest)
				if rest == "buildout" {
					expr = c.buildoutSection(s)
				}
				secs = append(secs, fmt.Sprintf("%s = %s", quoteLiteral(name), expr))
				continue
			case "json":
				expr = "jsondecode(" + c.expr(s.name, rest, o.pos) + ")"
			case "import":
				mods = append(mods, fmt.Sprintf("%s = %s", quoteLiteral(name), quoteLiteral(rest)))
				continue
			default:
				c.warn(o.pos, WarnTemplateContext, "[%s] context line %q: slapos.recipe.template has no %s entries (key, raw, section, json, jsonkey, import)", s.name, line, kind)
				continue
			}
			items = append(items, fmt.Sprintf("%s = %s", quoteLiteral(name), expr))
		}
	}
	walk(o.value, 0)
	object := func(items []string) string {
		if len(items) == 0 {
			return ""
		}
		return "{\n" + strings.Join(items, "\n") + "\n}"
	}
	vars = object(items)
	if vars == "" {
		vars = "{}"
	}
	return vars, object(secs), object(mods)
}

// buildoutSection is the [buildout] section as a template or Python code
// reads it (`section buildout buildout`, self.buildout['buildout']): the
// engine's directories, with the options files of the release set in
// [buildout] over them (part "buildout", when some file sets one).
func (c *converter) buildoutSection(s *cvSection) string {
	var dirs []string
	for _, k := range []string{"directory", "bin-directory", "parts-directory", "eggs-directory", "develop-eggs-directory"} {
		dirs = append(dirs, fmt.Sprintf("%s = %s", quoteLiteral(k), c.expr(s.name, "${buildout:"+k+"}", s.pos)))
	}
	obj := "{\n" + strings.Join(dirs, "\n") + "\n}"
	part := false
	for _, set := range []map[string]bool{c.buildout, c.closureBuildout()} {
		for k := range set {
			if k != "extends" && k != "parts" {
				part = true
			}
		}
	}
	if !part {
		return obj
	}
	return "merge(" + obj + ", part.buildout)"
}

func (c *converter) closureBuildout() map[string]bool {
	if c.opts.closure == nil {
		return nil
	}
	return c.opts.closure.buildout
}
