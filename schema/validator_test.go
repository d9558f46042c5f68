package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// writeTree writes files (relative path -> content) under a temporary
// directory and returns it.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	m, err := DecodeJSON(strings.NewReader(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func violations(t testing.TB, err error) []Violation {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T: %v", err, err)
	}
	return ve.Violations
}

func messages(t testing.TB, err error) []string {
	t.Helper()
	var out []string
	for _, v := range violations(t, err) {
		out = append(out, v.Message)
	}
	return out
}

// TestDrafts checks, for every supported draft, a keyword whose meaning is
// specific to that draft, so that a draft silently handled as another one
// fails.
func TestDrafts(t *testing.T) {
	cases := []struct {
		draft, schema string
		valid         []string
		invalid       map[string]string // params -> expected first message
	}{{
		draft: "draft-04",
		schema: `{"$schema": "http://json-schema.org/draft-04/schema#",
			"type": "object",
			"definitions": {"port": {"type": "integer", "minimum": 1, "exclusiveMinimum": true, "default": 8080}},
			"properties": {"port": {"$ref": "#/definitions/port"}}}`,
		valid:   []string{`{"port": 2}`, `{}`},
		invalid: map[string]string{`{"port": 1}`: "/port: must be > 1 but is 1"},
	}, {
		draft: "draft-06",
		schema: `{"$schema": "http://json-schema.org/draft-06/schema#",
			"type": "object",
			"properties": {"mode": {"const": "fast"}, "list": {"type": "array", "contains": {"type": "integer"}}}}`,
		valid:   []string{`{"mode": "fast", "list": ["a", 1]}`},
		invalid: map[string]string{`{"mode": "slow"}`: `/mode: must be "fast" but is "slow"`},
	}, {
		draft: "draft-07",
		schema: `{"$schema": "http://json-schema.org/draft-07/schema#",
			"type": "object",
			"properties": {"tls": {"type": "boolean"}, "cert": {"type": "string"}},
			"if": {"properties": {"tls": {"const": true}}, "required": ["tls"]},
			"then": {"required": ["cert"]}}`,
		valid:   []string{`{"tls": false}`, `{"tls": true, "cert": "x"}`},
		invalid: map[string]string{`{"tls": true}`: "/cert: is required"},
	}, {
		draft: "2019-09",
		schema: `{"$schema": "https://json-schema.org/draft/2019-09/schema",
			"type": "object",
			"$defs": {"name": {"type": "string", "minLength": 2}},
			"properties": {"name": {"$ref": "#/$defs/name"}, "user": {"type": "string"}},
			"dependentRequired": {"user": ["password"]}}`,
		valid:   []string{`{"name": "ab"}`, `{"user": "u", "password": "p"}`},
		invalid: map[string]string{`{"user": "u"}`: `/password: is required when "user" is set`, `{"name": "a"}`: "/name: must be at least 2 characters long but has 1"},
	}, {
		draft: "2020-12",
		schema: `{"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}},
			"unevaluatedProperties": false}`,
		valid:   []string{`{"pair": ["a", 1]}`},
		invalid: map[string]string{`{"pair": ["a", "b"]}`: `/pair/1: must be an integer but is "b"`, `{"pair": ["a", 1, 2]}`: "/pair/2: is an extra item, which is not allowed"},
	}, {
		draft:   "none (2020-12 assumed)",
		schema:  `{"type": "object", "properties": {"n": {"type": "number", "maximum": 10}}}`,
		valid:   []string{`{"n": 10}`},
		invalid: map[string]string{`{"n": 10.5}`: "/n: must be <= 10 but is 10.5"},
	}}
	for _, c := range cases {
		t.Run(c.draft, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"s.json": c.schema})
			v, err := Compile(filepath.Join(dir, "s.json"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.valid {
				if _, err := v.Validate(decode(t, p)); err != nil {
					t.Errorf("%s: unexpected error: %v", p, err)
				}
			}
			for p, want := range c.invalid {
				_, err := v.Validate(decode(t, p))
				if err == nil {
					t.Errorf("%s: accepted, want %q", p, want)
					continue
				}
				if got := messages(t, err); got[0] != want {
					t.Errorf("%s: got %q, want %q", p, got, want)
				}
			}
		})
	}
}

func TestDraft4DefaultApplied(t *testing.T) {
	dir := writeTree(t, map[string]string{"s.json": `{"$schema": "http://json-schema.org/draft-04/schema#",
		"definitions": {"port": {"type": "integer", "default": 8080}},
		"properties": {"port": {"$ref": "#/definitions/port"}}}`})
	v, err := Compile(filepath.Join(dir, "s.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Params["port"]) != "8080" || !reflect.DeepEqual(res.Defaults, []string{"/port"}) {
		t.Errorf("got %v defaults %v", res.Params, res.Defaults)
	}
}

func TestMessageWithPointer(t *testing.T) {
	v, err := CompileJSON("nbd.json", []byte(`{"type": "object", "properties": {"nbd-port": {"type": "integer", "minimum": 1, "maximum": 65535}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(map[string]any{"nbd-port": json.Number("0")})
	vs := violations(t, err)
	if len(vs) != 1 {
		t.Fatalf("got %d violations: %v", len(vs), err)
	}
	want := Violation{Pointer: "/nbd-port", Keyword: "minimum", SchemaLocation: "nbd.json#/properties/nbd-port/minimum", Message: "/nbd-port: must be >= 1 but is 0"}
	if vs[0] != want {
		t.Errorf("got %+v\nwant %+v", vs[0], want)
	}
	if err.Error() != "/nbd-port: must be >= 1 but is 0" {
		t.Errorf("Error() = %q", err.Error())
	}
	// float64 values, as decoded without UseNumber, read the same.
	_, err = v.Validate(map[string]any{"nbd-port": float64(70000)})
	if got := err.Error(); got != "/nbd-port: must be <= 65535 but is 70000" {
		t.Errorf("got %q", got)
	}
}

// TestAllViolationsAtOnce checks that every problem is reported, each with
// its pointer, sorted by pointer.
func TestAllViolationsAtOnce(t *testing.T) {
	v, err := CompileJSON("all.json", []byte(`{
		"type": "object",
		"required": ["name", "size"],
		"additionalProperties": false,
		"properties": {
			"name": {"type": "string", "pattern": "^[a-z]+$"},
			"size": {"type": "integer", "multipleOf": 512},
			"disk-type": {"enum": ["virtio", "ide"]},
			"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": true}
		}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(decode(t, `{"name": "Bad Name", "disk-typ": "scsi", "tags": ["a", 1, "a"]}`))
	got := messages(t, err)
	want := []string{
		`/disk-typ: is not a parameter of this schema; did you mean "disk-type"?`,
		`/name: must match the pattern "^[a-z]+$" but is "Bad Name"`,
		"/size: is required",
		"/tags: must have at most 2 items but has 3",
		"/tags: must not repeat items: items at index 0 and 2 are equal",
		`/tags/1: must be a string but is 1`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, vi := range violations(t, err) {
		if vi.Keyword == "" || vi.SchemaLocation == "" || !strings.HasPrefix(vi.SchemaLocation, "all.json#") {
			t.Errorf("incomplete violation %+v", vi)
		}
	}
}

// TestUnevaluatedNoise reproduces the report of the reference notes: with
// allOf + unevaluatedProperties, a failing branch makes the library report
// every property as unevaluated; only the real causes must remain.
func TestUnevaluatedNoise(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"kvm/defs.json": `{"$schema": "https://json-schema.org/draft/2020-12/schema",
			"$defs": {"instance-parameters": {"type": "object", "properties": {
				"ram-size": {"type": "integer", "minimum": 1024, "multipleOf": 512, "default": 4096},
				"cpu-count": {"type": "integer", "default": 1},
				"disk-type": {"enum": ["virtio", "ide"]}}}}}`,
		"kvm/input.json": `{"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"allOf": [{"$ref": "./defs.json#/$defs/instance-parameters"}],
			"unevaluatedProperties": false}`,
	})
	v, err := Compile(filepath.Join(dir, "kvm/input.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(decode(t, `{"ram-size": 1000, "disk-type": "scsi", "cpu-count": 2, "bogus": 1}`))
	got := messages(t, err)
	want := []string{
		"/bogus: is not a parameter of this schema",
		`/disk-type: must be one of "virtio", "ide" but is "scsi"`,
		"/ram-size: must be >= 1024 but is 1000",
		"/ram-size: must be a multiple of 512 but is 1000",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The violation inside the referenced file points into that file.
	for _, vi := range violations(t, err) {
		if vi.Keyword == "minimum" && vi.SchemaLocation != "defs.json#/$defs/instance-parameters/properties/ram-size/minimum" {
			t.Errorf("schema location %q", vi.SchemaLocation)
		}
	}
	// A lone unknown property is still reported.
	_, err = v.Validate(decode(t, `{"bogus": 1}`))
	if got := messages(t, err); !reflect.DeepEqual(got, []string{"/bogus: is not a parameter of this schema"}) {
		t.Errorf("got %q", got)
	}
}

func TestOneOfReportsIntendedBranch(t *testing.T) {
	v, err := CompileJSON("oneof.json", []byte(`{
		"type": "object",
		"properties": {"app": {"oneOf": [
			{"type": "object", "required": ["type", "url"], "properties": {"type": {"const": "web"}, "url": {"type": "string", "format": "uri"}}},
			{"type": "object", "required": ["type", "path"], "properties": {"type": {"const": "file"}, "path": {"type": "string"}}}
		]},
		"size": {"oneOf": [{"type": "integer"}, {"enum": ["auto"]}]}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(decode(t, `{"app": {"type": "file", "path": 3}}`))
	if got := messages(t, err); !reflect.DeepEqual(got, []string{"/app/path: must be a string but is 3"}) {
		t.Errorf("got %q", got)
	}
	_, err = v.Validate(decode(t, `{"size": "big"}`))
	got := messages(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "/size: matches none of the 2 allowed alternatives: must be an integer but is \"big\"; or must be one of \"auto\"") {
		t.Errorf("got %q", got)
	}
}

func TestCrossDirectoryRef(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"software/common/defs.json": `{"$schema": "http://json-schema.org/draft-07/schema#",
			"definitions": {"port": {"type": "integer", "minimum": 1, "default": 10025},
			"host": {"$ref": "../common/nested/host.json"}}}`,
		"software/common/nested/host.json": `{"type": "string", "minLength": 1}`,
		"software/app/input.json": `{"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"properties": {
				"port": {"$ref": "../common/defs.json#/definitions/port"},
				"host": {"$ref": "../common/defs.json#/definitions/host"}}}`,
		"software/app/software.cfg.json": `{"name": "App", "serialisation": "xml",
			"software-type": {"default": {"title": "Default", "request": "input.json", "response": "", "index": 0}}}`,
	})
	d, err := LoadDescriptor(filepath.Join(dir, "software/app/software.cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Validator("", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.ValidateStrings(map[string]any{"host": ""})
	if got := messages(t, err); !reflect.DeepEqual(got, []string{"/host: must be at least 1 characters long but has 0"}) {
		t.Errorf("got %q", got)
	}
	if !reflect.DeepEqual(res.Defaults, []string{"/port"}) {
		t.Errorf("defaults %v", res.Defaults)
	}
	_, err = v.ValidateStrings(map[string]any{"host": "h", "port": "0"})
	if got := messages(t, err); !reflect.DeepEqual(got, []string{"/port: must be >= 1 but is 0 (converted from a string)"}) {
		t.Errorf("got %q", got)
	}
	// The corpus has a descriptor whose request schema is in a sibling
	// software directory.
	cd, err := LoadDescriptor(filepath.Join(corpusDir(t), "software/rapidspace-vps/software.cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	cv, err := cd.Validator("vps-nvme0n1", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(cv.Location(), "/kvm/boot-image-input-schema.json") {
		t.Errorf("location %s", cv.Location())
	}
}

func TestMissingRefFile(t *testing.T) {
	dir := writeTree(t, map[string]string{"s.json": `{"properties": {"a": {"$ref": "../other/missing.json"}}}`})
	_, err := Compile(filepath.Join(dir, "s.json"), Options{})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("got %v", err)
	}
	_, err = Compile(filepath.Join(dir, "nope.json"), Options{})
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestRemoteRefs(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		if r.URL.Path != "/port.json" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"type": "integer", "maximum": 100}`)
	}))
	defer srv.Close()
	schema := []byte(`{"properties": {"port": {"$ref": "` + srv.URL + `/port.json"}}}`)

	_, err := CompileJSON("remote.json", schema, Options{})
	if !errors.Is(err, ErrRemoteRef) {
		t.Fatalf("want ErrRemoteRef, got %v", err)
	}
	if hits != 0 {
		t.Fatalf("remote schema fetched %d times without permission", hits)
	}
	if _, err := Compile(srv.URL+"/port.json", Options{}); !errors.Is(err, ErrRemoteRef) {
		t.Errorf("want ErrRemoteRef for a remote root, got %v", err)
	}

	v, err := CompileJSON("remote.json", schema, Options{AllowRemoteRefs: true})
	if err != nil {
		t.Fatal(err)
	}
	if hits != 1 {
		t.Errorf("hits = %d", hits)
	}
	_, err = v.Validate(map[string]any{"port": json.Number("200")})
	if got := messages(t, err); !reflect.DeepEqual(got, []string{"/port: must be <= 100 but is 200"}) {
		t.Errorf("got %q", got)
	}
	_, err = CompileJSON("remote.json", []byte(`{"$ref": "`+srv.URL+`/missing.json"}`), Options{AllowRemoteRefs: true})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("want HTTP 404 error, got %v", err)
	}
}

func TestFormatIsAnnotationByDefault(t *testing.T) {
	schema := []byte(`{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"url": {"type": "string", "format": "uri"}}}`)
	v, err := CompileJSON("f.json", schema, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(map[string]any{"url": "not a uri"}); err != nil {
		t.Errorf("format asserted by default: %v", err)
	}
	v, err = CompileJSON("f.json", schema, Options{AssertFormat: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(map[string]any{"url": "not a uri"})
	if got := messages(t, err); !reflect.DeepEqual(got, []string{`/url: must be a valid uri but is "not a uri"`}) {
		t.Errorf("got %q", got)
	}
}

func TestInvalidSchema(t *testing.T) {
	_, err := CompileJSON("bad.json", []byte(`{"type": "integr"}`), Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.json is not a valid JSON Schema") {
		t.Errorf("got %v", err)
	}
	_, err = CompileJSON("bad.json", []byte(`{"type": `), Options{})
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("got %v", err)
	}
}

// TestRepairNonSchema covers the simpleran mistake of the corpus: a string
// where a schema is expected is dropped with a warning (as SlapOS ignores
// it), or refused in strict mode.
func TestRepairNonSchema(t *testing.T) {
	schema := []byte(`{"type": "object", "properties": {"link": {"type": "object", "properties": {"$ref": "#/$defs/x", "a": {"type": "integer"}}}},
		"enum-is-data": {"properties": "kept"}}`)
	v, err := CompileJSON("r.json", schema, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w := v.Warnings(); len(w) != 1 || !strings.Contains(w[0], "r.json#/properties/link/properties/$ref: not a schema") {
		t.Errorf("warnings %q", w)
	}
	_, err = v.Validate(decode(t, `{"link": {"a": "x"}}`))
	if got := messages(t, err); !reflect.DeepEqual(got, []string{`/link/a: must be an integer but is "x"`}) {
		t.Errorf("got %q", got)
	}
	if _, err := CompileJSON("r.json", schema, Options{Strict: true}); err == nil {
		t.Error("strict mode accepted a non-conforming schema")
	}
}

func TestCompileJSONRelativeRef(t *testing.T) {
	dir := writeTree(t, map[string]string{"recipe/common.json": `{"$defs": {"mode": {"enum": ["0755", "0700"], "default": "0755"}}}`})
	v, err := CompileJSON(filepath.Join(dir, "recipe", "options.json"), []byte(`{"properties": {"mode": {"$ref": "common.json#/$defs/mode"}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(nil)
	if err != nil || res.Params["mode"] != "0755" {
		t.Errorf("got %v, %v", res, err)
	}
}

func TestDollarSchemaDropped(t *testing.T) {
	v, err := CompileJSON("s.json", []byte(`{"type": "object", "additionalProperties": false}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(map[string]any{"$schema": "instance-input-schema.json"})
	if err != nil || len(res.Params) != 0 {
		t.Errorf("got %v, %v", res, err)
	}
}

func TestBadGoValues(t *testing.T) {
	v, err := CompileJSON("s.json", []byte(`{}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(map[string]any{"a": []any{struct{}{}}}); err == nil || !strings.Contains(err.Error(), "/a/0") {
		t.Errorf("got %v", err)
	}
	// Go ints and string slices are accepted, as callers build them.
	if _, err := v.Validate(map[string]any{"a": 1, "b": []string{"x"}, "c": map[string]string{"k": "v"}}); err != nil {
		t.Error(err)
	}
}

func TestConcurrentValidate(t *testing.T) {
	v, err := CompileJSON("c.json", []byte(`{"properties": {"n": {"type": "integer", "maximum": 5, "default": 1}, "o": {"type": "object", "properties": {"x": {"default": "y"}}, "default": {}}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				n := json.Number(fmt.Sprint((i + j) % 8))
				res, err := v.Validate(map[string]any{"n": n})
				if (i+j)%8 > 5 {
					if err == nil {
						errs <- fmt.Errorf("n=%s accepted", n)
					}
					continue
				}
				if err != nil {
					errs <- err
					continue
				}
				// Each result owns its defaults: mutate it.
				res.Params["o"].(map[string]any)["x"] = n
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	res, err := v.Validate(nil)
	if err != nil || res.Params["o"].(map[string]any)["x"] != "y" {
		t.Errorf("defaults shared between results: %v %v", res.Params, err)
	}
}

// TestHostileNumbers: number literals the library cannot afford (it makes
// exact rationals of them) are refused with an error, never a panic or a
// hang.
func TestHostileNumbers(t *testing.T) {
	v := fuzzValidator(t)
	for _, n := range []string{"1e99999999", "1e-99999999", "abc", "1" + strings.Repeat("0", 500), "01"} {
		if _, err := v.Validate(map[string]any{"port": json.Number(n)}); err == nil || errors.As(err, new(*ValidationError)) {
			t.Errorf("%.20s: want a plain error, got %v", n, err)
		}
	}
	_, err := v.ValidateStrings(map[string]any{"port": "1e-99999999"})
	if got := messages(t, err); !reflect.DeepEqual(got, []string{`/port: must be an integer but is "1e-99999999"`}) {
		t.Errorf("got %q", got)
	}
	// Exponents within range stay exact: 1.5e2 is the integer 150.
	if _, err := v.Validate(map[string]any{"port": json.Number("1.5e2")}); err != nil {
		t.Errorf("1.5e2: %v", err)
	}
}
