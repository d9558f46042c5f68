package schema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// ValidationError lists every violation of a parameter document.
type ValidationError struct {
	Violations []Violation
}

// Error returns one line per violation.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		lines[i] = v.Message
	}
	return strings.Join(lines, "\n")
}

// Violation is one reason why parameters do not validate.
type Violation struct {
	// Pointer is the JSON pointer of the offending value; for a missing
	// required value, where it would be. "" is the whole document.
	Pointer string
	// Keyword is the schema keyword that failed ("minimum", "required"…).
	Keyword string
	// SchemaLocation is the failing keyword's place in the schema, as a
	// path relative to the root schema's directory (or a URL) with a
	// JSON-pointer fragment.
	SchemaLocation string
	// Message is one line for people, starting with the pointer:
	// "/nbd-port: must be >= 1 but is 0".
	Message string
}

// raw is a violation before noise filtering.
type raw struct {
	Violation
	unevalOf *jsonschema.Schema // schema whose unevaluatedProperties failed
	prop     string
}

func (v *Validator) violations(ve *jsonschema.ValidationError, doc map[string]any, res *Result) error {
	rs := v.collect(ve, doc)
	rs = dropUnevaluatedNoise(rs)
	seen := map[[3]string]bool{}
	var out []Violation
	for _, r := range rs {
		k := [3]string{r.Pointer, r.Keyword, r.Message}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r.Violation)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	for i := range out {
		p := out[i].Pointer
		note := ""
		for _, d := range res.Defaults {
			if p == d || strings.HasPrefix(p, d+"/") {
				note = " (value is the schema's default)"
			}
		}
		for _, c := range res.Coerced {
			if p == c {
				note = " (converted from a string)"
			} else if strings.HasPrefix(p, c+"/") {
				note = " (in " + c + ", converted from a string)"
			}
		}
		out[i].Message = showPtr(p) + ": " + out[i].Message + note
	}
	if len(out) == 0 {
		// Cannot happen with a failing validation, but never return an
		// empty error for an invalid document.
		out = append(out, Violation{Pointer: ve.InstanceLocation, Keyword: "", SchemaLocation: v.shortLoc(ve.AbsoluteKeywordLocation), Message: showPtr(ve.InstanceLocation) + ": " + ve.Message})
	}
	return &ValidationError{Violations: out}
}

// collect turns the library's error tree into leaf violations. Wrappers
// (allOf, $ref, the document) only contribute their causes; a failed
// anyOf/oneOf is reduced to the alternative the user most likely meant.
func (v *Validator) collect(e *jsonschema.ValidationError, doc map[string]any) []raw {
	last := lastSegment(e.KeywordLocation)
	if len(e.Causes) == 0 || last == "minContains" || last == "contains" {
		return v.leaf(e, doc)
	}
	if last == "oneOf" || last == "anyOf" {
		return v.alternatives(e, doc, last)
	}
	var out []raw
	for _, c := range e.Causes {
		out = append(out, v.collect(c, doc)...)
	}
	return out
}

func (v *Validator) alternatives(e *jsonschema.ValidationError, doc map[string]any, kw string) []raw {
	type branch struct {
		rs    []raw
		wrong bool
	}
	var bs []branch
	for _, c := range e.Causes {
		rs := v.collect(c, doc)
		wrong := false
		for _, r := range rs {
			// A type mismatch of the value itself, or a const anywhere
			// (the usual discriminator of SlapOS's oneOf), means the user
			// did not mean this alternative.
			if (r.Pointer == e.InstanceLocation && (r.Keyword == "type" || r.Keyword == "false" || r.Keyword == "enum")) || r.Keyword == "const" {
				wrong = true
			}
		}
		bs = append(bs, branch{rs, wrong})
	}
	best := -1
	for i, b := range bs {
		if b.wrong || len(b.rs) == 0 {
			continue
		}
		if best < 0 || len(b.rs) < len(bs[best].rs) {
			best = i
		}
	}
	if best >= 0 {
		return bs[best].rs
	}
	var msgs []string
	seen := map[string]bool{}
	for _, b := range bs {
		for _, r := range b.rs {
			m := r.Message
			if r.Pointer != e.InstanceLocation {
				m = showPtr(r.Pointer) + " " + m
			}
			if !seen[m] {
				seen[m] = true
				msgs = append(msgs, m)
			}
		}
	}
	if len(msgs) > 6 {
		msgs = append(msgs[:6], "…")
	}
	return []raw{{Violation: Violation{
		Pointer:        e.InstanceLocation,
		Keyword:        kw,
		SchemaLocation: v.shortLoc(e.AbsoluteKeywordLocation),
		Message:        fmt.Sprintf("matches none of the %d allowed alternatives: %s", len(e.Causes), strings.Join(msgs, "; or ")),
	}}}
}

// locate finds the schema a keyword location belongs to and the keyword
// path inside it ("" when the schema itself is false).
func (v *Validator) locate(abs string) (*jsonschema.Schema, string) {
	if s, ok := v.index[abs]; ok {
		return s, ""
	}
	p := abs
	for range 3 {
		i := strings.LastIndexByte(p, '/')
		if i < 0 || !strings.Contains(p[:i], "#") {
			break
		}
		p = p[:i]
		if s, ok := v.index[p]; ok {
			return s, abs[len(p)+1:]
		}
	}
	return nil, lastSegment(abs)
}

func (v *Validator) leaf(e *jsonschema.ValidationError, doc map[string]any) []raw {
	s, kwPath := v.locate(e.AbsoluteKeywordLocation)
	inst := e.InstanceLocation
	val, present := lookupPtr(doc, inst)
	loc := v.shortLoc(e.AbsoluteKeywordLocation)
	one := func(kw, msg string) []raw {
		return []raw{{Violation: Violation{Pointer: inst, Keyword: kw, SchemaLocation: loc, Message: msg}}}
	}
	kw, _, _ := strings.Cut(kwPath, "/")
	if s == nil {
		return one(kw, e.Message)
	}
	if kw == "" {
		// The schema is "false": reached through unevaluatedProperties,
		// additionalProperties, items or a property declared false.
		kw = lastSegment(s.Location)
		parent := v.index[strings.TrimSuffix(s.Location, "/"+kw)]
		switch kw {
		case "unevaluatedProperties", "additionalProperties":
			name := unescapePtr(lastSegment(inst))
			r := one(kw, "is not a parameter of this schema"+suggest(name, parent))
			if kw == "unevaluatedProperties" {
				r[0].unevalOf, r[0].prop = parent, name
			}
			return r
		case "unevaluatedItems", "items", "additionalItems", "prefixItems":
			return one(kw, "is an extra item, which is not allowed")
		default:
			return one("false", "is not allowed")
		}
	}
	switch kw {
	case "type":
		return one(kw, fmt.Sprintf("must be %s but is %s", typePhrase(s.Types), describe(val, present)))
	case "enum":
		return one(kw, fmt.Sprintf("must be one of %s but is %s", listValues(s.Enum), describe(val, present)))
	case "const":
		c := any(nil)
		if len(s.Constant) > 0 {
			c = s.Constant[0]
		}
		return one(kw, fmt.Sprintf("must be %s but is %s", describe(c, true), describe(val, present)))
	case "minimum":
		return one(kw, fmt.Sprintf("must be >= %s but is %s", rat(s.Minimum), describe(val, present)))
	case "maximum":
		return one(kw, fmt.Sprintf("must be <= %s but is %s", rat(s.Maximum), describe(val, present)))
	case "exclusiveMinimum":
		return one(kw, fmt.Sprintf("must be > %s but is %s", rat(firstRat(s.ExclusiveMinimum, s.Minimum)), describe(val, present)))
	case "exclusiveMaximum":
		return one(kw, fmt.Sprintf("must be < %s but is %s", rat(firstRat(s.ExclusiveMaximum, s.Maximum)), describe(val, present)))
	case "multipleOf":
		return one(kw, fmt.Sprintf("must be a multiple of %s but is %s", rat(s.MultipleOf), describe(val, present)))
	case "minLength":
		return one(kw, fmt.Sprintf("must be at least %d characters long but has %d", s.MinLength, strLen(val)))
	case "maxLength":
		return one(kw, fmt.Sprintf("must be at most %d characters long but has %d", s.MaxLength, strLen(val)))
	case "pattern":
		p := ""
		if s.Pattern != nil {
			p = s.Pattern.String()
		}
		return one(kw, fmt.Sprintf("must match the pattern %q but is %s", p, describe(val, present)))
	case "format":
		return one(kw, fmt.Sprintf("must be a valid %s but is %s", s.Format, describe(val, present)))
	case "minItems":
		return one(kw, fmt.Sprintf("must have at least %d items but has %d", s.MinItems, arrLen(val)))
	case "maxItems":
		return one(kw, fmt.Sprintf("must have at most %d items but has %d", s.MaxItems, arrLen(val)))
	case "minProperties":
		return one(kw, fmt.Sprintf("must have at least %d entries but has %d", s.MinProperties, objLen(val)))
	case "maxProperties":
		return one(kw, fmt.Sprintf("must have at most %d entries but has %d", s.MaxProperties, objLen(val)))
	case "uniqueItems":
		return one(kw, "must not repeat items: "+e.Message)
	case "minContains", "contains":
		return one(kw, fmt.Sprintf("must contain at least %d matching items", max(s.MinContains, 1)))
	case "maxContains":
		return one(kw, fmt.Sprintf("must contain at most %d matching items", s.MaxContains))
	case "not":
		return one(kw, "matches a schema it must not match")
	case "oneOf":
		return one(kw, "matches more than one of the alternatives, exactly one is required")
	case "required":
		m, _ := val.(map[string]any)
		var out []raw
		for _, name := range s.Required {
			if _, ok := m[name]; ok {
				continue
			}
			out = append(out, raw{Violation: Violation{
				Pointer: inst + "/" + escapePtr(name), Keyword: kw, SchemaLocation: loc,
				Message: "is required" + titleOf(s, name),
			}})
		}
		if len(out) == 0 {
			return one(kw, e.Message)
		}
		return out
	case "additionalProperties":
		m, _ := val.(map[string]any)
		var out []raw
		for _, name := range sortedKeys(m) {
			if len(propertySchemas(s, name)) > 0 {
				continue // declared, or matched by a pattern
			}
			out = append(out, raw{Violation: Violation{
				Pointer: inst + "/" + escapePtr(name), Keyword: kw, SchemaLocation: loc,
				Message: "is not a parameter of this schema" + suggest(name, s),
			}})
		}
		if len(out) == 0 {
			return one(kw, e.Message)
		}
		return out
	case "dependentRequired", "dependencies":
		parts := strings.Split(kwPath, "/")
		if len(parts) == 3 {
			dname := unescapePtr(parts[1])
			i, _ := strconv.Atoi(parts[2])
			var req []string
			if kw == "dependentRequired" {
				req = s.DependentRequired[dname]
			} else if l, ok := s.Dependencies[dname].([]string); ok {
				req = l
			}
			if i < len(req) {
				return []raw{{Violation: Violation{
					Pointer: inst + "/" + escapePtr(req[i]), Keyword: kw, SchemaLocation: loc,
					Message: fmt.Sprintf("is required when %q is set", dname),
				}}}
			}
		}
	}
	return one(kw, e.Message)
}

// dropUnevaluatedNoise removes unevaluatedProperties violations that only
// exist because another part of the document failed: once an allOf branch
// fails, the library forgets which properties it evaluated, so every
// property it declares is reported as unevaluated too. Such a violation is
// dropped when the property is declared by the schema that has
// unevaluatedProperties (or a schema it combines), or when the property
// already has a violation of its own — but only while other violations
// remain to explain the failure.
func dropUnevaluatedNoise(rs []raw) []raw {
	real := 0
	for _, r := range rs {
		if r.Keyword != "unevaluatedProperties" {
			real++
		}
	}
	if real == 0 {
		return rs
	}
	out := rs[:0:0]
	for _, r := range rs {
		if r.Keyword == "unevaluatedProperties" {
			if r.unevalOf != nil && declares(r.unevalOf, r.prop) {
				continue
			}
			own := false
			for _, o := range rs {
				if o.Keyword != "unevaluatedProperties" && (o.Pointer == r.Pointer || strings.HasPrefix(o.Pointer, r.Pointer+"/")) {
					own = true
				}
			}
			if own {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

func declares(s *jsonschema.Schema, name string) bool {
	for _, c := range closure(s, true) {
		if _, ok := c.Properties[name]; ok {
			return true
		}
		for re := range c.PatternProperties {
			if re.MatchString(name) {
				return true
			}
		}
	}
	return false
}

// suggest proposes the closest declared parameter name for a misspelt one.
func suggest(name string, s *jsonschema.Schema) string {
	if s == nil {
		return ""
	}
	best, bestD := "", 0
	for _, c := range closure(s, true) {
		for k := range c.Properties {
			d := editDistance(strings.ToLower(name), strings.ToLower(k))
			if d == 0 {
				d = 1 // differs in case only
			}
			if (best == "" || d < bestD || (d == bestD && k < best)) && d <= max(2, len(k)/4) {
				best, bestD = k, d
			}
		}
	}
	if best == "" || best == name {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func titleOf(s *jsonschema.Schema, name string) string {
	p, ok := s.Properties[name]
	if !ok {
		return ""
	}
	for _, c := range closure(p, false) {
		if c.Title != "" {
			return fmt.Sprintf(" (%s)", oneLine(c.Title, 80))
		}
	}
	return ""
}

// shortLoc prints a keyword location relative to the root schema's
// directory, which is what a person can open.
func (v *Validator) shortLoc(abs string) string {
	if !strings.HasPrefix(abs, "file://") {
		return abs
	}
	base, frag, _ := strings.Cut(abs, "#")
	u, err := url.Parse(base)
	if err != nil {
		return abs
	}
	p := filepath.FromSlash(u.Path)
	if v.baseDir != "" {
		if rel, err := filepath.Rel(v.baseDir, p); err == nil {
			p = rel
		}
	}
	return p + "#" + frag
}

func lastSegment(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func typePhrase(types []string) string {
	parts := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "integer", "object", "array":
			parts[i] = "an " + t
		case "null":
			parts[i] = "null"
		default:
			parts[i] = "a " + t
		}
	}
	return strings.Join(parts, " or ")
}

// describe prints a value for a message: scalars as JSON, containers by
// kind, long strings shortened.
func describe(v any, present bool) string {
	if !present {
		return "missing"
	}
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		if utf8.RuneCountInString(x) > 60 {
			x = string([]rune(x)[:57]) + "…"
		}
		return strconv.Quote(x)
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case json.Number:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

func listValues(vals []any) string {
	var parts []string
	for i, v := range vals {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("… (%d values)", len(vals)))
			break
		}
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(fmt.Sprint(v))
		}
		parts = append(parts, string(b))
	}
	return strings.Join(parts, ", ")
}

func rat(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func firstRat(rs ...*big.Rat) *big.Rat {
	for _, r := range rs {
		if r != nil {
			return r
		}
	}
	return nil
}

func strLen(v any) int {
	s, _ := v.(string)
	return utf8.RuneCountInString(s)
}

func arrLen(v any) int {
	a, _ := v.([]any)
	return len(a)
}

func objLen(v any) int {
	m, _ := v.(map[string]any)
	return len(m)
}
