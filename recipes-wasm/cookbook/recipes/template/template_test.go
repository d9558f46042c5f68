package template

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

const tpl = `[section]
{%- for k, v in conf|dictsort %}
{{ k }} = {{ v }}
{%- endfor %}
port = {{ port + 1 }}
`

func TestInline(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("cfg", "template", map[string]any{
		"output": "etc/app.cfg",
		"inline": tpl,
		"vars":   map[string]any{"conf": map[string]any{"b": "2", "a": true}, "port": 8080},
		"mode":   "0640",
	})
	p := e.Path("etc", "app.cfg")
	if got, want := e.ReadFile(p), "[section]\na = True\nb = 2\nport = 8081\n"; got != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}
	if out.Outputs["location"] != p || out.Outputs["output"] != p || out.Installed[0] != p {
		t.Fatalf("result %+v", out)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
}

func TestTemplateTextAndContext(t *testing.T) {
	e := recipetest.New(t)
	e.MustInstall("a", "template", map[string]any{"output": "a", "template": "{{ x }}-{{ y }}", "context": map[string]any{"x": 1, "y": 1}, "vars": map[string]any{"y": 2}})
	if got := e.ReadFile(e.Path("a")); got != "1-2" {
		t.Fatalf("vars should override context: %q", got)
	}
	e.MustFail("b", "template", map[string]any{"output": "b", "inline": "x", "context": "key x section:option"}, `vars = { NAME = part.SECTION.OPTION }`)
	e.MustFail("c", "template", map[string]any{"output": "c", "inline": "a\n{{ nope }}"}, "c (inline):2:4", `"nope" is undefined`)
	e.MustFail("d", "template", map[string]any{"output": "d", "inline": "x", "template": "y"}, "exactly one of")
	e.MustFail("e", "template", map[string]any{"output": "e", "inline": "x", "engine": "mako"}, `"mako" is not jinja2`)
}

func sums(s string) (string, string) {
	a := sha256.Sum256([]byte(s))
	b := md5.Sum([]byte(s))
	return hex.EncodeToString(a[:]), hex.EncodeToString(b[:])
}

func TestFiles(t *testing.T) {
	e := recipetest.New(t)
	body := "name={{ name }}\n"
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "templates", "x.in"), body)
	sha, md5sum := sums(body)
	vars := map[string]any{"name": "n"}
	e.MustInstall("p", "template", map[string]any{"output": "p", "path": "templates/x.in", "vars": vars})
	if e.ReadFile(e.Path("p")) != "name=n\n" {
		t.Fatal("path template")
	}
	e.MustInstall("f", "template", map[string]any{"output": "f", "url": "file://" + filepath.Join(e.Context.ProfileDir, "templates", "x.in"), "md5sum": md5sum, "vars": vars})
	e.MustFail("bad", "template", map[string]any{"output": "g", "path": "templates/x.in", "md5sum": strings.Repeat("0", 32), "vars": vars}, "md5sum mismatch")
	e.MustFail("missing", "template", map[string]any{"output": "g", "path": "templates/none.in"}, "reading the template")

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
	defer srv.Close()
	e.MustInstall("h", "template", map[string]any{"output": "h", "url": srv.URL + "/x.in", "sha256": sha, "vars": vars})
	if e.ReadFile(e.Path("h")) != "name=n\n" {
		t.Fatal("downloaded template")
	}
	// Modes go through the host too (chmod); the template is fetched once.
	var downloads int
	for _, c := range e.Host.Calls() {
		if c == "download" {
			downloads++
		}
	}
	if downloads != 1 {
		t.Fatalf("host calls %v, want one download", e.Host.Calls())
	}
	e.MustFail("h2", "template", map[string]any{"output": "h", "url": srv.URL + "/x.in"}, "checksum is required")
}

func TestEngines(t *testing.T) {
	e := recipetest.New(t)
	e.MustInstall("go", "template", map[string]any{"output": "go", "engine": "go",
		"inline": `{{ .name | upper }} {{ join "," .list }} {{ json .m }}`,
		"vars":   map[string]any{"name": "x", "list": []any{"a", "b"}, "m": map[string]any{"k": 1}}})
	if got := e.ReadFile(e.Path("go")); got != `X a,b {"k":1}` {
		t.Fatalf("go engine: %q", got)
	}
	e.MustFail("go2", "template", map[string]any{"output": "go2", "engine": "go", "inline": "{{ .missing }}"}, "missing")
	e.MustInstall("bo", "template", map[string]any{"output": "bo", "engine": "buildout",
		"inline":   "a=${sec:opt} own=${:x} lit=$${x:y} $$5\n",
		"sections": map[string]any{"sec": map[string]any{"opt": "v"}, "": map[string]any{"x": 1}}})
	if got := e.ReadFile(e.Path("bo")); got != "a=v own=1 lit=${x:y} $5\n" {
		t.Fatalf("engine buildout: %q", got)
	}
	e.MustFail("bo2", "template", map[string]any{"output": "bo2", "engine": "buildout", "inline": "x\n  ${nope:o}"}, "bo2 (inline):2:3: ${nope:o}: section [nope] has no option")
	e.MustFail("bo3", "template", map[string]any{"output": "bo3", "engine": "buildout", "inline": "${nocolon}"}, "is not a buildout reference")
	e.MustInstall("none", "template", map[string]any{"output": "none", "engine": "none", "inline": "{{ kept }}"})
	if got := e.ReadFile(e.Path("none")); got != "{{ kept }}" {
		t.Fatalf("engine none: %q", got)
	}
}

func TestImports(t *testing.T) {
	e := recipetest.New(t)
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "lib.jinja2"), "{% macro kv(k, v) %}{{ k }}={{ v }}{% endmacro %}")
	// rawfile is a template too (its PATH is literal where file's is a
	// buildout key in slapos.recipe.template): SlapOS imports macros from it.
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "common.jinja2"), "{% macro hi() %}hi {{ who }}{% endmacro %}")
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "lib", "sub", "part.in"), "[{{ who }}]")
	e.MustInstall("i", "template", map[string]any{
		"output":           "out",
		"inline":           "{% import 'lib' as lib %}{% from 'inline' import greet %}{% import 'common' as c with context %}{{ lib.kv('a', 1) }} {{ greet() }} {{ c.hi() }} {% include 'dir:sub:part.in' %}",
		"imports":          map[string]any{"inline": "{% macro greet() %}hi{% endmacro %}"},
		"import-list":      "file lib lib.jinja2\nrawfile common common.jinja2\nfolder dir lib\n",
		"import-delimiter": ":",
		"vars":             map[string]any{"who": "you"},
	})
	if got := e.ReadFile(e.Path("out")); got != "a=1 hi hi you [you]" {
		t.Fatalf("rendered %q", got)
	}
	e.MustFail("j", "template", map[string]any{"output": "o", "inline": "{% include 'x' %}", "imports": map[string]any{"y": ""}}, `{% include %} of "x": not in imports or import-list (known: y)`)
	e.MustFail("k", "template", map[string]any{"output": "o", "inline": "", "import-list": "file only-two"}, "is not 'KIND NAME PATH'")
	e.MustFail("l", "template", map[string]any{"output": "o", "inline": "{% import 'c' as c %}", "import-list": "file c caucase-jinja2-library:target"}, "is a buildout key (SECTION:OPTION)")
	e.MustFail("m", "template", map[string]any{"output": "o", "inline": "{% include 'd/../../etc/passwd' %}", "import-list": "folder d lib"}, "leaves the folder d")
	e.MustFail("n", "template", map[string]any{"output": "o", "inline": "{% include 'gone' %}", "import-list": "rawfile gone gone.in"}, "o (inline):1:4", "gone.in")
}

func TestSlapOSOptions(t *testing.T) {
	e := recipetest.New(t)
	e.MustInstall("mods", "template", map[string]any{"output": "m",
		"inline":     "{{ json_module.dumps({'a': [1, 'x']}) }} {{ re.sub('[0-9]+', 'N', 'a12b3') }} {{ h.md5('x').hexdigest() }}",
		"modules":    map[string]any{"json_module": "json", "re": "re", "h": "hashlib"},
		"extensions": "jinja2.ext.do jinja2.ext.loopcontrols",
	})
	if got := e.ReadFile(e.Path("m")); got != `{"a": [1, "x"]} aNbN 9dd4e461268c8034f5c8564e155c67a6` {
		t.Fatalf("modules: %q", got)
	}
	e.MustFail("nomod", "template", map[string]any{"output": "x", "inline": "", "modules": map[string]any{"np": "numpy"}}, `no Python module "numpy"`)
	e.MustFail("ext", "template", map[string]any{"output": "x", "inline": "", "extensions": "jinja2.ext.i18n"}, "jinja2.ext.i18n is not supported")
	e.MustFail("enc", "template", map[string]any{"output": "x", "inline": "", "encoding": "latin-1"}, `"latin-1" is not supported`)

	// once: rendered the first time only.
	opts := map[string]any{"output": "o1", "inline": "{{ v }}", "once": "o1.done", "vars": map[string]any{"v": 1}}
	e.MustInstall("once", "template", opts)
	opts["vars"] = map[string]any{"v": 2}
	e.MustInstall("once", "template", opts)
	if got := e.ReadFile(e.Path("o1")); got != "1" {
		t.Fatalf("once: rendered again: %q", got)
	}
	e.MustInstall("umask", "template", map[string]any{"output": "u", "inline": "x", "umask": "027"})
	if st, _ := os.Stat(e.Path("u")); st.Mode().Perm() != 0o640 {
		t.Fatalf("umask 027: mode %v", st.Mode())
	}
}

// section-vars hold whole parts, whose keys are HCL names: a template reads
// them by their buildout option names (slapos.recipe.template:jinja2's
// `section NAME SECTION`).
func TestSectionVars(t *testing.T) {
	e := recipetest.New(t)
	e.MustInstall("cfg", "template", map[string]any{
		"output": "etc/app.cfg",
		"inline": "{{ slap['configuration.port'] }} {{ slap['-extends'] }} {{ slap.plain }} {{ mine['x'] }}\n",
		"section-vars": map[string]any{
			"slap": map[string]any{"configuration__2eport": "8080", "__2dextends": "more", "plain": "p"},
			"mine": map[string]any{"x": "from section"},
		},
		// vars win over a section of the same name.
		"vars": map[string]any{"mine": map[string]any{"x": "from vars"}},
	})
	if got := e.ReadFile(e.Path("etc", "app.cfg")); got != "8080 more p from vars\n" {
		t.Fatalf("rendered %q", got)
	}
}
