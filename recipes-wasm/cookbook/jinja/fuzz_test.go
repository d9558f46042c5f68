package jinja

import (
	"errors"
	"strings"
	"testing"
)

// FuzzRender feeds arbitrary templates to the parser and, when they parse,
// to the evaluator: neither may panic, whatever the input. Templates with
// several loops are only parsed, as nested loops over range() legitimately
// run for long.
func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		"{{ x }}", "{% for k, v in d|dictsort %}{{ k }}={{ v }}{% endfor %}",
		"{% if a is defined and a > 1 %}{{ a ~ 'x' }}{% elif b %}y{% else %}z{% endif %}",
		"{%- set l = [1, (2, 3), {'a': none}] -%}{{ l[1:][0]|tojson }}{# c #}",
		"{% raw %}{{ x }}{% endraw %}", "{% macro m(a, b=2) %}{{ a * b }}{% endmacro %}{{ m(3) }}",
		"{{ '%s-%05.1f' % ('a', 2.5) }}{{ 'a,b'.split(',')|join(';') }}", "{{ 2 ** 62 * 'ab' }}",
		"{% set ns = namespace(n=0) %}{% do d.update({'k': ns}) %}{{ d.k.n }}",
		"{% for x in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}",
		"{% macro m() %}[{{ caller(1) }}]{% endmacro %}{% call(v) m() %}{{ v }}{% endcall %}{% filter upper %}{% with a = 1 %}{{ a }}{% endwith %}{% endfilter %}",
		"{% block b %}{{ self.b is defined }}{% endblock %}{% for i in range(3) %}{% if i %}{% break %}{% endif %}{% endfor %}",
	} {
		f.Add(seed)
	}
	vars := map[string]any{"x": "X", "a": int64(2), "b": false, "d": map[string]any{"k": "v", "n": []any{int64(1)}}}
	f.Fuzz(func(t *testing.T, text string) {
		tpl, err := Parse("fuzz", text)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || te.Line < 1 || te.Col < 1 {
				t.Fatalf("parse error without a position: %v", err)
			}
			return
		}
		if strings.Count(text, "for") > 1 || strings.Contains(text, "range") {
			return
		}
		v := map[string]any{}
		for k, e := range vars {
			v[k] = e
		}
		v["d"] = map[string]any{"k": "v", "n": []any{int64(1)}}
		tpl.Execute(v)
	})
}

// FuzzPlainText: a text that RenderWith returns as is, because it opens
// no construct, is exactly what the full rendering makes of it.
func FuzzPlainText(f *testing.F) {
	for _, seed := range []string{"", "x", "x\n", "a\n\n", "\n", "{", "}", "x{", "{ {", "{x}", "%}", "#}", "}}", "{-", "a { % b", "{{ x }}", "{%- if x %}", "{# c #}", "é{\xff", "{{", "{%", "{#", "\r\n{\t{"} {
		f.Add(seed)
	}
	vars := map[string]any{"x": "X"}
	f.Fuzz(func(t *testing.T, text string) {
		got, err := RenderWith("fuzz", text, vars, nil)
		if !plain(text) {
			return
		}
		want, werr := renderFull("fuzz", text, vars, nil)
		if got != want || (err == nil) != (werr == nil) {
			t.Fatalf("%q: fast path %q, %v; full rendering %q, %v", text, got, err, want, werr)
		}
	})
}
