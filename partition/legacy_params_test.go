package partition

import (
	"reflect"
	"testing"

	"github.com/slapnode/slapnode/schema"
)

// `--param port=18650` on a json-in-xml release: the partition's
// slap-configuration gets the number the schema asks for, as SlapOS's
// client would send it, and not the schema's defaults.
func TestAsRequestedKeepsCoercionsNotDefaults(t *testing.T) {
	v, err := schema.CompileJSON("params.json", []byte(`{"type": "object", "properties": {
		"port": {"type": "integer"},
		"name": {"type": "string", "default": "memo"},
		"limits": {"type": "object", "properties": {"a/b": {"type": "boolean"}}}}}`), schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	given := map[string]any{"port": "18650", "limits": map[string]any{"a/b": "true"}}
	res, err := v.ValidateStrings(given)
	if err != nil {
		t.Fatal(err)
	}
	got := asRequested(given, res)
	want := map[string]any{"port": res.Params["port"], "limits": map[string]any{"a/b": true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("as requested: %#v, want %#v", got, want)
	}
	if given["port"] != "18650" {
		t.Fatal("the caller's parameters were changed")
	}
	if w := wireParameters(got, schema.SerialisationJSONInXML)["_"]; w != `{"limits":{"a/b":true},"port":18650}` {
		t.Fatalf("on the wire: %v", w)
	}
}
