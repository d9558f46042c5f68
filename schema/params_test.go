package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseKeyValues(t *testing.T) {
	got, err := ParseKeyValues([]string{"name=web", "port:=8080", "debug:=true", "tags:=[\"a\",\"b\"]", "url=http://x/?a=b", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "web", "port": json.Number("8080"), "debug": true, "tags": []any{"a", "b"}, "url": "http://x/?a=b", "empty": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {":=1"}, {"a=1", "a=2"}, {"a:=nope"}, {"a:=1 2"}} {
		if _, err := ParseKeyValues(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseInstanceXML(t *testing.T) {
	xmlForm := `<?xml version='1.0' encoding='utf-8'?>
<instance>
  <parameter id="ram-size">4096</parameter>
  <parameter id="name">a &amp; b</parameter>
  <parameter id="dup">one</parameter>
  <parameter id="dup">two</parameter>
  <parameter id="empty"/>
</instance>`
	params, ser, err := ParseInstanceXML(strings.NewReader(xmlForm))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ram-size": "4096", "name": "a & b", "dup": "one two", "empty": ""}
	if ser != SerialisationXML || !reflect.DeepEqual(params, want) {
		t.Errorf("got %s %#v", ser, params)
	}

	jsonForm := `<?xml version='1.0' encoding='utf-8'?>
<instance>
  <parameter id="_">{"ram-size": 4096, "tags": ["a"], "nested": {"x": true}}</parameter>
</instance>`
	params, ser, err = ParseInstanceXML(strings.NewReader(jsonForm))
	if err != nil {
		t.Fatal(err)
	}
	if ser != SerialisationJSONInXML || mustJSON(t, params) != `{"nested":{"x":true},"ram-size":4096,"tags":["a"]}` {
		t.Errorf("got %s %s", ser, mustJSON(t, params))
	}
	if _, ok := params["ram-size"].(json.Number); !ok {
		t.Errorf("numbers must stay exact (json.Number), got %T", params["ram-size"])
	}

	for name, bad := range map[string]string{
		"empty":         "",
		"wrong root":    `<marshal/>`,
		"no id":         `<instance><parameter>x</parameter></instance>`,
		"other element": `<instance><param id="a">x</param></instance>`,
		"bad json":      `<instance><parameter id="_">{nope</parameter></instance>`,
		"json array":    `<instance><parameter id="_">[1]</parameter></instance>`,
		"unclosed":      `<instance><parameter id="a">x</parameter>`,
	} {
		if _, _, err := ParseInstanceXML(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInstanceXMLRoundTrip(t *testing.T) {
	in := map[string]any{"b": "x<y & \"z\"", "a": "1", "n": json.Number("3")}
	data, err := InstanceXML(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "<?xml version='1.0' encoding='utf-8'?>\n<instance>\n  <parameter id=\"a\">1</parameter>") {
		t.Errorf("not in SlapOS's order/form:\n%s", data)
	}
	out, ser, err := ParseInstanceXML(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if ser != SerialisationXML || !reflect.DeepEqual(out, map[string]any{"b": "x<y & \"z\"", "a": "1", "n": "3"}) {
		t.Errorf("got %#v", out)
	}
}

func TestValidateStringsCoercion(t *testing.T) {
	v, err := CompileJSON("x.json", []byte(`{
		"type": "object",
		"properties": {
			"ram": {"type": "integer", "minimum": 1024},
			"ratio": {"type": "number"},
			"tls": {"type": "boolean"},
			"name": {"type": "string"},
			"id": {"type": ["string", "integer"]},
			"size": {"$ref": "#/$defs/size"},
			"tags": {"type": "array", "items": {"type": "integer"}},
			"opts": {"type": "object"},
			"level": {"enum": [1, 2, 3]},
			"nullable": {"type": "null"}
		},
		"$defs": {"size": {"type": "integer"}}
	}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	params, ser, err := ParseInstanceXML(strings.NewReader(`<instance>
		<parameter id="ram">4096</parameter>
		<parameter id="ratio">0.5</parameter>
		<parameter id="tls">True</parameter>
		<parameter id="name">007</parameter>
		<parameter id="id">12</parameter>
		<parameter id="size"> 10 </parameter>
		<parameter id="tags">[1, 2]</parameter>
		<parameter id="opts">{"a": 1}</parameter>
		<parameter id="level">2</parameter>
		<parameter id="nullable">None</parameter>
		<parameter id="free">5</parameter>
	</instance>`))
	if err != nil || ser != SerialisationXML {
		t.Fatal(ser, err)
	}
	res, err := v.ValidateAs(ser, params)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"free":"5","id":"12","level":2,"name":"007","nullable":null,"opts":{"a":1},"ram":4096,"ratio":0.5,"size":10,"tags":[1,2],"tls":true}`
	if got := mustJSON(t, res.Params); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	wantCoerced := []string{"/level", "/nullable", "/opts", "/ram", "/ratio", "/size", "/tags", "/tls"}
	if !reflect.DeepEqual(res.Coerced, wantCoerced) {
		t.Errorf("coerced %q, want %q", res.Coerced, wantCoerced)
	}

	_, err = v.ValidateStrings(map[string]any{"ram": "lots", "tls": "maybe", "tags": "[1, \"x\"]"})
	got := messages(t, err)
	wantMsgs := []string{
		`/ram: must be an integer but is "lots"`,
		`/tags/1: must be an integer but is "x" (in /tags, converted from a string)`,
		`/tls: must be a boolean but is "maybe"`,
	}
	if !reflect.DeepEqual(got, wantMsgs) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantMsgs, "\n"))
	}
	_, err = v.ValidateStrings(map[string]any{"ram": "100"})
	if got := messages(t, err); !reflect.DeepEqual(got, []string{"/ram: must be >= 1024 but is 100 (converted from a string)"}) {
		t.Errorf("got %q", got)
	}
	// Validate (json-in-xml) never coerces.
	if _, err := v.Validate(map[string]any{"ram": "4096"}); err == nil {
		t.Error("Validate coerced a string")
	}
}

func TestDescriptorLookup(t *testing.T) {
	d, err := LoadDescriptor(filepath.Join(corpusDir(t), "software/mail-server-relay/software.cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, st := range d.List() {
		keys = append(keys, st.Key)
	}
	if !reflect.DeepEqual(keys, []string{"cluster", "cluster-shared", "relay"}) {
		t.Errorf("order %q", keys)
	}
	st, err := d.Lookup("cluster", true)
	if err != nil || st.Key != "cluster-shared" || !strings.HasSuffix(st.Request, "instance-shared-input-schema.json") {
		t.Errorf("shared lookup: %+v %v", st, err)
	}
	st, err = d.Lookup("cluster", false)
	if err != nil || st.Key != "cluster" {
		t.Errorf("lookup: %+v %v", st, err)
	}
	_, err = d.Validator("nosuch", false, Options{})
	if !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), `known types: cluster, cluster (shared), relay`) {
		t.Errorf("got %v", err)
	}
	if d.SerialisationOf(st) != SerialisationJSONInXML {
		t.Errorf("serialisation %s", d.SerialisationOf(st))
	}

	d, err = LoadDescriptor(filepath.Join(corpusDir(t), "software/ssh/software.cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err = d.Lookup("RootSoftwareInstance", false)
	if err != nil || st.Key != "default" || d.SerialisationOf(st) != SerialisationXML {
		t.Errorf("got %+v %v", st, err)
	}
}

func TestDescriptorBuiltByHand(t *testing.T) {
	dir := writeTree(t, map[string]string{"schema/in.json": `{"properties": {"port": {"type": "integer", "default": 8080}}}`})
	// As the HCL loader does: plain struct literal, no constructor.
	d := &Descriptor{Name: "helloweb", Dir: dir, Types: map[string]*SoftwareType{
		"default": {Request: "schema/in.json"},
	}}
	v, err := d.Validator("default", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(nil)
	if err != nil || mustJSON(t, res.Params) != `{"port":8080}` {
		t.Errorf("got %v %v", res, err)
	}
	if d.SerialisationOf(d.Types["default"]) != SerialisationJSONInXML {
		t.Error("default serialisation must be json-in-xml")
	}

	d2 := NewDescriptor("x", dir)
	if err := d2.AddType(&SoftwareType{Key: "a", Name: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := d2.AddType(&SoftwareType{Key: "b", Name: "default"}); err == nil {
		t.Error("duplicate (software type, shared) accepted")
	}
	if err := d2.AddType(&SoftwareType{Key: "c", Name: "default", Shared: true}); err != nil {
		t.Error(err)
	}
	// A type without a request schema accepts anything, as in SlapOS.
	v, err = d2.Validator("default", true, Options{})
	if err != nil || v.Location() != "" {
		t.Fatal(v, err)
	}
	if _, err := v.Validate(map[string]any{"anything": 1}); err != nil {
		t.Error(err)
	}
}

func TestParseDescriptorErrors(t *testing.T) {
	for name, bad := range map[string]string{
		"not json":          `{`,
		"bad serialisation": `{"serialisation": "yaml"}`,
		"types not object":  `{"software-type": []}`,
		"dup pair":          `{"software-type": {"a": {"software-type": "x"}, "b": {"software-type": "x"}}}`,
		"bad type ser":      `{"software-type": {"a": {"serialisation": "csv"}}}`,
	} {
		if _, err := ParseDescriptor([]byte(bad), "/tmp"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSummary(t *testing.T) {
	d, err := LoadDescriptor(filepath.Join(corpusDir(t), "software/rapidspace-vps/software.cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Validator("default", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps := v.Parameters(2)
	var names []string
	for _, p := range ps {
		names = append(names, p.Pointer)
	}
	if !reflect.DeepEqual(names, []string{"/boot-image-url-list", "/boot-image-url-select", "/enable-novnc-server"}) {
		t.Errorf("parameters %q", names)
	}
	if p := ps[2]; !p.HasDefault || p.Default != true || !reflect.DeepEqual(p.Types, []string{"boolean"}) || p.Title == "" {
		t.Errorf("enable-novnc-server: %+v", p)
	}
	s := v.Summary(2)
	for _, want := range []string{"enable-novnc-server  boolean  default true", "one of: \"Debian Trixie 13 netinst x86_64\""} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// FuzzValidate feeds arbitrary parameter documents, through every input
// form, to a schema that uses most keywords: nothing may panic, and a
// successful validation must return parameters that validate again.
func FuzzValidate(f *testing.F) {
	v := fuzzValidator(f)
	f.Add([]byte(`{"port": 0, "name": "Web", "bogus": 1}`))
	f.Add([]byte(`{"backend": {"kind": "b"}, "tags": ["a", "a"]}`))
	f.Add([]byte(`<instance><parameter id="port">8080</parameter><parameter id="tls">true</parameter></instance>`))
	f.Add([]byte(`<instance><parameter id="_">{"port": "80"}</parameter></instance>`))
	f.Add([]byte("port:=8080\nname=web\ntags:=[1]"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, v, data) })
}

// fuzzValidator compiles a schema that uses most keywords.
func fuzzValidator(tb testing.TB) *Validator {
	tb.Helper()
	v, err := CompileJSON("fuzz.json", []byte(`{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"type": "object",
		"$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 80}},
		"properties": {
			"port": {"$ref": "#/$defs/port"},
			"name": {"type": "string", "pattern": "^[a-z-]+$", "maxLength": 20, "default": "x"},
			"tls": {"type": "boolean", "default": false},
			"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "default": []},
			"backend": {"oneOf": [
				{"type": "object", "properties": {"kind": {"const": "a"}, "n": {"type": "integer", "default": 1}}, "required": ["kind"]},
				{"type": "object", "properties": {"kind": {"const": "b"}, "s": {"type": "string", "default": "s"}}, "required": ["kind"]}
			]},
			"nested": {"type": "object", "default": {}, "properties": {"deep": {"type": "object", "default": {}, "properties": {"x": {"default": 1}}}}}
		},
		"if": {"properties": {"tls": {"const": true}}, "required": ["tls"]},
		"then": {"required": ["name"]},
		"unevaluatedProperties": false
	}`), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func fuzzOne(t testing.TB, v *Validator, data []byte) {
	var docs []map[string]any
	strs := false
	if m, err := DecodeJSON(bytes.NewReader(data)); err == nil {
		docs = append(docs, m)
	}
	if m, ser, err := ParseInstanceXML(bytes.NewReader(data)); err == nil {
		docs = append(docs, m)
		strs = ser == SerialisationXML
	}
	if m, err := ParseKeyValues(strings.Split(string(data), "\n")); err == nil {
		docs = append(docs, m)
	}
	for _, doc := range docs {
		for _, coerce := range []bool{false, true, strs} {
			res, err := v.validate(doc, coerce)
			if err != nil {
				var ve *ValidationError
				if errors.As(err, &ve) && len(ve.Violations) == 0 {
					t.Fatalf("empty ValidationError for %s", data)
				}
				continue
			}
			if _, err := v.Validate(res.Params); err != nil {
				t.Fatalf("validated parameters %s do not validate again: %v", mustJSON(t, res.Params), err)
			}
		}
	}
}

// FuzzParseDescriptor: arbitrary descriptor files never panic.
func FuzzParseDescriptor(f *testing.F) {
	f.Add([]byte(`{"name": "x", "serialisation": "xml", "software-type": {"default": {"request": "in.json", "shared": true, "index": 2}}}`))
	f.Add([]byte(`{"software-type": {"a": {"software-type": "b"}, "b": {}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescriptor(data, "/nonexistent")
		if err != nil {
			return
		}
		for _, st := range d.List() {
			if _, err := d.Lookup(st.TypeName(), st.Shared); err != nil {
				t.Fatalf("listed type %q not found: %v", st.Key, err)
			}
		}
	})
}
