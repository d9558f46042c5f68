package partition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/slapnode/slapnode/schema"
)

// toJSONMap is how the first versions wrote a part's options: each value's
// ctyjson text in a map, given to json.Marshal.
func toJSONMap(opts map[string]cty.Value) (json.RawMessage, error) {
	m := make(map[string]json.RawMessage, len(opts))
	for k, v := range opts {
		b, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", k, err)
		}
		m[k] = b
	}
	return json.Marshal(m)
}

var optionStrings = []string{"", "a", "/srv/slapgrid/slappart0/etc", "<script>&amp;</script>", "q\"uote\\back/slash",
	"\n\r\t\b\f\x00\x1f\x7f", "\u2028\u2029", "é ключ 日本 🎉", "\xff\xfe invalid", "a\xc3", "0755", "${x}"}

// randomValue is a cty value of any type options can have.
func randomValue(r *rand.Rand, depth int) cty.Value {
	n := 9
	if depth <= 0 {
		n = 5
	}
	switch r.IntN(n) {
	case 0, 1:
		return cty.StringVal(optionStrings[r.IntN(len(optionStrings))])
	case 2:
		switch r.IntN(6) {
		case 0:
			return cty.NumberIntVal(r.Int64N(1<<40) - 1<<39)
		case 1:
			return cty.NumberFloatVal(r.Float64() * 1e6)
		case 2:
			f, _ := new(big.Float).SetPrec(512).SetString("123456789012345678901234567890.000000000000000000001")
			return cty.NumberVal(f)
		case 3:
			return cty.MustParseNumberVal("-0.5e-3")
		case 4:
			return cty.Zero
		default:
			return cty.NumberFloatVal(-1e300)
		}
	case 3:
		return cty.BoolVal(r.IntN(2) == 0)
	case 4:
		return cty.NullVal([]cty.Type{cty.String, cty.Number, cty.DynamicPseudoType, cty.List(cty.String)}[r.IntN(4)])
	case 5:
		var elems []cty.Value
		for range r.IntN(4) {
			elems = append(elems, cty.StringVal(optionStrings[r.IntN(len(optionStrings))]))
		}
		if len(elems) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		if r.IntN(2) == 0 {
			return cty.SetVal(elems)
		}
		return cty.ListVal(elems)
	case 6:
		var elems []cty.Value
		for range r.IntN(4) {
			elems = append(elems, randomValue(r, depth-1))
		}
		return cty.TupleVal(elems)
	case 7:
		m := map[string]cty.Value{}
		for range r.IntN(4) {
			m[optionStrings[r.IntN(len(optionStrings))]] = cty.NumberIntVal(r.Int64N(100))
		}
		if len(m) == 0 {
			return cty.MapValEmpty(cty.Number)
		}
		return cty.MapVal(m)
	default:
		m := map[string]cty.Value{}
		for range r.IntN(5) {
			m[optionStrings[r.IntN(len(optionStrings))]] = randomValue(r, depth-1)
		}
		return cty.ObjectVal(m)
	}
}

// TestToJSONCanonical compares the canonical JSON of options with the
// first versions' on random values of every type: a byte of difference
// would change signatures and reinstall parts after an upgrade.
func TestToJSONCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 1))
	for i := range 3000 {
		opts := map[string]cty.Value{}
		for range r.IntN(7) {
			opts[optionStrings[r.IntN(len(optionStrings))]] = randomValue(r, 3)
		}
		want, werr := toJSONMap(opts)
		got, err := toJSON(opts)
		if (err != nil) != (werr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("case %d %#v:\n got %s (%v)\nwant %s (%v)", i, opts, got, err, want, werr)
		}
	}
	for _, bad := range []cty.Value{cty.UnknownVal(cty.String), cty.StringVal("x").Mark("secret"), cty.PositiveInfinity} {
		_, werr := toJSONMap(map[string]cty.Value{"k": bad})
		_, err := toJSON(map[string]cty.Value{"k": bad})
		if err == nil || werr == nil || err.Error() != werr.Error() {
			t.Errorf("%#v: error %v, want %v", bad, err, werr)
		}
	}
}

// TestOptionParams checks that the parameters validated are those the
// options' canonical JSON decodes to, whether they come from the values
// directly or through the JSON.
func TestOptionParams(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 2))
	direct := 0
	for i := range 3000 {
		opts := map[string]cty.Value{}
		for range r.IntN(7) {
			opts[optionStrings[r.IntN(len(optionStrings))]] = randomValue(r, 3)
		}
		raw, err := toJSON(opts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := schema.DecodeJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := optionParams(opts); ok {
			direct++
		}
		got, _, err := decodeOptions(opts, raw)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d %#v:\n got %#v (%v)\nwant %#v", i, opts, got, err, want)
		}
	}
	if direct < 500 {
		t.Errorf("only %d of 3000 option sets converted directly", direct)
	}
	// Nested deeper than parameters may be: the JSON path's error.
	v := cty.StringVal("x")
	for range schema.MaxJSONDepth + 1 {
		v = cty.TupleVal([]cty.Value{v})
	}
	opts := map[string]cty.Value{"deep": v}
	raw, _ := toJSON(opts)
	_, werr := schema.DecodeJSON(bytes.NewReader(raw))
	_, _, err := decodeOptions(opts, raw)
	if err == nil || werr == nil || err.Error() != werr.Error() {
		t.Errorf("too deep: error %v, want %v", err, werr)
	}
}

// TestValidatedOptions compares the options a recipe gets once validated
// with the JSON of the validated parameters decoded from the options'
// JSON, as the first versions gave them, for schemas that default and
// for schemas that do not.
func TestValidatedOptions(t *testing.T) {
	e := &Engine{}
	mod := &modRef{Name: "m", Digest: "d"}
	schemas := map[string]json.RawMessage{
		"open":     json.RawMessage(`{"type": "object"}`),
		"defaults": json.RawMessage(`{"type": "object", "properties": {"mode": {"default": "0755"}, "o": {"type": "object", "properties": {"x": {"default": 1}}}}}`),
		"oneOf":    json.RawMessage(`{"type": "object", "oneOf": [{"required": ["a"]}, {"not": {"required": ["a"]}}]}`),
	}
	r := rand.New(rand.NewPCG(21, 3))
	for i := range 2000 {
		opts := map[string]cty.Value{}
		for range r.IntN(6) {
			opts[optionStrings[r.IntN(len(optionStrings))]] = randomValue(r, 3)
		}
		switch r.IntN(4) {
		case 0:
			opts["$schema"] = cty.StringVal("x")
		case 1:
			opts["o"] = cty.EmptyObjectVal
		}
		raw, err := toJSON(opts)
		if err != nil {
			t.Fatal(err)
		}
		for name, sch := range schemas {
			v, err := schema.CompileJSON(name, sch, schema.Options{})
			if err != nil {
				t.Fatal(err)
			}
			params, err := schema.DecodeJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Validate(params)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(res.Params)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.validate(mod, name, sch, opts, raw, nil, nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("case %d, schema %s, options %s:\n got %s (%v)\nwant %s", i, name, raw, got, err, want)
			}
		}
	}
}

// TestFlatStrings checks that outputs read without go-cty's JSON decoding
// are the values it gives, and that what it must read (or refuse) is left
// to it.
func TestFlatStrings(t *testing.T) {
	for _, c := range []struct {
		in   string
		flat bool
	}{
		{`{}`, true},
		{`{"path":"/srv/d0","location":"/srv/d0/t.conf"}`, true},
		{` { "a" : "x:y" , "b":null, "c\":d":"\"q\\\":" } `, true},
		{`{"u":"\u00e9\u2028\ud83c\udf89 e\u0301","<":"&"}`, true},
		{"{\"bad\":\"\xff\xfe\"}", true},
		{`{"a":"1","a":"2"}`, false},
		{`{"a":1}`, false},
		{`{"a":"x","n":{"b":"y"}}`, false},
		{`{"a":["x"]}`, false},
		{`{"a":true}`, false},
		{`["a"]`, false},
		{`{"a":"x"} trailing`, false},
		{`{"a":"x"`, false},
		{`null`, false},
		{``, false},
	} {
		// What was there before stays unless the outputs set it.
		got := map[string]cty.Value{"kept": cty.True, "a": cty.Zero}
		ok := flatStrings([]byte(c.in), got)
		if !ok && (len(got) != 2 || !got["kept"].RawEquals(cty.True) || !got["a"].RawEquals(cty.Zero)) {
			t.Errorf("%s: not flat, but the map changed: %#v", c.in, got)
		}
		if ok != c.flat {
			t.Errorf("%s: flat %v, want %v", c.in, ok, c.flat)
			continue
		}
		if !ok {
			continue
		}
		ty, err := ctyjson.ImpliedType([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		want, err := ctyjson.Unmarshal([]byte(c.in), ty)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !got["kept"].RawEquals(cty.True) {
			t.Errorf("%s: kept %#v", c.in, got["kept"])
		}
		delete(got, "kept")
		if _, set := want.Type().AttributeTypes()["a"]; !set {
			delete(got, "a")
		}
		if g := cty.ObjectVal(got); !g.RawEquals(want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.in, g, want)
		}
	}
}

// TestCallInput compares a recipe's input with the map the first versions
// marshalled.
func TestCallInput(t *testing.T) {
	for _, tc := range []struct {
		ctx  map[string]any
		opts json.RawMessage
		prev *PartRecord
	}{
		{map[string]any{"kind": "software", "software": map[string]any{"path": "/s/<x>&", "url": "https://x/?a=1&b=2"}, "node": map[string]any{"id": "n", "root": "/r"}},
			json.RawMessage(`{"inline":"\u003ca\u003e","output":"/s/t"}`), nil},
		{nil, nil, nil},
		{map[string]any{"kind": "instance", "n": 1.5, "l": []any{"a", nil, true}},
			json.RawMessage(`{"path":"/d"}`), &PartRecord{Options: json.RawMessage(`{"path":"/old"}`), Outputs: json.RawMessage(`{"path":"/old"}`), Installed: []string{"/d/a", "/d/\u2028"}}},
		{map[string]any{}, json.RawMessage(`{}`), &PartRecord{}},
	} {
		in := map[string]any{"recipe": "template", "part": "p\"1", "phase": "install", "options": tc.opts, "context": tc.ctx}
		if tc.prev != nil {
			in["previous"] = map[string]any{"options": tc.prev.Options, "outputs": rawOrEmpty(tc.prev.Outputs), "installed": tc.prev.Installed}
		}
		want, werr := json.Marshal(in)
		r := &run{t: &Target{Context: tc.ctx}}
		for range 2 { // the context's JSON is kept for the next part
			got, err := r.callInput("recipe_install", "p\"1", "template", tc.opts, tc.prev)
			if err != nil || werr != nil || !bytes.Equal(got, want) {
				t.Errorf("input\n got %s (%v)\nwant %s (%v)", got, err, want, werr)
			}
		}
	}
}
