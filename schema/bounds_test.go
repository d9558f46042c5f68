package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func nested(key string, n int) string {
	return strings.Repeat(`{"`+key+`":`, n) + `{}` + strings.Repeat(`}`, n)
}

// TestParameterBounds is issue 18 #6 for parameters: deeper or larger
// documents are refused, saying where, before anything walks them.
func TestParameterBounds(t *testing.T) {
	_, err := DecodeJSON(strings.NewReader(nested("a", 100_000)))
	if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "more than 64 levels of objects and arrays at /a/a/a/a/…(56 more)…/a/a/a/a (line 1, column 321)") {
		t.Errorf("deep parameters: %v", err)
	}
	// The pointer follows keys (escaped) and array indexes, across lines.
	doc := "{\"x\": [1, {\"y\": \"[[[[\"},\n {\"z/~\": " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "}]}"
	_, err = DecodeJSON(strings.NewReader(doc))
	if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "at /x/2/z~1~0/0/…(56 more)…/0/0/0/0 (line 2, column 71)") {
		t.Errorf("pointer: %v", err)
	}
	if _, err := DecodeJSON(strings.NewReader(nested("a", MaxJSONDepth-1))); err != nil {
		t.Errorf("within the bound: %v", err)
	}
	if _, err := DecodeJSON(strings.NewReader(`{"s":"` + strings.Repeat("{", 1000) + `"}`)); err != nil {
		t.Errorf("brackets inside a string count: %v", err)
	}
	if _, err := ParseKeyValues([]string{"x:=" + strings.Repeat("[", 1000) + strings.Repeat("]", 1000)}); !errors.Is(err, ErrTooDeep) {
		t.Errorf("--param x:=…: %v", err)
	}
	big := `{"s":"` + strings.Repeat("x", MaxParamsSize) + `"}`
	if _, err := DecodeJSON(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("large parameters: %v", err)
	}
	xmlDeep := `<instance><parameter id="_">` + nested("a", 1000) + `</parameter></instance>`
	if _, _, err := ParseInstanceXML(strings.NewReader(xmlDeep)); !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), `parameter "_" (json-in-xml) is nested too deeply`) {
		t.Errorf("deep json-in-xml: %v", err)
	}
	xmlBig := `<instance><parameter id="p">` + strings.Repeat("x", MaxParamsSize) + `</parameter></instance>`
	if _, _, err := ParseInstanceXML(strings.NewReader(xmlBig)); err == nil || !strings.Contains(err.Error(), "instance XML larger than 8 MiB") {
		t.Errorf("large XML: %v", err)
	}
	// A string parameter holding deep JSON is not coerced into a value.
	v, err := CompileJSON("p.json", []byte(`{"type":"object","properties":{"o":{"type":"object"}}}`), Options{})
	must(t, err)
	_, err = v.ValidateStrings(map[string]any{"o": nested("a", 1000)})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "/o: must be an object") {
		t.Errorf("deep JSON text in an XML parameter was coerced: %.300v", err)
	}
}

// TestSchemaBounds: a schema nested 9,000 levels (400 KB) kept the
// compiler busy for more than 10 minutes; deep or large schemas and
// descriptors are now refused at once.
func TestSchemaBounds(t *testing.T) {
	deep := strings.Repeat(`{"type":"object","additionalProperties":`, 9000) + `{}` + strings.Repeat(`}`, 9000)
	_, err := CompileJSON("deep.json", []byte(deep), Options{})
	if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "deep.json is nested too deeply: more than 64 levels of objects and arrays at /additionalProperties/") {
		t.Errorf("deep schema: %v", err)
	}
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "deep.json"), []byte(deep), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "top.json"), []byte(`{"$ref":"deep.json"}`), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "big.json"), []byte(`{"description":"`+strings.Repeat("x", MaxSchemaSize)+`"}`), 0o644))
	if _, err := Compile(filepath.Join(dir, "top.json"), Options{}); !errors.Is(err, ErrTooDeep) {
		t.Errorf("$ref to a deep schema: %v", err)
	}
	if _, err := Compile(filepath.Join(dir, "big.json"), Options{}); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("large schema: %v", err)
	}
	ok := strings.Repeat(`{"type":"object","additionalProperties":`, 30) + `{}` + strings.Repeat(`}`, 30)
	if _, err := CompileJSON("ok.json", []byte(ok), Options{}); err != nil {
		t.Errorf("a schema within the bound: %v", err)
	}
	if _, err := ParseDescriptor([]byte(`{"name":"x","software-type":{"default":`+nested("a", 100)+`}}`), dir); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep descriptor: %v", err)
	}
	if _, err := LoadDescriptor("/dev/zero"); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("descriptor /dev/zero: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzCheckDepth: the scan never lets through valid JSON deeper than the
// bound (it agrees with encoding/json on where strings are).
func FuzzCheckDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[[]]]`, `{"a":"[[[","b":[{"c\"":[]}]}`, `"\\"`, nested("a", 70), `{"\u005b":[1,[2,[3]]]}`} {
		f.Add([]byte(s))
	}
	var depth func(v any) int
	depth = func(v any) int {
		d := 0
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				d = max(d, depth(e))
			}
			return d + 1
		case []any:
			for _, e := range x {
				d = max(d, depth(e))
			}
			return d + 1
		}
		return 0
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkDepth(data)
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		if d := depth(v); err == nil && d > MaxJSONDepth {
			t.Fatalf("depth %d accepted", d)
		} else if err != nil && d <= MaxJSONDepth {
			t.Fatalf("depth %d refused: %v", d, err)
		}
	})
}
