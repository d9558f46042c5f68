package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// ErrRemoteRef is wrapped by Compile when a schema, or a $ref inside it,
// points to an http(s) URL and Options.AllowRemoteRefs is off: remote
// schemas are never fetched silently.
var ErrRemoteRef = errors.New("remote schema reference refused (allow remote references explicitly: Options.AllowRemoteRefs, --allow-remote-refs)")

// Options tune compilation.
type Options struct {
	// AllowRemoteRefs permits fetching http(s) schemas and $ref targets.
	AllowRemoteRefs bool
	// RemoteTimeout bounds each remote fetch; zero means 30 seconds.
	RemoteTimeout time.Duration
	// AssertFormat makes "format" an assertion in every draft. By default
	// it is an annotation, as in SlapOS's validator (python-jsonschema
	// without a format checker) and in drafts 2019-09 and later.
	AssertFormat bool
	// Strict refuses schemas that do not conform to their draft's
	// meta-schema. By default, values that cannot be schemas where a
	// schema is expected (real SlapOS schemas have some, and SlapOS's
	// validator ignores them) are dropped and reported by
	// Validator.Warnings.
	Strict bool
}

// Validator is a compiled schema. It is safe for concurrent use.
type Validator struct {
	root     *jsonschema.Schema // nil: accepts any parameters (no schema)
	location string             // URL of the root schema
	baseDir  string             // directory of a file schema, for short locations
	index    map[string]*jsonschema.Schema
	warnings []string
	// badDefault marks property schemas whose default is invalid.
	badDefault map[*jsonschema.Schema]bool
	// defaults: some property schema reachable from the root has a
	// default. Without one, applying defaults walks the document (and
	// validates it against every oneOf and anyOf branch on its way) to
	// change nothing: a third of a recipe's option validation.
	defaults bool
}

// Warnings lists what was dropped from non-conforming schemas while
// compiling (see Options.Strict).
func (v *Validator) Warnings() []string { return v.warnings }

// Result is the outcome of a validation.
type Result struct {
	// Params are the validated parameters with defaults applied and
	// coercions done; the caller's map is never modified.
	Params map[string]any
	// Defaults lists the JSON pointers of values taken from the schema's
	// defaults, sorted.
	Defaults []string
	// Coerced lists the JSON pointers of string values converted to the
	// schema's type (ValidateStrings only), sorted.
	Coerced []string
	// InvalidDefaults lists the pointers of defaults the schema declares
	// but that do not validate (a bug of the schema); they were left out.
	InvalidDefaults []string
}

// Location returns the URL of the compiled schema, or "" for a validator
// that accepts everything because the software type declares no schema.
func (v *Validator) Location() string { return v.location }

// Schema exposes the compiled schema (nil when there is none), for callers
// that need annotations such as titles and defaults.
func (v *Validator) Schema() *jsonschema.Schema { return v.root }

func acceptAll() *Validator { return &Validator{} }

// Compile compiles the JSON Schema at a path or URL. Relative $ref are
// resolved against it, including references into sibling directories.
func Compile(schemaPathOrURL string, opts Options) (*Validator, error) {
	loc, baseDir, err := toLocation(schemaPathOrURL)
	if err != nil {
		return nil, err
	}
	return compile(loc, baseDir, nil, opts)
}

// CompileJSON compiles a schema held in memory. name identifies it in
// messages and is the base of its relative $ref: a path (relative to the
// working directory) or a URL.
func CompileJSON(name string, schemaJSON []byte, opts Options) (*Validator, error) {
	loc, baseDir, err := toLocation(name)
	if err != nil {
		return nil, err
	}
	return compile(loc, baseDir, schemaJSON, opts)
}

func toLocation(p string) (loc, baseDir string, err error) {
	if p == "" {
		return "", "", errors.New("schema: empty schema path")
	}
	if isURL(p) {
		u, err := url.Parse(p)
		if err != nil {
			return "", "", fmt.Errorf("schema: bad schema URL %q: %w", p, err)
		}
		if u.Scheme == "file" {
			return u.String(), filepath.Dir(filepath.FromSlash(u.Path)), nil
		}
		return u.String(), "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", fmt.Errorf("schema: %s: %w", p, err)
	}
	return fileURL(abs), filepath.Dir(abs), nil
}

func fileURL(abs string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

func compile(loc, baseDir string, doc []byte, opts Options) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.ExtractAnnotations = true
	c.AssertFormat = opts.AssertFormat
	ld := &loader{opts: opts}
	c.LoadURL = ld.load
	if !opts.AssertFormat {
		// Drafts before 2019-09 assert "format" unconditionally in the
		// library; SlapOS does not, so every known format accepts.
		for name := range jsonschema.Formats {
			c.Formats[name] = func(any) bool { return true }
		}
	}
	if doc != nil {
		if err := checkSchemaBounds(loc, doc); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
		doc, err := ld.repair(loc, doc)
		if err != nil {
			return nil, fmt.Errorf("schema: %s is not valid JSON: %w", displayLoc(loc), err)
		}
		if err := c.AddResource(loc, bytes.NewReader(doc)); err != nil {
			return nil, fmt.Errorf("schema: %s is not valid JSON: %w", displayLoc(loc), err)
		}
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, compileError(loc, err)
	}
	v := &Validator{root: sch, location: loc, baseDir: baseDir, index: map[string]*jsonschema.Schema{}, warnings: ld.warnings}
	walkSchemas(sch, func(s *jsonschema.Schema) { v.index[s.Location] = s })
	v.findBadDefaults()
	return v, nil
}

// compileError keeps the cause matchable (ErrRemoteRef, fs.ErrNotExist)
// while printing the schema that failed only once.
func compileError(loc string, err error) error {
	var se *jsonschema.SchemaError
	if errors.As(err, &se) && se.Err != nil {
		cause := se.Err
		var ve *jsonschema.ValidationError
		if errors.As(cause, &ve) {
			// The schema does not conform to its draft's meta-schema.
			return fmt.Errorf("schema: %s is not a valid JSON Schema: %s", displayLoc(loc), metaMessage(ve))
		}
		return fmt.Errorf("schema: compile %s: %w", displayLoc(loc), cause)
	}
	return fmt.Errorf("schema: compile %s: %w", displayLoc(loc), err)
}

func metaMessage(ve *jsonschema.ValidationError) string {
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	p := leaf.InstanceLocation
	if p == "" {
		p = "/"
	}
	return fmt.Sprintf("at %s: %s", p, leaf.Message)
}

func displayLoc(loc string) string {
	if strings.HasPrefix(loc, "file://") {
		if u, err := url.Parse(loc); err == nil {
			s := filepath.FromSlash(u.Path)
			if u.Fragment != "" {
				s += "#" + u.Fragment
			}
			return s
		}
	}
	return loc
}

// loader is the compiler's only way to reach a document: local files
// always, http(s) only when allowed. Each document goes through repair.
type loader struct {
	opts     Options
	warnings []string
}

func (l *loader) load(s string) (io.ReadCloser, error) {
	rc, err := l.opts.open(s)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxSchemaSize+1))
	if err != nil {
		return nil, fmt.Errorf("read schema %s: %w", displayLoc(s), err)
	}
	if err := checkSchemaBounds(s, data); err != nil {
		return nil, err
	}
	data, err = l.repair(s, data)
	if err != nil {
		return nil, fmt.Errorf("schema %s is not valid JSON: %w", displayLoc(s), err)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (o Options) open(s string) (io.ReadCloser, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad schema URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "file":
		f, err := os.Open(filepath.FromSlash(u.Path))
		if err != nil {
			return nil, fmt.Errorf("referenced schema file: %w", err)
		}
		return f, nil
	case "http", "https":
		if !o.AllowRemoteRefs {
			return nil, fmt.Errorf("%s: %w", s, ErrRemoteRef)
		}
		return o.fetch(s)
	default:
		return nil, fmt.Errorf("schema reference %s: scheme %q is not supported (use a relative path, file:// or, when allowed, http(s)://)", s, u.Scheme)
	}
}

func (o Options) fetch(s string) (io.ReadCloser, error) {
	timeout := o.RemoteTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(s)
	if err != nil {
		return nil, fmt.Errorf("fetch remote schema: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch remote schema %s: HTTP %s", s, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSchemaSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch remote schema %s: %w", s, err)
	}
	if len(data) > MaxSchemaSize {
		return nil, fmt.Errorf("fetch remote schema %s: larger than %d MiB", s, MaxSchemaSize>>20)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// walkSchemas calls f once for every schema reachable from s.
func walkSchemas(s *jsonschema.Schema, f func(*jsonschema.Schema)) {
	seen := map[*jsonschema.Schema]bool{}
	var walk func(*jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		f(s)
		for _, c := range children(s) {
			walk(c)
		}
	}
	walk(s)
}

// children lists the direct subschemas of s.
func children(s *jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	add := func(c ...*jsonschema.Schema) {
		for _, x := range c {
			if x != nil {
				out = append(out, x)
			}
		}
	}
	add(s.Ref, s.RecursiveRef, s.DynamicRef, s.Not, s.If, s.Then, s.Else)
	add(s.AllOf...)
	add(s.AnyOf...)
	add(s.OneOf...)
	for _, k := range sortedKeys(s.Properties) {
		add(s.Properties[k])
	}
	add(s.PropertyNames, s.UnevaluatedProperties, s.Items2020, s.Contains, s.UnevaluatedItems, s.ContentSchema)
	for _, p := range s.PatternProperties {
		add(p)
	}
	if a, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		add(a)
	}
	for _, d := range s.Dependencies {
		if ds, ok := d.(*jsonschema.Schema); ok {
			add(ds)
		}
	}
	for _, d := range s.DependentSchemas {
		add(d)
	}
	switch it := s.Items.(type) {
	case *jsonschema.Schema:
		add(it)
	case []*jsonschema.Schema:
		add(it...)
	}
	if a, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
		add(a)
	}
	add(s.PrefixItems...)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Validate checks params (as decoded by encoding/json, with or without
// UseNumber) against the schema after applying its defaults. A "$schema"
// key is dropped first, as SlapOS does. On violations the error is a
// *ValidationError and the Result is returned too, so that callers can show
// which values were defaulted.
func (v *Validator) Validate(params map[string]any) (*Result, error) {
	return v.validate(params, false)
}

// ValidateStrings is Validate for parameters that went through SlapOS's
// "xml" serialisation, where every value is a string: a string is first
// converted to the type the schema expects at its place when the schema
// does not accept a string there (integer, number, boolean, null, or JSON
// text for object and array). Result.Coerced lists what was converted.
func (v *Validator) ValidateStrings(params map[string]any) (*Result, error) {
	return v.validate(params, true)
}

// ValidateAs validates with ValidateStrings for SerialisationXML and
// Validate otherwise.
func (v *Validator) ValidateAs(serialisation string, params map[string]any) (*Result, error) {
	return v.validate(params, serialisation == SerialisationXML)
}

func (v *Validator) validate(params map[string]any, coerce bool) (*Result, error) {
	doc, err := copyJSON(params, "")
	if err != nil {
		return nil, err
	}
	m, _ := doc.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	delete(m, "$schema")
	res := &Result{Params: m}
	if v.root == nil {
		return res, nil
	}
	if coerce {
		v.coerceObject(v.root, m, "", &res.Coerced)
		sort.Strings(res.Coerced)
	}
	if v.defaults {
		v.applyDefaults(v.root, m, "", res, 0)
	}
	sort.Strings(res.Defaults)
	sort.Strings(res.InvalidDefaults)
	for {
		verr, err := v.check(m, res)
		if verr == nil {
			return res, err
		}
		// A default must never turn valid parameters into invalid ones.
		// Defaults that do not validate by themselves are found at compile
		// time (findBadDefaults); here are those that fail where they land.
		// A violation at or inside a defaulted value is the default's
		// fault: leave it out and validate again.
		bad := badDefaults(res.Defaults, verr.Violations)
		if len(bad) > 0 {
			for _, p := range bad {
				deletePtr(m, p)
				res.InvalidDefaults = append(res.InvalidDefaults, p)
			}
			sort.Strings(res.InvalidDefaults)
			res.Defaults = withoutUnder(res.Defaults, bad)
			continue
		}
		if len(res.Defaults) == 0 || !v.validWithout(m, res.Defaults) {
			// The user's own parameters are invalid.
			return res, verr
		}
		// Valid as given, invalid with the defaults (an enum or oneOf of
		// an object that its nested defaults change): find the defaults
		// to leave out.
		if !v.dropDefaultsInContext(m, res) {
			return res, verr
		}
	}
}

// check validates doc, returning the violations or another error.
func (v *Validator) check(doc map[string]any, res *Result) (*ValidationError, error) {
	err := v.root.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("schema: validate against %s: %w", displayLoc(v.location), err)
	}
	return v.violations(ve, doc, res).(*ValidationError), nil
}

// validWithout reports whether doc validates without the values at ptrs.
func (v *Validator) validWithout(doc map[string]any, ptrs []string) bool {
	type saved struct {
		ptr string
		val any
	}
	var undo []saved
	for _, p := range ptrs {
		if val, ok := takePtr(doc, p); ok {
			undo = append(undo, saved{p, val})
		}
	}
	ok := v.root.Validate(doc) == nil
	for i := len(undo) - 1; i >= 0; i-- {
		putPtr(doc, undo[i].ptr, undo[i].val)
	}
	return ok
}

// dropDefaultsInContext leaves out defaults, one at a time, until doc
// validates (it does without any), then puts back those that were not
// needed. Only reached with schemas whose defaults conflict with their
// own constraints, so its cost does not matter. It reports whether it
// left anything out.
func (v *Validator) dropDefaultsInContext(doc map[string]any, res *Result) bool {
	type saved struct {
		ptr string
		val any
	}
	var removed []saved
	for _, p := range res.Defaults {
		if val, ok := takePtr(doc, p); ok {
			removed = append(removed, saved{p, val})
			if v.root.Validate(doc) == nil {
				break
			}
		}
	}
	var dropped []string
	for i := len(removed) - 1; i >= 0; i-- {
		putPtr(doc, removed[i].ptr, removed[i].val)
		if v.root.Validate(doc) != nil {
			takePtr(doc, removed[i].ptr)
			dropped = append(dropped, removed[i].ptr)
		}
	}
	res.InvalidDefaults = append(res.InvalidDefaults, dropped...)
	sort.Strings(res.InvalidDefaults)
	res.Defaults = withoutUnder(res.Defaults, dropped)
	return len(dropped) > 0
}

// badDefaults returns the defaulted pointers (outermost only) that some
// violation points at or into.
func badDefaults(defaults []string, vs []Violation) []string {
	var bad []string
	for _, d := range defaults {
		if len(withoutUnder([]string{d}, bad)) == 0 {
			continue // inside a default already dropped
		}
		for _, v := range vs {
			if v.Pointer == d || strings.HasPrefix(v.Pointer, d+"/") {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

// withoutUnder removes from ptrs those equal to or under one of roots.
func withoutUnder(ptrs, roots []string) []string {
	var out []string
	for _, p := range ptrs {
		keep := true
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+"/") {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

// deletePtr removes the object member at ptr.
func deletePtr(doc map[string]any, ptr string) { takePtr(doc, ptr) }

// takePtr removes the object member at ptr and returns it.
func takePtr(doc map[string]any, ptr string) (any, bool) {
	i := strings.LastIndexByte(ptr, '/')
	if i < 0 {
		return nil, false
	}
	parent, ok := lookupPtr(doc, ptr[:i])
	if !ok {
		return nil, false
	}
	pm, ok := parent.(map[string]any)
	if !ok {
		return nil, false
	}
	k := unescapePtr(ptr[i+1:])
	val, ok := pm[k]
	delete(pm, k)
	return val, ok
}

// putPtr sets the object member at ptr, whose parent exists.
func putPtr(doc map[string]any, ptr string, val any) {
	i := strings.LastIndexByte(ptr, '/')
	if i < 0 {
		return
	}
	if parent, ok := lookupPtr(doc, ptr[:i]); ok {
		if pm, ok := parent.(map[string]any); ok {
			pm[unescapePtr(ptr[i+1:])] = val
		}
	}
}

// copyJSON deep-copies a parameter document, so that defaults and
// coercions never touch the caller's values, and rejects Go values that
// have no JSON form (the library would panic on them).
func copyJSON(v any, ptr string) (any, error) {
	switch x := v.(type) {
	case nil, bool, string,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x, nil
	case json.Number:
		if err := checkNumber(string(x)); err != nil {
			return nil, fmt.Errorf("schema: parameter %s: %w", showPtr(ptr), err)
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("schema: parameter %s is %v, which JSON cannot represent", showPtr(ptr), x)
		}
		return x, nil
	case float32:
		return copyJSON(float64(x), ptr)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := copyJSON(e, ptr+"/"+escapePtr(k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := copyJSON(e, fmt.Sprintf("%s/%d", ptr, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	default:
		return nil, fmt.Errorf("schema: parameter %s has Go type %T, which is not a JSON value (decode parameters with encoding/json)", showPtr(ptr), v)
	}
}

// maxNumberLen and maxExponent bound number literals: the library turns
// every number into an exact big.Rat, and 1e-99999999 would take it
// minutes and gigabytes (an invalid literal would make it panic).
const (
	maxNumberLen = 400
	maxExponent  = 400
)

// checkNumber accepts JSON number literals the validator can afford.
func checkNumber(s string) error {
	if !isJSONNumber(s) {
		return fmt.Errorf("%q is not a JSON number", s)
	}
	if len(s) > maxNumberLen {
		return fmt.Errorf("number of %d characters is too long (at most %d)", len(s), maxNumberLen)
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return fmt.Errorf("number %s is out of range (exponent beyond ±%d)", s, maxExponent)
		}
	}
	return nil
}

func escapePtr(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePtr(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// showPtr prints a JSON pointer for people: the whole document has the
// empty pointer, shown as "/".
func showPtr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// lookupPtr returns the value at a JSON pointer in doc.
func lookupPtr(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = unescapePtr(tok)
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i := 0
			if tok == "" {
				return nil, false
			}
			for _, ch := range tok {
				if ch < '0' || ch > '9' {
					return nil, false
				}
				i = i*10 + int(ch-'0')
				if i > len(c) {
					return nil, false
				}
			}
			if i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
