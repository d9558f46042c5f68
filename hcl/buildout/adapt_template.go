package buildout

import (
	"fmt"
	"strings"
)

// Adapters of slapos.recipe.template and slapos.recipe.template:jinja2.

const profileBaseRef = "${:" + ProfileBaseOption + "}/"

func (c *converter) adaptTemplate(s *cvSection, opts []*cvOption, jinja bool) ([]*cvOption, []attrExpr) {
	var out []*cvOption
	var attrs []attrExpr
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
			// The old name of output.
			out = append(out, &cvOption{name: "output", op: OpSet, value: o.value, pos: o.pos})
		case o.name == "inline" && !jinja:
			// slapos.recipe.template substitutes the text as buildout does:
			// ${} now (HCL does it), and $${x} becomes ${x}.
			attrs = append(attrs, attrExpr{"inline", c.exprWith(s.name, o.value, o.pos, true)})
		case (o.name == "url" || o.name == "template") && strings.HasPrefix(o.value, "inline:"):
			attrs = append(attrs, attrExpr{"inline", c.expr(s.name, strings.TrimLeft(strings.TrimPrefix(o.value, "inline:"), "\n"), o.pos)})
		case o.name == "url" || o.name == "template":
			// The template file: next to the profile, or a URL.
			if rest, ok := strings.CutPrefix(o.value, profileBaseRef); ok && !strings.Contains(rest, "${") {
				attrs = append(attrs, attrExpr{"path", quoteLiteral(rest)})
			} else {
				attrs = append(attrs, attrExpr{"url", c.expr(s.name, o.value, o.pos)})
			}
			if !jinja {
				c.warn(o.pos, WarnTemplateFile, "[%s] slapos.recipe.template substitutes ${section:option} inside the file %s; cookbook:template with engine none does not: convert the file's references (or inline it)", s.name, oneLine(o.value))
			}
		case o.name == "context" && jinja:
			if v := c.templateVars(s, o, byName); v != "" {
				attrs = append(attrs, attrExpr{"vars", v})
			}
		default:
			out = append(out, o)
		}
	}
	if !jinja {
		attrs = append(attrs, attrExpr{"engine", `"none"`})
	}
	return out, attrs
}

// templateVars turns slapos.recipe.template:jinja2's `context` lines
// (`key NAME SECTION:OPTION`, `raw NAME TEXT`, `section NAME SECTION`,
// `json NAME JSON`, `jsonkey NAME SECTION:OPTION`) into an HCL object, as
// the cookbook's template recipe wants it.
func (c *converter) templateVars(s *cvSection, o *cvOption, byName map[string]*cvOption) string {
	var items []string
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
				expr = "part." + MangleName(rest)
			case "json":
				expr = "jsondecode(" + c.expr(s.name, rest, o.pos) + ")"
			default:
				c.warn(o.pos, WarnTemplateContext, "[%s] context line %q: %s values are Python objects slapnode cannot pass (use filters such as tojson, or compute the value in HCL)", s.name, line, kind)
				continue
			}
			items = append(items, fmt.Sprintf("%s = %s", quoteLiteral(name), expr))
		}
	}
	walk(o.value, 0)
	if len(items) == 0 {
		return "{}"
	}
	return "{\n" + strings.Join(items, "\n") + "\n}"
}
