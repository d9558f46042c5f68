package jinja

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func render(t *testing.T, tpl string, vars map[string]any) string {
	t.Helper()
	out, err := Render("t.in", tpl, vars)
	if err != nil {
		t.Fatalf("Render(%q): %v", tpl, err)
	}
	return out
}

func TestRender(t *testing.T) {
	vars := map[string]any{
		"name":               "world",
		"port":               int64(8080),
		"ratio":              0.5,
		"empty":              "",
		"items":              []any{"a", "b", "c"},
		"nums":               []any{int64(3), int64(1), int64(2)},
		"conf":               map[string]any{"b": int64(2), "a": "x", "nested": map[string]any{"k": "v"}},
		"slapparameter_dict": map[string]any{"title": "Hello", "port": "9090"},
		"hosts": []any{
			map[string]any{"name": "h1", "up": true},
			map[string]any{"name": "h2", "up": false},
		},
		"none": nil,
		"ok":   true,
	}
	cases := []struct{ name, tpl, want string }{
		{"text", "plain text\n", "plain text\n"},
		{"var", "Hello {{ name }}!", "Hello world!"},
		{"int", "{{ port }}", "8080"},
		{"float", "{{ ratio }} {{ 2.0 }} {{ 1e20 }}", "0.5 2.0 1e+20"},
		{"bool none", "{{ ok }} {{ none }} {{ false }}", "True None False"},
		{"arith", "{{ port + 1 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 3 * 'ab' }}", "8081 3 3.5 2 1024 ababab"},
		{"concat", "{{ 'http://' ~ name ~ ':' ~ port }}", "http://world:8080"},
		{"string plus", "{{ 'a' + 'b' }}", "ab"},
		{"attr and index", "{{ conf.a }} {{ conf['b'] }} {{ conf.nested.k }} {{ items[0] }} {{ items[-1] }} {{ items[1:] }} {{ name[::-1] }}", "x 2 v a c ['b', 'c'] dlrow"},
		{"list repr", "{{ items }} {{ conf }} {{ (1,) }}", "['a', 'b', 'c'] {'a': 'x', 'b': 2, 'nested': {'k': 'v'}} (1,)"},
		{"get", "{{ slapparameter_dict.get('title', 'none') }} {{ slapparameter_dict.get('missing', 'dflt') }} {{ slapparameter_dict.get('missing') }}", "Hello dflt None"},
		{"if elif else", "{% if port > 9000 %}big{% elif port == 8080 %}eq{% else %}small{% endif %}", "eq"},
		{"and or not in", "{{ 'a' in items and not ('z' in items) }} {{ 'z' not in items or false }} {{ empty or 'fallback' }} {{ 0 and 1 }}", "True True fallback 0"},
		{"inline if", "{{ 'yes' if ok else 'no' }} {{ 'yes' if empty else 'no' }}", "yes no"},
		{"for loop vars", "{% for x in items %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", "1a,2b,3c"},
		{"for first/length/revindex", "{% for x in items %}{{ loop.first }}{{ loop.length }}{{ loop.revindex0 }} {% endfor %}", "True32 False31 False30 "},
		{"for items unpack", "{% for k, v in conf.items() %}{{ k }}={{ v }};{% endfor %}", "a=x;b=2;nested={'k': 'v'};"},
		{"for dict keys", "{% for k in conf %}{{ k }}{% endfor %}", "abnested"},
		{"for dictsort", "{% for k, v in {'z': 1, 'y': 2}|dictsort %}{{ k }}{{ v }}{% endfor %}", "y2z1"},
		// stack/erp5-zope2's instance-erp5.cfg.in: a tuple without parentheses.
		{"for over a bare tuple", "{% for k in 'ssl', '_ca', '_cert' -%}{{ k }};{% endfor %}", "ssl;_ca;_cert;"},
		{"for over a bare tuple, filtered", "{% for k in 'a', 'bb', 'c' if k|length == 1 %}{{ k }}{% endfor %}", "ac"},
		{"for nested unpack", "{% for name, (a, b) in [('x', (1, 2)), ('y', (3, 4))] %}{{ name }}{{ a + b }}{% endfor %}", "x3y7"},
		{"for if filter", "{% for h in hosts if h.up %}{{ h.name }}{{ loop.length }}{% endfor %}", "h11"},
		{"for else", "{% for x in [] %}{{ x }}{% else %}none{% endfor %}", "none"},
		{"set", "{% set a = port + 1 %}{{ a }}", "8081"},
		{"set tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12"},
		{"set trailing comma", "{% set t = (1, 2), %}{{ t }}", "((1, 2),)"},
		{"set in loop does not leak", "{% set a = 1 %}{% for x in items %}{% set a = 2 %}{% endfor %}{{ a }}", "1"},
		{"set in if leaks", "{% if ok %}{% set a = 2 %}{% endif %}{{ a }}", "2"},
		{"namespace", "{% set ns = namespace(n=0) %}{% for x in items %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "3"},
		{"block set", "{% set body %}port={{ port }}{% endset %}[{{ body }}]", "[port=8080]"},
		{"do append", "{% set l = [] %}{% for x in items %}{% do l.append(x|upper) %}{% endfor %}{{ l|join(',') }}", "A,B,C"},
		{"do dict update", "{% set d = {} %}{% do d.update({'k': 1}) %}{% do d.__setitem__('j', 2) %}{% do d.setdefault('k', 9) %}{{ d|tojson }}", `{"j": 2, "k": 1}`},
		{"dict splat", "{% set d = dict(conf, **slapparameter_dict) %}{{ d.title }}{{ d.a }}", "Hellox"},
		{"raw", "{% raw %}{{ not rendered }}{% if %}{% endraw %}", "{{ not rendered }}{% if %}"},
		{"comment", "a{# a comment {{ x }} #}b", "ab"},
		{"whitespace control", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}\n  c", "abc"},
		{"whitespace var", "x = {{- ' y' }}\n{{- 'z' -}}\n !", "x = yz!"},
		{"plain tags keep newlines", "{% if true %}\nline\n{% endif %}\n", "\nline\n\n"},
		{"raw whitespace", "a {%- raw -%} {{x}} {%- endraw -%} b", "a{{x}}b"},
		{"filters text", "{{ name|upper }} {{ 'ABC'|lower }} {{ '  x  '|trim }} {{ 'a-b'|replace('-', '_') }} {{ 'hello world'|title }} {{ 'abc'|capitalize }}", "WORLD abc x a_b Hello World Abc"},
		{"filters num", "{{ '42'|int + 1 }} {{ 'x'|int(7) }} {{ '3.9'|int }} {{ 2|string ~ 'x' }} {{ '1.5'|float }} {{ -3|abs }} {{ 2.567|round(2) }}", "43 7 3 2x 1.5 3 2.57"},
		{"filters seq", "{{ items|length }} {{ items|join('|') }} {{ nums|sort|list }} {{ nums|sort(reverse=true)|first }} {{ nums|max }} {{ nums|min }} {{ nums|sum }} {{ [1, 1, 2]|unique|list }} {{ items|reverse|join }} {{ items|last }}", "3 a|b|c [1, 2, 3] 3 3 1 6 [1, 2] cba c"},
		{"default", "{{ missing|default('d') }} {{ empty|default('e', true) }} {{ empty|default('e') }}|{{ none|d('n') }}", "d e |None"},
		{"tojson", "{{ conf|tojson }} {{ 'a<b'|tojson }} {{ [1, 'x', none, true]|tojson }}", `{"a": "x", "b": 2, "nested": {"k": "v"}} "a\u003cb" [1, "x", null, true]`},
		{"items filter", "{% for k, v in conf|items %}{{ k }}{% endfor %}", "abnested"},
		{"map select", "{{ hosts|map(attribute='name')|join(',') }} {{ hosts|selectattr('up')|map(attribute='name')|list }} {{ nums|select('odd')|list }} {{ nums|reject('odd')|list }} {{ items|map('upper')|join }}", "h1,h2 ['h1'] [3, 1] [2] ABC"},
		{"indent", "{{ 'a\nb\n\nc'|indent(2) }}", "a\n  b\n\n  c"},
		{"tests", "{{ name is defined }} {{ missing is defined }} {{ missing is undefined }} {{ none is none }} {{ port is number }} {{ name is string }} {{ conf is mapping }} {{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ port is not none }}", "True False True True True True True True True True"},
		{"defined guard", "{% if missing is defined and missing %}x{% else %}y{% endif %}", "y"},
		{"string methods", "{{ 'a,b,c'.split(',') }} {{ ' x '.strip() }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ '-'.join(items) }} {{ 'a b  c'.split() }} {{ 'k=v=w'.split('=', 1) }} {{ 'x.y.z'.rsplit('.', 1) }} {{ '{}:{}'.format('h', 80) }} {{ 'ab'.upper() }}", "['a', 'b', 'c'] x True True a-b-c ['a', 'b', 'c'] ['k', 'v=w'] ['x.y', 'z'] h:80 AB"},
		{"percent format", "{{ '%s:%d' % ('h', 80) }} {{ '%05.1f%%' % 3.14159 }} {{ '%(a)s' % {'a': 1} }} {{ '%r' % 'q' }}", "h:80 003.1% 1 'q'"},
		{"range", "{% for i in range(3) %}{{ i }}{% endfor %} {{ range(1, 7, 2)|list }}", "012 [1, 3, 5]"},
		{"list methods", "{% set l = [3, 1] %}{% do l.extend([2]) %}{% do l.insert(0, 9) %}{{ l.pop() }} {{ l }} {{ l.index(1) }} {{ l.count(3) }}", "2 [9, 3, 1] 2 1"},
		{"comparisons", "{{ 1 < 2 <= 2 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} {{ 1 == 1.0 }} {{ '1' == 1 }}", "True True True True False"},
		{"macro", "{% macro line(k, v='d') %}{{ k }}={{ v }}{% endmacro %}{{ line('a') }};{{ line('b', 'x') }};{{ line(k='c', v=port) }}", "a=d;b=x;c=8080"},
		{"dict literal", "{{ {'a': 1, 'b': [1, 2]}['b'][1] }}", "2"},
		{"adjacent strings", "{{ 'a' 'b' }}", "ab"},
		{"string escapes", `{{ 'it\'s\n' }}`, "it's\n"},
		{"trailing newline kept", "x\n", "x\n"},
		{"batch", "{{ [1, 2, 3]|batch(2)|list }}", "[[1, 2], [3]]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := render(t, c.tpl, vars); got != c.want {
				t.Errorf("template %q\n got %q\nwant %q", c.tpl, got, c.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	cases := []struct{ name, tpl, want string }{
		{"undefined var", "line1\n  {{ nope }}", `t.in:2:6: "nope" is undefined`},
		{"undefined attr", "{{ d.missing }}", `dict has no attribute or key "missing"`},
		{"undefined in if", "{% if nope %}x{% endif %}", `t.in:1:7: "nope" is undefined`},
		{"unknown filter", "{{ 1|frobnicate }}", "t.in:1:6: filter frobnicate: unknown filter"},
		{"unknown test", "{{ 1 is frob }}", "t.in:1:9: test frob: unknown test"},
		{"unclosed if", "{% if true %}x", "unexpected end of template: expected {% elif %} or {% else %} or {% endif %}"},
		{"unclosed var", "{{ x ", "tag is never closed"},
		{"unclosed comment", "{# x", "t.in:1:1: comment '{#' is never closed"},
		{"include without loader", "a\n{% include 'x.cfg' %}", `t.in:2:4: {% include %} of "x.cfg": no templates to import (give them to the template recipe: imports = { "x.cfg" = file("…") })`},
		{"import without loader", "{% import 'x' as y %}", `{% import %} of "x": no templates to import`},
		{"extends without loader", "{% extends 'base' %}", `t.in:1:4: {% extends %} of "base": no templates to import`},
		{"super without parent", "{% block b %}{{ super() }}{% endblock %}", `"super" is undefined`},
		{"duplicate block", "{% block b %}{% endblock %}{% block b %}{% endblock %}", `block "b" defined twice`},
		{"call without a call", "{% call x %}{% endcall %}", "{% call %} needs a macro call"},
		{"loop not recursive", "{% for x in [1] %}{{ loop([]) }}{% endfor %}", "the loop is not recursive"},
		{"assert", "{{ assert(1 > 2, 'one is', 'small') }}", "AssertionError: one is small"},
		{"recursive macro", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "t.in:1:4: macro m: more than 256 nested calls"},
		{"recursive block", "{% block b %}{{ self.b() }}{% endblock %}", "block b: more than 256 nested calls"},
		{"runaway recursive loop", "{% for x in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}", "recursive loop"},
		{"unknown tag", "{% frob %}", "unknown tag {% frob %}"},
		{"stray endif", "{% endif %}", "unknown tag {% endif %}"},
		{"bad char", "{{ a $ b }}", "t.in:1:6: unexpected character '$'"},
		{"bad op", "{{ 'a' - 1 }}", "unsupported operand types for -: string and integer"},
		{"unpack", "{% for a, b in [1] %}{% endfor %}", "cannot unpack integer"},
		{"not callable", "{{ d() }}", "is not callable"},
		{"unclosed raw", "{% raw %}abc", "never closed with {% endraw %}"},
		{"zero division", "{{ 1 // 0 }}", "integer division by zero"},
		{"set attr on non-namespace", "{% set x = 1 %}{% set x.y = 2 %}", "cannot set attribute"},
		{"break outside a loop", "{% if true %}{% break %}{% endif %}", "t.in:1:17: {% break %} outside of a loop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Render("t.in", c.tpl, map[string]any{"d": map[string]any{}})
			if err == nil {
				t.Fatalf("template %q rendered, want an error containing %q", c.tpl, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("template %q: error %q, want it to contain %q", c.tpl, err, c.want)
			}
		})
	}
}

func TestTemplateReuse(t *testing.T) {
	tpl, err := Parse("t", "{% set l = [] %}{% do l.append(x) %}{{ l }}")
	if err != nil {
		t.Fatal(err)
	}
	// Literals are built fresh on each rendering: a list mutated by one
	// rendering must not carry over to the next.
	for _, x := range []string{"a", "b"} {
		out, err := tpl.Execute(map[string]any{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		if want := "['" + x + "']"; out != want {
			t.Fatalf("got %q, want %q", out, want)
		}
	}
}

func TestToGo(t *testing.T) {
	out := ToGo(fromGo(map[string]any{"l": []any{int64(1), "x"}, "n": nil}))
	m := out.(map[string]any)
	if l := m["l"].([]any); len(l) != 2 || l[0] != int64(1) || l[1] != "x" || m["n"] != nil {
		t.Fatalf("ToGo round trip gave %#v", out)
	}
}

// TestSlapOSShapes renders templates written in the shapes real SlapOS
// instance profiles use (testdata/*.in), against golden outputs.
func TestSlapOSShapes(t *testing.T) {
	files, err := filepath.Glob("testdata/*.in")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata templates: %v", err)
	}
	vars := map[string]any{
		"buildout": map[string]any{"eggs-directory": "/srv/eggs", "develop-eggs-directory": "/srv/develop-eggs"},
		"slapparameter_dict": map[string]any{
			"title":         "My site",
			"port":          int64(8081),
			"backend-list":  []any{"[::1]:8001", "[::1]:8002"},
			"frontend-dict": map[string]any{"main": map[string]any{"url": "https://a.example", "weight": int64(2)}, "alt": map[string]any{"url": "https://b.example"}},
		},
		"default_parameter_dict": map[string]any{"title": "", "download_url": nil, "port": int64(8080), "monitor-httpd-port": int64(8197)},
		"partition_ipv6":         "fd00::1",
		"bin_directory":          "/srv/sr/bin",
		"software_type":          "default",
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".in") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Render(filepath.Base(f), string(src), vars)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s rendered:\n%s\nwant:\n%s", f, got, want)
			}
		})
	}
}

func TestImports(t *testing.T) {
	lib := map[string]string{
		"macros": `{% macro line(k, v) %}{{ k }} = {{ v }}{% endmacro %}{% set version = '1.2' %}{% set _private = 1 %}` +
			`{% macro ctx() %}{{ title|default('no title') }}{% endmacro %}`,
		"part.cfg": "[{{ name }}]\n{% set leaked = 1 %}",
		"self":     "{% include 'self' %}",
		"broken":   "{% if %}",
	}
	load := func(name string) (string, error) {
		if s, ok := lib[name]; ok {
			return s, nil
		}
		return "", os.ErrNotExist
	}
	vars := map[string]any{"title": "T", "name": "n"}
	cases := []struct{ name, tpl, want string }{
		{"import as", "{% import 'macros' as m %}{{ m.line('a', 1) }} {{ m.version }} {{ m._private is defined }}", "a = 1 1.2 False"},
		{"import without context", "{% import 'macros' as m %}{{ m.ctx() }}", "no title"},
		{"import with context", "{% import 'macros' as m with context %}{{ m.ctx() }}", "T"},
		{"from import", "{% from 'macros' import line, version as v %}{{ line('b', v) }}", "b = 1.2"},
		{"include", "{% set name = 'local' %}{% include 'part.cfg' %}{{ leaked is defined }}", "[local]\nFalse"},
		{"include ignore missing", "a{% include 'nope' ignore missing %}b", "ab"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := RenderWith("t.in", c.tpl, vars, load)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	for tpl, want := range map[string]string{
		"{% include 'nope' %}":               `t.in:1:4: {% include %} of "nope": file does not exist`,
		"{% from 'macros' import missing %}": `template "macros" exports no "missing"`,
		"{% include 'self' %}":               "more than 32 nested imports",
		"{% import 'broken' as b %}":         "broken:1:7: unexpected '%}' in expression",
		"{% import 42 as b %}":               "needs a template name (a string), not integer",
	} {
		if _, err := RenderWith("t.in", tpl, vars, load); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", tpl, err, want)
		}
	}
}

// BenchmarkRender renders a template of the shape SlapOS instance profiles
// have (testdata/instance.cfg.in: loops, macros, filters, dict methods).
func BenchmarkRender(b *testing.B) {
	src, err := os.ReadFile("testdata/instance.cfg.in")
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{
		"buildout":               map[string]any{"eggs-directory": "/srv/eggs", "develop-eggs-directory": "/srv/develop-eggs"},
		"slapparameter_dict":     map[string]any{"title": "My site", "port": int64(8081), "backend-list": []any{"[::1]:8001", "[::1]:8002"}, "frontend-dict": map[string]any{"main": map[string]any{"url": "https://a.example", "weight": int64(2)}}},
		"default_parameter_dict": map[string]any{"title": "", "download_url": nil, "port": int64(8080), "monitor-httpd-port": int64(8197)},
		"partition_ipv6":         "fd00::1",
		"bin_directory":          "/srv/sr/bin",
		"software_type":          "default",
	}
	tpl, err := Parse("instance.cfg.in", string(src))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := tpl.Execute(vars); err != nil {
			b.Fatal(err)
		}
	}
}

// software/slapos-sr-testing's instance.cfg joins paths with os.pathsep.
func TestOsModuleConstants(t *testing.T) {
	os, ok := Module("os")
	if !ok {
		t.Fatal("no os module")
	}
	tpl, err := Parse("t", "{{ os.pathsep.join(['a', 'b']) }} {{ os.sep }}{{ os.curdir }}{{ os.pardir }}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Execute(map[string]any{"os": os})
	if err != nil || got != "a:b /..." {
		t.Fatalf("rendered %q, %v", got, err)
	}
}

// TestGlobalsShared: the globals are built once and shared by every
// render, so nothing a template does may change them for the next one.
func TestGlobalsShared(t *testing.T) {
	before := len(sharedGlobals())
	for _, tpl := range []string{
		`{% set range = 5 %}{% set dict = "x" %}{{ range }}{{ dict }}`,
		`{% macro lipsum() %}m{% endmacro %}{{ lipsum() }}`,
		`{% for cycler in [1] %}{{ cycler }}{% endfor %}`,
		`{% set range.x = 1 %}`,
	} {
		Render("t.in", tpl, nil)
	}
	if got := render(t, `{{ range(3) | list }} {{ dict(a=1) }} {{ cycler("a", "b").next() }}`, nil); got != `[0, 1, 2] {'a': 1} a` {
		t.Errorf("globals after templates that assign to their names: %q", got)
	}
	if len(sharedGlobals()) != before {
		t.Errorf("the globals changed: %d → %d names", before, len(sharedGlobals()))
	}
}
