package recipe

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// The reference the reader replaced: encoding/json with UseNumber, then a
// pass turning json.Number into int64 or float64.
func decodeStd(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case Options:
		if x == nil {
			return Options(nil)
		}
		o := make(Options, len(x))
		for k, e := range x {
			o[k] = normalize(e)
		}
		return o
	case map[string]any:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	}
	return v
}

func stdRecipeInput(b []byte) (recipeInput, error) {
	var in recipeInput
	if err := decodeStd(b, &in); err != nil {
		return in, err
	}
	in.Options = normalize(in.Options).(Options)
	if in.Previous != nil {
		in.Previous.Options = normalize(in.Previous.Options).(Options)
		in.Previous.Outputs = normalize(in.Previous.Outputs).(map[string]any)
	}
	return in, nil
}

func stdPromiseInput(b []byte) (promiseInput, error) {
	var in promiseInput
	if err := decodeStd(b, &in); err != nil {
		return in, err
	}
	in.Options = normalize(in.Options).(Options)
	return in, nil
}

var inputSeeds = []string{
	`{"recipe":"mkdirectory","part":"p0004","phase":"install","options":{"after":"bench-1-0","id":"4","path":"/srv/x/d0004"},"context":{"cache_dir":"/c","kind":"software","node":{"id":"vm","root":"/r"},"profile_dir":"/p","software":{"path":"/s","url":"/u.hcl"}}}`,
	`{"recipe":"publish","options":{"port":8080,"big":12345678901234567890,"f":1.5,"e":1e3,"neg":-0,"x":-12,"l":[1,"a",null,true,false,{"k":[]}],"o":{"n":2.0}},"context":{"kind":"instance","partition":{"id":"slappart0","path":"/srv/p","user":"u","ipv4":"10.0.0.1","ipv6":"fd00::1"}}}`,
	`{"recipe":"x","previous":{"options":{"a":1},"outputs":{"b":[2]},"installed":["/a",null,"/b"]},"previous":{"installed":[]}}`,
	`{"RECIPE":"folded","Options":{"a":"\u00e9\ud83d\ude00\ud800x\"\\\/\b\f\n\r\t"},"unknown":{"deep":[[[{}]]]}}`,
	`{"recipe":null,"options":null,"context":null,"previous":null}`,
	`{"options":{"a":1},"options":{"b":2}}`,
	`{"context":{"partition":{"id":"a"}},"context":{"partition":null}}`,
	` {"recipe":"ws"} ` + "\n",
	`{"recipe":"trailing"} x`,
	`{"recipe":5}`,
	`{"recipe":"a",}`,
	`{"options":{"s":"` + "\xff\xfe invalid utf-8 \u2028" + `"}}`,
	`{"options":{"n":1e400,"m":-1e400,"t":0.1e-2,"u":01}}`,
	`[]`,
	`null`,
	` null x`,
	`nul`,
	`{"options":[1]}`,
	`{"recipe":"\u0000"}`,
	`{"recipe":"tab	raw"}`,
	`{"promise":"tcp","name":"web","options":{"host":"::1","port":80},"context":{"kind":"instance"}}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"options":{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`,
}

// TestDecodeInput: the reader and the encoding/json path it replaced agree
// on every seed (see FuzzDecodeInput).
func TestDecodeInput(t *testing.T) {
	for _, s := range inputSeeds {
		checkDecode(t, []byte(s))
	}
}

// FuzzDecodeInput: on any input, the reader succeeds exactly when the input
// is one valid JSON text that encoding/json decodes into the input's
// shape, and then with the same values.
func FuzzDecodeInput(f *testing.F) {
	for _, s := range inputSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecode)
}

// testContexts is shared by the checks, so that the cache meets inputs
// whose context is the last one's and others whose is not.
var testContexts contextCache

func checkDecode(t *testing.T, b []byte) {
	for _, cache := range []*contextCache{nil, &testContexts, &testContexts} {
		checkDecodeWith(t, b, cache)
	}
}

func checkDecodeWith(t *testing.T, b []byte, cache *contextCache) {
	valid := json.Valid(b)
	got, err := decodeRecipeInput(b, cache)
	want, werr := stdRecipeInput(b)
	if !valid || werr != nil {
		if err == nil {
			t.Fatalf("%q: decoded %+v, encoding/json: valid=%v %v", b, got, valid, werr)
		}
	} else if err != nil {
		t.Fatalf("%q: %v, encoding/json decoded it", b, err)
	} else if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
	}
	pgot, err := decodePromiseInput(b, cache)
	pwant, werr := stdPromiseInput(b)
	if !valid || werr != nil {
		if err == nil {
			t.Fatalf("%q: decoded %+v as a promise input, encoding/json: valid=%v %v", b, pgot, valid, werr)
		}
	} else if err != nil {
		t.Fatalf("%q: %v as a promise input, encoding/json decoded it", b, err)
	} else if !reflect.DeepEqual(pgot, pwant) {
		t.Fatalf("%q as a promise input:\n got %#v\nwant %#v", b, pgot, pwant)
	}
}

// decodes to NaN, so a mismatch with one is a real difference.

// TestMarshalOutput: the writer writes what encoding/json wrote.
func TestMarshalOutput(t *testing.T) {
	type custom struct {
		A string `json:"a"`
		B int
	}
	outs := []RecipeOutput{
		{Outputs: map[string]any{}, Installed: []string{}, Messages: []string{}},
		{},
		{Outputs: map[string]any{
			"s": "a<b>&c\"\\\x01\x1f\u2028\u2029\xff é 😀", "i": int64(-42), "n": 7, "b": true, "nil": nil,
			"f": 1.5, "g": 1e21, "h": 1e-7, "z": 0.0, "l": []any{"x", int64(1), 2.5, nil, []string{"y"}},
			"m": map[string]any{"z": 1, "a": Options{"k": "v"}}, "ss": []string(nil), "la": []any(nil), "mm": map[string]any(nil),
			"c": custom{A: "<x>", B: 3}, "p": &custom{}, "u8": uint8(3), "f32": float32(0.1),
		}, Installed: []string{"/a", "/b c"}, Messages: []string{"m\n"}, Error: "e\t"},
	}
	for _, o := range outs {
		got, err := marshalRecipeOutput(o)
		want, werr := marshalStd(o)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("\n got %s %v\nwant %s %v", got, err, want, werr)
		}
	}
	if _, err := marshalRecipeOutput(RecipeOutput{Outputs: map[string]any{"nan": math.NaN()}}); err == nil {
		t.Error("NaN encoded")
	}
	for _, c := range []CheckOutput{{}, {OK: true, Message: "ok <&>"}, {Message: "\x00\xff"}} {
		got := marshalCheckOutput(c)
		want, _ := marshalStd(c)
		if !bytes.Equal(got, want) {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
}

// FuzzAppendString: strings are escaped exactly as encoding/json escapes
// them without HTML escaping.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a<b>&c", "\"\\/", "\x00\x01\b\f\n\r\t\x1f\x7f", "\xff\xfe", "é😀", "\u2028\u2029", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		want, err := marshalStd(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

type chmodHost struct{ req []byte }

func (h *chmodHost) Log(Level, string) {}
func (h *chmodHost) Call(function string, req []byte) ([]byte, error) {
	h.req = req
	return []byte(`{"error":"refused \"x\""}`), nil
}

// TestChmodRequest: the hand-written chmod request is the JSON the host
// reads, and the response's error comes back.
func TestChmodRequest(t *testing.T) {
	h := &chmodHost{}
	p := "/srv/a \"b\"\\c\u2028é\x01"
	err := Context{host: h}.Chmod(0o750, p)
	var req chmodRequest
	if jerr := json.Unmarshal(h.req, &req); jerr != nil || req.Path != p || req.Mode != 0o750 {
		t.Fatalf("request %s: %+v %v", h.req, req, jerr)
	}
	if err == nil || !strings.Contains(err.Error(), `refused "x"`) {
		t.Fatalf("error %v", err)
	}
}

// TestContextCacheCopies: a recipe that changes its context's partition
// does not change the next call's.
func TestContextCacheCopies(t *testing.T) {
	var cache contextCache
	in := []byte(`{"recipe":"r","context":{"kind":"instance","partition":{"id":"slappart0","path":"/p"}}}`)
	first, err := decodeRecipeInput(in, &cache)
	if err != nil {
		t.Fatal(err)
	}
	first.Context.Partition.Path = "/changed"
	second, err := decodeRecipeInput(in, &cache)
	if err != nil || second.Context.Partition.Path != "/p" || second.Context.Kind != "instance" {
		t.Fatalf("%+v %v", second.Context.Partition, err)
	}
	other, err := decodeRecipeInput([]byte(`{"context":{"kind":"software","software":{"path":"/s"}}}`), &cache)
	if err != nil || other.Context.Partition != nil || other.Context.Software.Path != "/s" {
		t.Fatalf("%+v %v", other.Context, err)
	}
}

// TestCheckSchema: a schema is accepted exactly when encoding/json decodes
// it into an object.
func TestCheckSchema(t *testing.T) {
	for _, s := range []string{`{"type":"object"}`, ` {"properties":{"a":{"enum":[1,2.5,"x",null,true]}}} `, `[]`, `"x"`, `{"a":}`, `{} x`, `{"a":1,}`, `{`, `null`, "{\"\x01\":1}"} {
		var m map[string]any
		want := json.Unmarshal([]byte(s), &m) == nil && m != nil
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			checkSchema("recipe", "r", s)
			return false
		}()
		if panicked == want {
			t.Errorf("%q: accepted %v, encoding/json %v", s, !panicked, want)
		}
	}
}

// TestAppendDispatch: an output written over the previous one, as the
// WebAssembly exports write it, is the output Dispatch makes.
func TestAppendDispatch(t *testing.T) {
	g := NewRegistry("m", "1")
	g.Register("r", Recipe{Install: func(ctx Context, opts Options) (Result, error) {
		return Result{Outputs: map[string]any{"a": opts["a"], "b": int64(len(ctx.Part))}, Messages: []string{"m"}}, nil
	}})
	g.RegisterPromise("p", Promise{Check: func(ctx Context, opts Options) (bool, string) { return true, ctx.Part }})
	var buf []byte
	for _, c := range []struct{ entry, input string }{
		{EntryInstall, `{"recipe":"r","part":"a-long-part-name","options":{"a":"` + strings.Repeat("x", 300) + `"}}`},
		{EntryInstall, `{"recipe":"r","part":"p","options":{"a":"short"}}`},
		{EntryCheck, `{"promise":"p","name":"n"}`},
		{EntryUpdate, `{"recipe":"nope"}`},
		{EntryInstall, `{"recipe":"r","part":"p","options":{"a":"` + strings.Repeat("y", 1000) + `"}}`},
	} {
		want := g.Dispatch(c.entry, []byte(c.input), nil)
		buf = g.appendDispatch(buf[:0], c.entry, []byte(c.input), nil)
		if !bytes.Equal(buf, want) {
			t.Fatalf("%s: over the previous output\n%s\nwant\n%s", c.input, buf, want)
		}
	}
}
