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
	"strconv"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/gotemplate"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/jinja"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const schema = `{"additionalProperties":false,"type":"object","required":["output"],"properties":{
	"output":{"type":"string","description":"file to write"},
	"inline":{"type":"string","description":"the template text"},
	"template":{"type":"string","description":"the template text (e.g. file(\"x.in\") in HCL)"},
	"url":{"type":"string","description":"template file: a path (relative to the profile directory), file:// or http(s) URL"},
	"path":{"type":"string","description":"template file path (relative to the profile directory)"},
	"md5sum":{"type":"string","pattern":"^[0-9a-fA-F]{32}$"},
	"sha256":{"type":"string","pattern":"^[0-9a-fA-F]{64}$"},
	"engine":{"enum":["jinja2","go","buildout","none"]},
	"sections":{"type":"object","additionalProperties":{"type":"object"},"description":"engine buildout: the values of the template's ${section:option} (section -> option -> value; \"\" is the part's own section)"},
	"vars":{"type":"object"},
	"section-vars":{"type":"object","additionalProperties":{"type":"object"},"description":"variables holding a whole part (slapos.recipe.template:jinja2's 'section NAME SECTION'): their keys, HCL attribute names, are read back as the buildout option names (configuration__2eport is configuration.port, docs/profiles.md §1.7)"},
	"imports":{"type":"object","additionalProperties":{"type":"string"},"description":"templates for {% import %}, {% from %} and {% include %}: name -> text"},
	"import-list":{"type":["string","array"],"items":{"type":"string"},"description":"SlapOS form: lines 'file NAME PATH' or 'rawfile NAME PATH' (a template), 'folder NAME DIR' or 'rawfolder NAME DIR' (templates NAME/…), paths relative to the profile directory"},
	"import-delimiter":{"type":"string","minLength":1,"description":"separator of folder imports: {% import 'NAME/sub/file' %} (default /)"},
	"modules":{"type":"object","additionalProperties":{"type":"string"},"description":"Python modules in the context: variable -> module (json, re, os, hashlib, urllib.parse, six, shlex)"},
	"extensions":{"type":["string","array"],"items":{"type":"string"},"description":"Jinja2 extensions: do, loopcontrols, with_ and autoescape are always on"},
	"once":{"type":"string","description":"a file: when it exists, nothing is rendered; it is created after rendering"},
	"encoding":{"type":"string","description":"the template's encoding: utf-8 (or ascii)"},
	"context":{"type":"object"},
	"umask":{"type":["string","integer"],"description":"octal umask of the output when mode is not given"},
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
	once, err := opts.StringOr("once", "")
	if err != nil {
		return recipe.Result{}, err
	}
	if once != "" {
		once = fsx.Resolve(ctx, once)
		if _, err := os.Stat(once); err == nil {
			return recipe.Result{
				Outputs:  map[string]any{"location": output, "output": output},
				Messages: []string{fmt.Sprintf("%s exists: not rendered again (once)", once)},
			}, nil
		}
	}
	if err := checkEncoding(opts); err != nil {
		return recipe.Result{}, err
	}
	if err := checkExtensions(opts); err != nil {
		return recipe.Result{}, err
	}
	text, name, err := source(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	vars, err := variables(opts)
	if err != nil {
		return recipe.Result{}, err
	}
	mods, err := opts.Map("modules")
	if err != nil {
		return recipe.Result{}, err
	}
	for name, m := range mods {
		mod, ok := m.(string)
		if !ok {
			return recipe.Result{}, fmt.Errorf("option \"modules\": %q must name a Python module, not %s", name, recipe.TypeName(m))
		}
		v, ok := jinja.Module(mod)
		if !ok {
			return recipe.Result{}, fmt.Errorf("option \"modules\": %s = %q: slapnode's templates have no Python module %q (available: %s); compute the value outside the template", name, mod, mod, strings.Join(jinja.Modules(), ", "))
		}
		if _, dup := vars[name]; !dup {
			vars[name] = v
		}
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
	case "buildout":
		rendered, err = renderBuildout(name, text, opts)
	case "none":
		rendered = text
	default:
		return recipe.Result{}, fmt.Errorf("option \"engine\": %q is not jinja2, go, buildout or none", engine)
	}
	if err != nil {
		return recipe.Result{}, fmt.Errorf("rendering %s: %w", name, err)
	}
	mode, err := opts.Mode("mode", 0o644)
	if err != nil {
		return recipe.Result{}, err
	}
	if !opts.Has("mode") && opts.Has("umask") {
		umask, err := opts.Mode("umask", 0o022)
		if err != nil {
			return recipe.Result{}, err
		}
		mode = 0o666 &^ umask
	}
	if err := fsx.WriteFile(ctx, output, []byte(rendered), mode); err != nil {
		return recipe.Result{}, err
	}
	installed := []string{output}
	if once != "" {
		if err := fsx.WriteFile(ctx, once, nil, 0o644); err != nil {
			return recipe.Result{}, fmt.Errorf("option \"once\": %w", err)
		}
	}
	return recipe.Result{
		Outputs:   map[string]any{"location": output, "output": output},
		Installed: installed,
		Messages:  []string{"rendered " + output + " (" + strconv.Itoa(len(rendered)) + " bytes)"},
	}, nil
}

// source returns the template text and a name for error messages.
func source(ctx recipe.Context, opts recipe.Options) (text, name string, err error) {
	var buf [4]string
	set := buf[:0]
	for _, k := range [...]string{"inline", "template", "url", "path"} {
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
	sections, err := opts.Map("section-vars")
	if err != nil {
		return nil, err
	}
	for name, v := range sections {
		sec, _ := v.(map[string]any)
		decoded := make(map[string]any, len(sec))
		for k, x := range sec {
			decoded[fsx.Unmangle(k)] = x
		}
		if _, set := vars[name]; !set {
			vars[name] = decoded
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

// renderBuildout substitutes the template as plain slapos.recipe.template
// does, with buildout's rules: ${section:option} is the option's value
// (from the sections option, filled by the converter), $$ is a literal $.
func renderBuildout(name, text string, opts recipe.Options) (string, error) {
	sections, err := opts.Map("sections")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	line, lineStart := 1, 0
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line, lineStart = line+1, i+1
			b.WriteByte(c)
			i++
		case strings.HasPrefix(text[i:], "$$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(text[i:], "${"):
			end := strings.IndexByte(text[i:], '}')
			if end < 0 {
				b.WriteString(text[i:])
				i = len(text)
				continue
			}
			ref := text[i : i+end+1]
			sec, opt, ok := strings.Cut(ref[2:len(ref)-1], ":")
			if !ok || strings.Contains(opt, ":") || opt == "" {
				return "", fmt.Errorf("%s:%d:%d: %s is not a buildout reference (${section:option}); write $$ for a literal $", name, line, i-lineStart+1, ref)
			}
			m, _ := sections[sec].(map[string]any)
			v, found := m[opt]
			if !found {
				what := "section [" + sec + "]"
				if sec == "" {
					what = "the part's own options"
				}
				return "", fmt.Errorf("%s:%d:%d: %s: %s has no option %q in sections (the converter fills sections from the file's references)", name, line, i-lineStart+1, ref, what, opt)
			}
			s, isStr := v.(string)
			if !isStr {
				s = fmt.Sprint(v)
			}
			b.WriteString(s)
			i += end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
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

// checkEncoding accepts the encodings whose text Go reads as is.
func checkEncoding(opts recipe.Options) error {
	enc, err := opts.StringOr("encoding", "utf-8")
	if err != nil {
		return err
	}
	switch strings.ToLower(strings.ReplaceAll(enc, "_", "-")) {
	case "utf-8", "utf8", "ascii", "us-ascii":
		return nil
	}
	return fmt.Errorf("option \"encoding\": %q is not supported: convert the template to UTF-8", enc)
}

// knownExtensions are the Jinja2 extensions whose tags the engine always
// understands.
var knownExtensions = map[string]bool{"jinja2.ext.do": true, "jinja2.ext.loopcontrols": true,
	"jinja2.ext.with_": true, "jinja2.ext.autoescape": true}

func checkExtensions(opts recipe.Options) error {
	exts, err := opts.StringList("extensions")
	if err != nil {
		return err
	}
	for _, line := range exts {
		for _, e := range strings.Fields(line) {
			if !knownExtensions[e] {
				return fmt.Errorf("option \"extensions\": %s is not supported (do, loopcontrols, with_ and autoescape are always on)", e)
			}
		}
	}
	return nil
}

// loader serves {% import %}, {% include %} and {% extends %} from the
// imports option (texts) and SlapOS's import-list: "file NAME PATH" and
// "rawfile NAME PATH" name a template (slapos.recipe.template reads the
// first one's PATH from a buildout option, which the converter resolves
// into a path), "folder NAME DIR" and "rawfolder NAME DIR" a directory whose
// templates are imported as NAME/sub/file (the delimiter is
// import-delimiter).
func loader(ctx recipe.Context, opts recipe.Options) (jinja.Loader, error) {
	m, err := opts.Map("imports")
	if err != nil {
		return nil, err
	}
	// The maps are made only when an option fills them: most templates
	// import nothing.
	var texts map[string]string
	if len(m) > 0 {
		texts = make(map[string]string, len(m))
	}
	for name, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("option \"imports\": %q must be a template text, not %s", name, recipe.TypeName(v))
		}
		texts[name] = s
	}
	delim, err := opts.StringOr("import-delimiter", "/")
	if err != nil {
		return nil, err
	}
	lines, err := opts.StringList("import-list")
	if err != nil {
		return nil, err
	}
	var files, folders map[string]string
	if len(lines) > 0 {
		files, folders = map[string]string{}, map[string]string{}
	}
	for _, line := range lines {
		for _, l := range strings.Split(line, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if len(f) != 3 {
				return nil, fmt.Errorf("option \"import-list\": %q is not 'KIND NAME PATH' (KIND: file, rawfile, folder, rawfolder)", l)
			}
			kind, name, p := f[0], f[1], fsx.ResolveProfile(ctx, f[2])
			if _, dup := files[name]; dup {
				return nil, fmt.Errorf("option \"import-list\": %s is imported twice", name)
			}
			if _, dup := folders[name]; dup {
				return nil, fmt.Errorf("option \"import-list\": %s is imported twice", name)
			}
			switch kind {
			case "file", "rawfile":
				if _, err := os.Stat(p); err != nil && kind == "file" && strings.Contains(f[2], ":") && !strings.Contains(f[2], "/") {
					return nil, fmt.Errorf("option \"import-list\": %q: %s is a buildout key (SECTION:OPTION); the converter turns it into a path, in HCL give the path", l, f[2])
				}
				files[name] = p
			case "folder", "rawfolder":
				folders[name] = p
			default:
				return nil, fmt.Errorf("option \"import-list\": %q: unknown kind %s (file, rawfile, folder, rawfolder)", l, kind)
			}
		}
	}
	if len(texts) == 0 && len(files) == 0 && len(folders) == 0 {
		return nil, nil
	}
	return func(name string) (string, error) {
		if t, ok := texts[name]; ok {
			return t, nil
		}
		path, ok := files[name]
		if !ok {
			prefix, rest, cut := strings.Cut(name, delim)
			dir, isDir := folders[prefix]
			if !cut || !isDir {
				known := append(fsx.SortedKeys(texts), fsx.SortedKeys(files)...)
				for _, d := range fsx.SortedKeys(folders) {
					known = append(known, d+delim+"…")
				}
				return "", fmt.Errorf("not in imports or import-list (known: %s)", strings.Join(known, ", "))
			}
			parts := strings.Split(rest, delim)
			for _, p := range parts {
				if p == ".." || p == "" {
					return "", fmt.Errorf("%q leaves the folder %s", name, prefix)
				}
			}
			path = filepath.Join(append([]string{dir}, parts...)...)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}, nil
}
