package schema

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
)

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDefaults(t *testing.T) {
	v, err := CompileJSON("d.json", []byte(`{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"type": "object",
		"$defs": {"port": {"type": "integer", "default": 8080}},
		"properties": {
			"port": {"$ref": "#/$defs/port"},
			"name": {"type": "string", "default": "web"},
			"frontend": {"type": "object", "default": {}, "properties": {
				"replicas": {"type": "integer", "default": 2},
				"tls": {"type": "object", "properties": {"enabled": {"type": "boolean", "default": true}}}}},
			"backends": {"type": "array", "items": {"type": "object", "properties": {"weight": {"default": 1}}}},
			"mode": {"enum": ["a", "b"]}
		},
		"allOf": [{"properties": {"log-level": {"default": "info"}}}],
		"if": {"properties": {"mode": {"const": "a"}}, "required": ["mode"]},
		"then": {"properties": {"a-only": {"default": "then"}}},
		"else": {"properties": {"not-a": {"default": "else"}}}
	}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := decode(t, `{"name": "mine", "backends": [{"host": "x"}, {"weight": 5}], "mode": "a"}`)
	before := mustJSON(t, in)
	res, err := v.Validate(in)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, in) != before {
		t.Error("Validate modified the caller's parameters")
	}
	want := `{"a-only":"then","backends":[{"host":"x","weight":1},{"weight":5}],"frontend":{"replicas":2},"log-level":"info","mode":"a","name":"mine","port":8080}`
	if got := mustJSON(t, res.Params); got != want {
		t.Errorf("params\n got %s\nwant %s", got, want)
	}
	wantDefaults := []string{"/a-only", "/backends/0/weight", "/frontend", "/frontend/replicas", "/log-level", "/port"}
	if !reflect.DeepEqual(res.Defaults, wantDefaults) {
		t.Errorf("defaults %q, want %q", res.Defaults, wantDefaults)
	}

	res, err = v.Validate(decode(t, `{"mode": "b", "frontend": {"tls": {}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Params["not-a"] != "else" || res.Params["a-only"] != nil {
		t.Errorf("if/else defaults: %v", res.Params)
	}
	if got := mustJSON(t, res.Params["frontend"]); got != `{"replicas":2,"tls":{"enabled":true}}` {
		t.Errorf("nested defaults: %s", got)
	}
}

func TestDefaultsOfSelectedOneOfBranch(t *testing.T) {
	v, err := CompileJSON("o.json", []byte(`{"properties": {"db": {"oneOf": [
		{"properties": {"kind": {"const": "mariadb"}, "port": {"default": 3306}}, "required": ["kind"]},
		{"properties": {"kind": {"const": "postgres"}, "port": {"default": 5432}}, "required": ["kind"]}
	]}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(decode(t, `{"db": {"kind": "postgres"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, res.Params); got != `{"db":{"kind":"postgres","port":5432}}` {
		t.Errorf("got %s", got)
	}
}

// TestInvalidDefaultLeftOut: a schema default that does not validate must
// not make valid parameters invalid (simpleran's "cell1" default {} lacks
// its required member).
func TestInvalidDefaultLeftOut(t *testing.T) {
	v, err := CompileJSON("i.json", []byte(`{"properties": {
		"cell": {"type": "object", "default": {}, "required": ["enable"]},
		"port": {"type": "integer", "default": 80}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.InvalidDefaults, []string{"/cell"}) || !reflect.DeepEqual(res.Defaults, []string{"/port"}) {
		t.Errorf("invalid %v defaults %v", res.InvalidDefaults, res.Defaults)
	}
	if _, ok := res.Params["cell"]; ok {
		t.Errorf("invalid default kept: %v", res.Params)
	}
	// The user's own errors are still reported.
	_, err = v.Validate(decode(t, `{"port": "x"}`))
	if got := messages(t, err); !reflect.DeepEqual(got, []string{`/port: must be an integer but is "x"`}) {
		t.Errorf("got %q", got)
	}

	d, err := LoadDescriptor(filepath.Join(corpusDir(t), "software/simpleran/software-ors-c1.cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := d.Validator("enb-gnb", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = sv.Validate(nil)
	if err != nil {
		t.Fatalf("empty parameters of simpleran enb-gnb: %v", err)
	}
	if len(res.InvalidDefaults) == 0 || len(res.Defaults) == 0 {
		t.Errorf("defaults %v invalid %v", res.Defaults, res.InvalidDefaults)
	}
}

// TestDefaultsInvalidInContext covers defaults that validate alone but not
// where they land: the violation is at the default (dependentSchemas) or
// at the object it was added to (wendelin's "replication" enum [{}] that
// {} stops matching once its nested defaults are filled).
func TestDefaultsInvalidInContext(t *testing.T) {
	v, err := CompileJSON("c.json", []byte(`{"properties": {
		"a": {"type": "string", "default": "x"},
		"b": {"type": "integer"},
		"replication": {"type": "object",
			"properties": {"tls": {"type": "boolean", "default": true}, "url": {"type": "string"}},
			"oneOf": [{"required": ["url"]}, {"enum": [{}]}]}},
		"dependentSchemas": {"b": {"properties": {"a": {"maxLength": 0}}}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(decode(t, `{"b": 1, "replication": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, res.Params); got != `{"b":1,"replication":{}}` {
		t.Errorf("params %s", got)
	}
	if !reflect.DeepEqual(res.InvalidDefaults, []string{"/a", "/replication/tls"}) || len(res.Defaults) != 0 {
		t.Errorf("invalid %q defaults %q", res.InvalidDefaults, res.Defaults)
	}
	// Where the defaults fit, they are applied.
	res, err = v.Validate(decode(t, `{"replication": {"url": "u"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, res.Params); got != `{"a":"x","replication":{"tls":true,"url":"u"}}` || len(res.InvalidDefaults) != 0 {
		t.Errorf("params %s invalid %q", got, res.InvalidDefaults)
	}
	// The user's own error is still reported, without default noise.
	_, err = v.Validate(decode(t, `{"b": "one", "replication": {"url": 1}}`))
	got := messages(t, err)
	want := []string{`/b: must be an integer but is "one"`, "/replication/url: must be a string but is 1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestDefaultsOnlyDeep checks that a schema whose only default is deep in
// a branch (an anyOf of an array's items, through a $ref) still has it
// applied: the validator skips applying defaults only for schemas that
// have none anywhere.
func TestDefaultsOnlyDeep(t *testing.T) {
	v, err := CompileJSON("deep.json", []byte(`{
		"type": "object",
		"$defs": {"entry": {"type": "object", "properties": {"weight": {"type": "integer", "default": 1}}}},
		"properties": {"list": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/entry"}]}}}
	}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(decode(t, `{"list": [{"host": "x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, res.Params), `{"list":[{"host":"x","weight":1}]}`; got != want {
		t.Errorf("params\n got %s\nwant %s", got, want)
	}
	none, err := CompileJSON("none.json", []byte(`{"type": "object", "properties": {"a": {"type": "string"}},
		"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = none.Validate(decode(t, `{"a": "x"}`))
	if err != nil || len(res.Defaults) != 0 || mustJSON(t, res.Params) != `{"a":"x"}` {
		t.Errorf("no defaults: %v %q %s", err, res.Defaults, mustJSON(t, res.Params))
	}
}
