package buildout

import (
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
	WarnPythonCode      = "python-code"      // an option holding Python code or a Python hook
)

// attrExpr is an attribute written by an adapter: a ready HCL expression.
type attrExpr struct {
	name string
	expr string
}

// adapt rewrites the options of a section whose recipe is orig, mapped to
// target. It returns the options left to write as usual and the
// attributes it wrote itself.
func (c *converter) adapt(s *cvSection, orig, target string, opts []*cvOption) ([]*cvOption, []attrExpr) {
	if c.opts.NoAdapt || DefaultRecipeMap[orig] != target || c.opts.RecipeMap[orig] != "" {
		return opts, nil
	}
	switch orig {
	case "slapos.recipe.template", "slapos.recipe.template:default":
		return c.adaptTemplate(s, opts, false)
	case "slapos.recipe.template:jinja2":
		return c.adaptTemplate(s, opts, true)
	case "slapos.recipe.build", "slapos.recipe.build:default":
		for _, o := range opts {
			switch o.name {
			case "init", "install", "update":
				c.warn(o.pos, WarnPythonCode, "[%s] %s is Python code run by slapos.recipe.build; cookbook:build runs commands (commands, script): rewrite it as a shell script", s.name, o.name)
			}
		}
	case "slapos.recipe.cmmi", "slapos.recipe.cmmi:default", "slapos.recipe.build:cmmi":
		for _, o := range opts {
			if strings.HasSuffix(o.name, "-hook") {
				c.warn(o.pos, WarnPythonCode, "[%s] %s names a Python function (%s); cookbook:cmmi runs shell scripts (pre-configure, post-install)", s.name, o.name, oneLine(o.value))
			}
		}
	}
	return opts, nil
}
