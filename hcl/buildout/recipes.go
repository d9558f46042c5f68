package buildout

import "github.com/hashicorp/hcl/v2/hclwrite"

// The recipe table: which cookbook recipe a buildout recipe entry point
// becomes, and what the converted release must grant for it to run.

// DefaultRecipeMap maps buildout recipe entry points to the built-in
// cookbook (see docs/convert.md).
var DefaultRecipeMap = map[string]string{
	"slapos.cookbook:mkdirectory":           "cookbook:mkdirectory",
	"slapos.recipe.build:mkdirectory":       "cookbook:mkdirectory",
	"slapos.cookbook:symbolic.link":         "cookbook:symlink",
	"cns.recipe.symlink":                    "cookbook:symlink",
	"slapos.recipe.template":                "cookbook:template",
	"slapos.recipe.template:default":        "cookbook:template",
	"slapos.recipe.template:jinja2":         "cookbook:template",
	"slapos.recipe.build":                   "cookbook:build",
	"slapos.recipe.build:default":           "cookbook:build",
	"plone.recipe.command":                  "cookbook:build",
	"slapos.recipe.cmmi":                    "cookbook:cmmi",
	"slapos.recipe.cmmi:default":            "cookbook:cmmi",
	"slapos.recipe.build:cmmi":              "cookbook:cmmi",
	"slapos.recipe.build:download":          "cookbook:download",
	"slapos.recipe.build:download-unpacked": "cookbook:download-unpacked",
	"slapos.cookbook:wrapper":               "cookbook:wrapper",
	"slapos.cookbook:publish":               "cookbook:publish",
	"slapos.cookbook:generate.password":     "cookbook:password",
}

// emitModules writes the module blocks the converted recipes need (their
// grants: commands to run, hosts to reach). Nothing yet: every mapped
// recipe is the built-in cookbook's, used without grants.
func (c *converter) emitModules(body *hclwrite.Body) {}
