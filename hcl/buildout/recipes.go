package buildout

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
)

// The recipe table: which cookbook recipe a buildout recipe entry point
// becomes, and what the converted release must grant for it to run.

// DefaultRecipeMap maps buildout recipe entry points to the built-in
// cookbook (see docs/convert.md §4 and docs/recipes.md).
var DefaultRecipeMap = map[string]string{
	"slapos.cookbook:mkdirectory":                   "cookbook:mkdirectory",
	"slapos.recipe.build:mkdirectory":               "cookbook:mkdirectory",
	"slapos.cookbook:symbolic.link":                 "cookbook:symlink",
	"cns.recipe.symlink":                            "cookbook:symlink",
	"slapos.recipe.template":                        "cookbook:template",
	"slapos.recipe.template:default":                "cookbook:template",
	"slapos.recipe.template:jinja2":                 "cookbook:template",
	"collective.recipe.template":                    "cookbook:template",
	"collective.recipe.template:default":            "cookbook:template",
	"slapos.recipe.build":                           "cookbook:build",
	"slapos.recipe.build:default":                   "cookbook:build",
	"plone.recipe.command":                          "cookbook:build",
	"plone.recipe.command:default":                  "cookbook:build",
	"slapos.recipe.cmmi":                            "cookbook:cmmi",
	"slapos.recipe.cmmi:default":                    "cookbook:cmmi",
	"slapos.recipe.build:cmmi":                      "cookbook:cmmi",
	"slapos.recipe.build:download":                  "cookbook:download",
	"slapos.recipe.build:download-unpacked":         "cookbook:download-unpacked",
	"slapos.recipe.build:gitclone":                  "cookbook:gitclone",
	"zc.recipe.egg":                                 "cookbook:egg",
	"zc.recipe.egg:default":                         "cookbook:egg",
	"zc.recipe.egg:script":                          "cookbook:egg",
	"zc.recipe.egg:scripts":                         "cookbook:egg",
	"zc.recipe.egg:eggs":                            "cookbook:egg",
	"zc.recipe.egg:custom":                          "cookbook:egg-custom",
	"zc.recipe.egg:develop":                         "cookbook:egg-develop",
	"slapos.cookbook:wrapper":                       "cookbook:wrapper",
	"slapos.cookbook:publish":                       "cookbook:publish",
	"slapos.cookbook:publish.serialised":            "cookbook:publish",
	"slapos.cookbook:generate.password":             "cookbook:password",
	"slapos.cookbook:cron.d":                        "cookbook:cron-entry",
	"slapos.cookbook:free_port":                     "cookbook:free-port",
	"slapos.cookbook:userinfo":                      "cookbook:userinfo",
	"slapos.cookbook:promise.plugin":                "cookbook:promise-plugin",
	"slapos.cookbook:check_port_listening":          "cookbook:port-check",
	"slapos.cookbook:check_url_available":           "cookbook:url-check",
	"slapos.cookbook:check_parameter":               "cookbook:param-check",
	"slapos.cookbook:publish_failsafe":              "cookbook:publish",
	"slapos.cookbook:random.integer":                "cookbook:random-integer",
	"slapos.cookbook:random.time":                   "cookbook:random-time",
	"slapos.cookbook:generate.mac":                  "cookbook:mac-address",
	"slapos.cookbook:urlparse":                      "cookbook:urlparse",
	"slapos.cookbook:cron":                          "cookbook:wrapper",
	"slapos.cookbook:simplelogger":                  "cookbook:write-file",
	"rubygemsrecipe":                                "cookbook:rubygems",
	"slapos.cookbook:certificate_authority":         "cookbook:certificate-authority",
	"slapos.cookbook:certificate_authority.request": "cookbook:certificate-authority-request",
	"zc.recipe.testrunner":                          "cookbook:egg",
}

// NodeRecipes are the SlapOS recipes no cookbook recipe runs, because
// they need what only the node knows (the partition's parameters and
// addresses, the master) or they only rearrange options: the converter
// writes each in the form the node acts on (instance.go, adapt.go), with
// what it becomes.
var NodeRecipes = map[string]string{
	"slapos.cookbook:slapconfiguration":                    "a data part the node computes",
	"slapos.cookbook:slapconfiguration.serialised":         "a data part the node computes",
	"slapos.cookbook:slapconfiguration.jsonschema":         "a data part the node computes",
	"slapos.cookbook:slapconfiguration.jsonschema.localdb": "a data part the node computes",
	"slapos.cookbook:switch-softwaretype":                  "a data part naming the nested profile the node runs",
	"slapos.cookbook:request":                              "a request block",
	"slapos.cookbook:request.serialised":                   "a request block",
	"slapos.cookbook:requestoptional":                      "a request block",
	"slapos.cookbook:requestoptional.serialised":           "a request block",
	"slapos.cookbook:publish-early":                        "a data part of the values to publish (publish -extends it)",
}

// Mapped reports whether the converter maps a recipe entry point: to a
// cookbook recipe (DefaultRecipeMap) or to a form the node acts on
// (NodeRecipes, and publish's variants). `pkg` and `pkg:default` are the
// same entry point.
func Mapped(r string) bool {
	for _, k := range []string{r, r + ":default", strings.TrimSuffix(r, ":default")} {
		if DefaultRecipeMap[k] != "" || NodeRecipes[k] != "" {
			return true
		}
	}
	return false
}

// NativePromisePlugins are the slapos.toolbox promise plugins the node
// runs natively (partition/promise/plugin.go); others need python3.
var NativePromisePlugins = []string{"check_socket_listening", "check_url_available", "check_file_state", "check_command_execute"}

// WarnModuleGrant: a grant the converter could not work out (a download
// host computed from values it cannot resolve); the module block must be
// completed by hand.
const WarnModuleGrant = "module-grant"

// grantSection is what emitModules needs of one section: its recipe and
// its option values (resolved when the closure could be resolved).
type grantSection struct {
	name   string
	recipe string
	opts   map[string]string
	pos    Pos
}

// grants accumulates the module grants of a conversion.
type grants struct {
	exec map[string]bool
	net  map[string]bool
	// why keeps, per grant, the first recipe that needs it (for the
	// comment above the module block).
	why map[string]string
}

func (g *grants) add(kind map[string]bool, v, why string) {
	if !kind[v] {
		kind[v] = true
		if _, ok := g.why[v]; !ok {
			g.why[v] = why
		}
	}
}

// record keeps a converted section for emitModules (called by adapt for
// every section with a recipe).
func (c *converter) record(s *cvSection, orig string, opts []*cvOption) {
	m := map[string]string{}
	for _, o := range opts {
		if o.op == OpSet {
			m[o.name] = o.value
		}
	}
	c.recorded = append(c.recorded, grantSection{name: s.name, recipe: orig, opts: m, pos: s.pos})
}

// closureSections returns the sections of the file's whole extends
// closure with their resolved options (raw, macro-expanded text for
// sections that do not resolve), or nil when the closure cannot be loaded
// from disk (ConvertFile of a file that is not there, an extends URL).
func (c *converter) closureSections() []grantSection {
	cfg := c.closure()
	if cfg == nil {
		return nil
	}
	resolved := cfg.Resolve()
	r := &resolver{cfg: cfg, data: map[string]*secState{}}
	var out []grantSection
	for _, name := range sortedKeys(cfg.Sections) {
		var opts map[string]string
		if rs := resolved[name]; rs != nil && rs.Err == nil {
			opts = rs.Options
		} else {
			raw := map[string]string{}
			for k, v := range cfg.Sections[name] {
				raw[k] = v.Text
			}
			if ext, err := r.extendRaw(name, raw, nil); err == nil {
				raw = ext
			}
			opts = raw
		}
		rec := strings.TrimSpace(opts["recipe"])
		if rec == "" || strings.Contains(rec, "${") {
			continue
		}
		src := ""
		if v := cfg.Sections[name]["recipe"]; v != nil {
			src = v.Source
		}
		out = append(out, grantSection{name: name, recipe: rec, opts: opts, pos: Pos{File: src}})
	}
	return out
}

// emitModules writes the module block the converted recipes need: the
// built-in cookbook with the commands its recipes run (allow_exec) and
// the hosts they download from (allow_net). The grants cover the whole
// extends closure when it can be read, because a module block defined
// again in an extending file replaces the earlier one attribute by
// attribute: the last file's block must hold every grant.
func (c *converter) emitModules(body *hclwrite.Body) {
	secs := c.closureSections()
	if secs == nil {
		secs = c.recorded
	}
	g := &grants{exec: map[string]bool{}, net: map[string]bool{}, why: map[string]string{}}
	for _, s := range secs {
		target, ok := c.recipes[s.recipe]
		if !ok || !strings.HasPrefix(target, "cookbook:") || c.opts.RecipeMap[s.recipe] != "" {
			continue
		}
		c.grantsOf(g, s, strings.TrimPrefix(target, "cookbook:"))
	}
	if len(g.exec) == 0 && len(g.net) == 0 {
		return
	}
	body.AppendNewline()
	var notes []string
	for _, e := range sortedKeys(g.exec) {
		note := fmt.Sprintf("%s: %s", e, g.why[e])
		if e == "python3" {
			note += " (Python code runs outside the WebAssembly sandbox, with what this user may do)"
		}
		notes = append(notes, note)
	}
	for _, n := range sortedKeys(g.net) {
		notes = append(notes, fmt.Sprintf("%s: %s", n, g.why[n]))
	}
	body.AppendUnstructuredTokens(comment("What the converted recipes need (docs/recipes.md):\n" + strings.Join(notes, "\n")))
	blk := body.AppendNewBlock("module", []string{"cookbook"})
	b := blk.Body()
	b.SetAttributeRaw("source", raw(`"builtin:cookbook"`))
	if len(g.exec) > 0 {
		b.SetAttributeRaw("allow_exec", raw(quoteList(sortedKeys(g.exec))))
	}
	if len(g.net) > 0 {
		b.SetAttributeRaw("allow_net", raw(quoteList(sortedKeys(g.net))))
	}
	if len(g.exec) > 0 {
		// buildout gives a recipe all the time it takes; slapnode's limit
		// of a call (10 minutes by default) would stop building a
		// compiler or a Python.
		b.SetAttributeRaw("timeout", raw(`"24h"`))
	}
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quoteLiteral(s)
		if strings.Contains(s, "${partition.") {
			// The converter's own patterns, interpolated when the
			// instance profile is evaluated.
			q[i] = `"` + s + `"`
		}
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// grantsOf adds what one section's recipe needs.
func (c *converter) grantsOf(g *grants, s grantSection, recipe string) {
	o := s.opts
	why := fmt.Sprintf("%s ([%s])", recipe, s.name)
	has := func(keys ...string) bool {
		for _, k := range keys {
			if strings.TrimSpace(o[k]) != "" {
				return true
			}
		}
		return false
	}
	netURL := func(option string, value string) {
		c.grantURL(g, s, option, value, why)
	}
	archive := func(value string) {
		if hostTarArchive(value) {
			g.add(g.exec, "tar", why+": a .tar.xz/.zst/.lz archive")
		}
	}
	switch recipe {
	case "cmmi":
		g.add(g.exec, "sh", why)
		if has("pre-configure-hook", "pre-make-hook", "post-make-hook") {
			g.add(g.exec, "python3", why+": hooks")
		}
		netURL("url", o["url"])
		archive(o["url"])
		for _, p := range strings.Fields(o["patches"]) {
			netURL("patches", strings.SplitN(p, "#", 2)[0])
		}
	case "build":
		if has("init", "install", "update") {
			g.add(g.exec, "python3", why)
		} else {
			g.add(g.exec, "sh", why)
		}
	case "symlink":
		// Links from a partition to the software (link-binary) leave the
		// tree the sandbox lets the recipe link in: the host's ln makes
		// them.
		g.add(g.exec, "ln", why)
	case "download":
		netURL("url", o["url"])
	case "download-unpacked":
		netURL("url", o["url"])
		archive(o["url"])
	case "gitclone":
		exe := strings.TrimSpace(o["git-executable"])
		if exe == "" {
			exe = strings.TrimSpace(o["git-command"])
		}
		switch {
		case exe == "":
			g.add(g.exec, "git", why)
		case strings.Contains(exe, "/") || strings.Contains(exe, "${"):
			// A git the release builds: run through sh.
			g.add(g.exec, "sh", why+": git-executable "+exe)
		default:
			g.add(g.exec, exe, why)
		}
	case "rubygems":
		g.add(g.exec, "sh", why)
		netURL("url", o["url"])
		if strings.TrimSpace(o["url"]) == "" && strings.TrimSpace(o["version"]) != "" {
			netURL("version", "https://rubygems.org/")
		}
	case "egg", "egg-custom", "egg-develop":
		g.add(g.exec, "python3", why)
		if py := strings.TrimSpace(o["python"]); py != "" && c.hasExecutable(py) {
			g.add(g.exec, "sh", why+": python = "+py+" runs that section's executable")
		}
		if has("patches") {
			g.add(g.exec, "sh", why+": patches")
			for _, p := range strings.Fields(o["patches"]) {
				netURL("patches", strings.SplitN(p, "#", 2)[0])
			}
		}
	case "template":
		for _, k := range []string{"url", "template", "input"} {
			if v := strings.TrimSpace(o[k]); strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
				netURL(k, v)
			}
		}
	case "certificate-authority-request":
		if has("key-content") && has("cert-content") {
			exe := strings.TrimSpace(o["openssl-binary"])
			switch {
			case exe == "":
				g.add(g.exec, "openssl", why+": checks key-content and cert-content")
			case strings.Contains(exe, "/") || strings.Contains(exe, "${"):
				g.add(g.exec, "sh", why+": checks key-content and cert-content with "+exe)
			default:
				g.add(g.exec, exe, why+": checks key-content and cert-content")
			}
		}
	case "promise-plugin":
		// As SlapOS runs them: with Python, unless the node checks the
		// plugin natively.
		text := func(k string) string { return strings.TrimSpace(o[k]) }
		mod, ok := strings.CutPrefix(text("module"), "slapos.promise.plugin.")
		if text("file") != "" || (text("class") != "" && text("class") != "RunPromise") || !ok || !slices.Contains(NativePromisePlugins, mod) {
			if text("module") != "" && strings.Contains(text("module"), "${") {
				break // a macro (module = …${:promise}): its users are looked at themselves
			}
			g.add(g.exec, "python3", why+": a promise plugin slapnode has no native check for")
		}
	case "userinfo":
		g.add(g.exec, "id", why)
		g.add(g.exec, "getent", why)
	case "free-port":
		g.add(g.net, "tcp://${partition.ipv4}:*", why)
		g.add(g.net, "tcp://[${partition.ipv6}]:*", why)
	}
}

// hostTarArchive reports whether an archive URL needs the host's tar (the
// formats the cookbook does not decode itself).
func hostTarArchive(u string) bool {
	u = strings.TrimSpace(u)
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	for _, suffix := range []string{".xz", ".txz", ".zst", ".tzst", ".lz", ".lzma", ".tlz"} {
		if strings.HasSuffix(u, suffix) {
			return true
		}
	}
	return false
}

// grantURL adds the network grant of a download URL: scheme://host[:port].
func (c *converter) grantURL(g *grants, s grantSection, option, value, why string) {
	v := strings.TrimSpace(value)
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return // a profile file or file:// URL needs no grant
	}
	scheme, rest, _ := strings.Cut(v, "://")
	hostport := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		hostport = rest[:i]
	}
	if strings.Contains(hostport, "${") || strings.Contains(hostport, "{{") || hostport == "" {
		if !c.ownSection(s) {
			return // reported when the file that defines it is converted
		}
		c.warnOnce(s.pos, WarnModuleGrant, "[%s] %s %s: the download host is computed; add it to allow_net of the cookbook's module block by hand", s.name, option, oneLine(v))
		return
	}
	u, err := url.Parse(scheme + "://" + hostport)
	if err != nil || u.Hostname() == "" {
		if !c.ownSection(s) {
			return
		}
		c.warnOnce(s.pos, WarnModuleGrant, "[%s] %s %s: not a URL slapnode can grant; add its host to allow_net by hand", s.name, option, oneLine(v))
		return
	}
	pattern := scheme + "://" + u.Host
	if u.Port() == "" {
		pattern = scheme + "://" + u.Hostname()
		if strings.Contains(u.Hostname(), ":") {
			pattern = scheme + "://[" + u.Hostname() + "]"
		}
	}
	g.add(g.net, strings.ToLower(pattern), why)
}

// ownSection reports whether s is defined by the file being converted
// (or is part of the flattened closure).
func (c *converter) ownSection(s grantSection) bool {
	if c.flatten || s.pos.File == "" {
		return true
	}
	a, errA := filepath.Abs(s.pos.File)
	b, errB := filepath.Abs(c.file)
	return errA == nil && errB == nil && a == b
}

// warnOnce warns, but only once per message (sections of a closure are
// met by every file that extends them).
func (c *converter) warnOnce(pos Pos, kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, w := range c.res.Warnings {
		if w.Kind == kind && w.Msg == msg {
			return
		}
	}
	c.res.Warnings = append(c.res.Warnings, Warning{Pos: pos, Kind: kind, Msg: msg})
}
