package gotemplate

import (
	"strings"
	"testing"
	stdtemplate "text/template"
)

// data is what the template recipe hands to its go engine: decoded JSON.
var data = map[string]any{
	"s": "a<b & 'c'", "n": int64(42), "f": 2.5, "t": true, "z": nil,
	"l": []any{"x", int64(2), 3.5, false, nil, []any{"y"}},
	"m": map[string]any{"b": int64(2), "a": "1", "c": map[string]any{"d": "e"}},
	"e": []any{}, "em": map[string]any{},
}

// The cases exercise every action, the builtins, variables, pipelines,
// range over maps (sorted keys) and lists, and the errors that end a
// render: both packages must give the same text, or both fail.
var cases = []string{
	`{{.s}} {{.n}} {{.f}} {{.t}} {{.z}} {{.l}} {{.m}} {{.e}} {{.em}}`,
	`{{.m.c.d}} {{.m.a}} {{index .l 1}} {{index .m "b"}} {{index .l 5 0}}`,
	`{{range $i, $v := .l}}[{{$i}}={{$v}}]{{end}}`,
	`{{range $k, $v := .m}}{{$k}}:{{$v}};{{end}}`,
	`{{range .e}}x{{else}}empty{{end}} {{range .em}}x{{else}}none{{end}}`,
	`{{range .l}}{{if eq (print .) "x"}}{{continue}}{{end}}{{if not .}}{{break}}{{end}}{{.}},{{end}}`,
	`{{if and .t .n}}yes{{else if .z}}no{{else}}other{{end}} {{or .z .s}} {{and .t .z}}`,
	`{{with .m.c}}{{.d}}{{end}} {{with .z}}x{{else}}nil{{end}} {{with $x := .n}}{{$x}}{{end}}`,
	`{{len .l}} {{len .m}} {{len .s}} {{slice .s 1 3}} {{slice .l 1 2}}`,
	`{{print .s .n}} {{printf "%05d|%q|%v|%.2f" .n .s .l .f}} {{println .t}}`,
	`{{html .s}} {{js .s}} {{urlquery .s "x y"}} {{.s | html | printf "<%s>"}}`,
	`{{eq .n 42}} {{ne .s "a"}} {{lt .n 50}} {{le .f 2.5}} {{gt .s "a"}} {{ge .n 42}} {{eq .n 1 2 42}}`,
	`{{$x := 1}}{{$x = 2}}{{$x}} {{$}}`,
	`{{define "t"}}<{{.}}>{{end}}{{template "t" .s}}{{block "b" .n}}[{{.}}]{{end}}`,
	`{{- .s -}} | {{/* comment */}} {{- " trimmed " -}} |`,
	`{{join ", " .l}} {{json .m}} {{upper .s}} {{lower "AB"}} {{replace "a" "b" .s}} {{trim "  t  "}}`,
	`{{.missing}}`,
	`{{.m.nothere}}`,
	`{{.s.x}}`,
	`{{.n.x}}`,
	`{{.l.x}}`,
	`{{.z.x}}`,
	`{{index .l 10}}`,
	`{{lt .n .f}}`,
	`{{eq .l .l}}`,
	`{{template "nope"}}`,
	`{{nofunc}}`,
	`{{call .s}}`,
	`{{if}}`,
	`{{range .n}}{{.}}{{end}}`,
	`{{slice .n 1}}`,
	`{{printf "%d" .s}}`,
}

func funcs() map[string]any {
	return map[string]any{
		"join": func(sep string, items []any) string {
			var parts []string
			for _, it := range items {
				parts = append(parts, toString(it))
			}
			return strings.Join(parts, sep)
		},
		"json":    func(v any) (string, error) { return "json", nil },
		"upper":   strings.ToUpper,
		"lower":   strings.ToLower,
		"replace": func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"trim":    strings.TrimSpace,
	}
}

func toString(v any) string {
	var b strings.Builder
	stdtemplate.Must(stdtemplate.New("").Parse("{{.}}")).Execute(&b, v)
	return b.String()
}

func render(name, text string, std bool) (string, error) {
	var b strings.Builder
	if std {
		t, err := stdtemplate.New(name).Option("missingkey=error").Funcs(funcs()).Parse(text)
		if err != nil {
			return "", err
		}
		err = t.Execute(&b, data)
		return b.String(), err
	}
	t, err := New(name).Option("missingkey=error").Funcs(funcs()).Parse(text)
	if err != nil {
		return "", err
	}
	err = t.Execute(&b, data)
	return b.String(), err
}

func TestSameAsTextTemplate(t *testing.T) {
	for i, c := range cases {
		want, wantErr := render("c", c, true)
		got, gotErr := render("c", c, false)
		if got != want || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Errorf("case %d %s:\n text/template: %q, %v\n gotemplate:    %q, %v", i, c, want, wantErr, got, gotErr)
		}
	}
}

// withMethod is not decoded JSON: text/template calls its method, the
// copy does not (the one difference, documented in the package comment).
type withMethod struct{}

func (withMethod) Hello() string { return "hello" }

func TestNoMethodCalls(t *testing.T) {
	var b strings.Builder
	tmpl, err := New("m").Parse("{{.Hello}}")
	if err != nil {
		t.Fatal(err)
	}
	err = tmpl.Execute(&b, withMethod{})
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field Hello") {
		t.Fatalf("a method of the data was called: %q, %v", b.String(), err)
	}
}
