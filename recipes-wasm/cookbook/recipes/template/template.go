// Package template holds the cookbook's template recipe
// (slapos.recipe.template and slapos.recipe.template:jinja2).
package template

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gotemplate "text/template"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/jinja"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const schema = `{"type":"object","required":["output"],"properties":{
	"output":{"type":"string","description":"file to write"},
	"inline":{"type":"string","description":"the template text"},
	"template":{"type":"string","description":"the template text (e.g. file(\"x.in\") in HCL)"},
	"url":{"type":"string","description":"template file: a path (relative to the profile directory), file:// or http(s) URL"},
	"path":{"type":"string","description":"template file path (relative to the profile directory)"},
	"md5sum":{"type":"string","pattern":"^[0-9a-fA-F]{32}$"},
	"sha256":{"type":"string","pattern":"^[0-9a-fA-F]{64}$"},
	"engine":{"enum":["jinja2","go","none"]},
	"vars":{"type":"object"},
	"imports":{"type":"object","additionalProperties":{"type":"string"},"description":"templates for {% import %}, {% from %} and {% include %}: name -> text"},
	"import-list":{"type":["string","array"],"items":{"type":"string"},"description":"SlapOS form: lines 'file NAME PATH' or 'rawfile NAME PATH' (PATH relative to the profile directory)"},
	"context":{"type":"object"},
	"mode":{"type":["string","integer"]}
},"oneOf":[{"required":["inline"]},{"required":["template"]},{"required":["url"]},{"required":["path"]}]}`

// Register adds the template recipe to g.
func Register(g *recipe.Registry) {
	g.Register("template", recipe.Recipe{
		Description: "Render a template (Jinja2 subset or Go text/template) to a file (slapos.recipe.template[:jinja2]).",
		Schema:      schema,
		Outputs:     []string{"location", "output"},
		Install:     install,
	})
}

func install(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	output, err := opts.String("output")
	if err != nil {
		return recipe.Result{}, err
	}
	output = fsx.Resolve(ctx, output)
	text, name, err := source(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	vars, err := variables(opts)
	if err != nil {
		return recipe.Result{}, err
	}
	engine, err := opts.StringOr("engine", "jinja2")
	if err != nil {
		return recipe.Result{}, err
	}
	var rendered string
	switch engine {
	case "jinja2":
		load, lerr := loader(ctx, opts)
		if lerr != nil {
			return recipe.Result{}, lerr
		}
		rendered, err = jinja.RenderWith(name, text, vars, load)
	case "go":
		rendered, err = renderGo(name, text, vars)
	case "none":
		rendered = text
	default:
		return recipe.Result{}, fmt.Errorf("option \"engine\": %q is not jinja2, go or none", engine)
	}
	if err != nil {
		return recipe.Result{}, fmt.Errorf("rendering %s: %w", name, err)
	}
	mode, err := opts.Mode("mode", 0o644)
	if err != nil {
		return recipe.Result{}, err
	}
	if err := fsx.WriteFile(ctx, output, []byte(rendered), mode); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{
		Outputs:   map[string]any{"location": output, "output": output},
		Installed: []string{output},
		Messages:  []string{fmt.Sprintf("rendered %s (%d bytes)", output, len(rendered))},
	}, nil
}

// source returns the template text and a name for error messages.
func source(ctx recipe.Context, opts recipe.Options) (text, name string, err error) {
	set := []string{}
	for _, k := range []string{"inline", "template", "url", "path"} {
		if opts.Has(k) {
			set = append(set, k)
		}
	}
	if len(set) != 1 {
		return "", "", fmt.Errorf("set exactly one of inline, template, url or path (found: %s)", strings.Join(set, ", "))
	}
	output, _ := opts.String("output")
	switch k := set[0]; k {
	case "inline", "template":
		text, err = opts.String(k)
		return text, filepath.Base(output) + " (" + k + ")", err
	}
	loc, err := opts.String(set[0])
	if err != nil {
		return "", "", err
	}
	md5sum, _ := opts.StringOr("md5sum", "")
	sha, _ := opts.StringOr("sha256", "")
	var path string
	if strings.Contains(loc, "://") && !strings.HasPrefix(loc, "file://") {
		d, err := ctx.DownloadFile(loc, sha, md5sum)
		if err != nil {
			return "", "", err
		}
		path = d.Path
	} else {
		path = fsx.ResolveProfile(ctx, strings.TrimPrefix(loc, "file://"))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("reading the template: %w", err)
	}
	if err := verify(b, sha, md5sum); err != nil {
		return "", "", fmt.Errorf("template %s: %w", loc, err)
	}
	return string(b), filepath.Base(path), nil
}

func verify(b []byte, sha, md5sum string) error {
	if sha != "" {
		s := sha256.Sum256(b)
		if got := hex.EncodeToString(s[:]); !strings.EqualFold(got, sha) {
			return fmt.Errorf("sha256 mismatch: expected %s, got %s", sha, got)
		}
	}
	if md5sum != "" {
		s := md5.Sum(b)
		if got := hex.EncodeToString(s[:]); !strings.EqualFold(got, md5sum) {
			return fmt.Errorf("md5sum mismatch: expected %s, got %s", md5sum, got)
		}
	}
	return nil
}

// variables merges context and vars (vars wins).
func variables(opts recipe.Options) (map[string]any, error) {
	vars := map[string]any{}
	for _, k := range []string{"context", "vars"} {
		if s, ok := opts[k].(string); ok {
			return nil, fmt.Errorf("option %q must be an object of variables; buildout's \"key NAME SECTION:OPTION\" lines %q become vars = { NAME = part.SECTION.OPTION } in HCL", k, firstLine(s))
		}
		m, err := opts.Map(k)
		if err != nil {
			return nil, err
		}
		for name, v := range m {
			vars[name] = v
		}
	}
	return vars, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "…"
	}
	return s
}

// renderGo renders with text/template; a missing key is an error, as in
// the Jinja2 engine.
func renderGo(name, text string, vars map[string]any) (string, error) {
	funcs := gotemplate.FuncMap{
		"join": func(sep string, items []any) string {
			parts := make([]string, len(items))
			for i, it := range items {
				parts[i] = fmt.Sprint(it)
			}
			return strings.Join(parts, sep)
		},
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"upper":   strings.ToUpper,
		"lower":   strings.ToLower,
		"replace": func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"trim":    strings.TrimSpace,
	}
	t, err := gotemplate.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

// loader serves {% import %} and {% include %} from the imports option
// (texts) and SlapOS's import-list (files): "rawfile" entries are not
// rendered, as in slapos.recipe.template.
func loader(ctx recipe.Context, opts recipe.Options) (jinja.Loader, error) {
	texts := map[string]string{}
	m, err := opts.Map("imports")
	if err != nil {
		return nil, err
	}
	for name, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("option \"imports\": %q must be a template text, not %s", name, recipe.TypeName(v))
		}
		texts[name] = s
	}
	lines, err := opts.StringList("import-list")
	if err != nil {
		return nil, err
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || (f[0] != "file" && f[0] != "rawfile") {
			return nil, fmt.Errorf("option \"import-list\": %q is not 'file NAME PATH' or 'rawfile NAME PATH'", line)
		}
		b, err := os.ReadFile(fsx.ResolveProfile(ctx, f[2]))
		if err != nil {
			return nil, fmt.Errorf("option \"import-list\": %s: %w", f[1], err)
		}
		text := string(b)
		if f[0] == "rawfile" {
			if strings.Contains(text, "endraw") {
				return nil, fmt.Errorf("option \"import-list\": rawfile %s contains \"endraw\": pass it as a variable instead", f[1])
			}
			text = "{% raw %}" + text + "{% endraw %}"
		}
		texts[f[1]] = text
	}
	if len(texts) == 0 {
		return nil, nil
	}
	return func(name string) (string, error) {
		if t, ok := texts[name]; ok {
			return t, nil
		}
		return "", fmt.Errorf("not in imports or import-list (known: %s)", strings.Join(fsx.SortedKeys(texts), ", "))
	}, nil
}
