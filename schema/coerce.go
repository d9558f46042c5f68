package schema

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// coerceObject converts the string values of m that the schema wants as
// another type. All branches of the schema are considered, because the
// branch a document takes can only be known once its values are typed.
func (v *Validator) coerceObject(s *jsonschema.Schema, m map[string]any, ptr string, out *[]string) {
	v.coerceObjectDepth(s, m, ptr, out, 0)
}

func (v *Validator) coerceObjectDepth(s *jsonschema.Schema, m map[string]any, ptr string, out *[]string, depth int) {
	if depth > maxDepth {
		return
	}
	subs := closure(s, true)
	for _, name := range sortedKeys(m) {
		var ps []*jsonschema.Schema
		for _, sub := range subs {
			ps = append(ps, propertySchemas(sub, name)...)
		}
		if len(ps) == 0 {
			continue
		}
		m[name] = v.coerceValue(ps, m[name], ptr+"/"+escapePtr(name), out, depth+1)
	}
}

func (v *Validator) coerceValue(schemas []*jsonschema.Schema, val any, ptr string, out *[]string, depth int) any {
	switch x := val.(type) {
	case string:
		types := allowedTypes(schemas)
		if types == nil || types["string"] {
			return x
		}
		if c, ok := convertString(x, types); ok {
			*out = append(*out, ptr)
			return c
		}
	case map[string]any:
		for _, s := range schemas {
			v.coerceObjectDepth(s, x, ptr, out, depth)
		}
	case []any:
		for i, e := range x {
			var is []*jsonschema.Schema
			for _, s := range schemas {
				for _, sub := range closure(s, true) {
					is = append(is, itemSchemas(sub, i)...)
				}
			}
			if len(is) > 0 {
				x[i] = v.coerceValue(is, e, ptr+"/"+strconv.Itoa(i), out, depth+1)
			}
		}
	}
	return val
}

// allowedTypes returns the JSON types the schemas accept, or nil when none
// of them constrains the type (then a string is left alone).
func allowedTypes(schemas []*jsonschema.Schema) map[string]bool {
	var types map[string]bool
	for _, s := range schemas {
		for _, t := range typesOf(s, map[*jsonschema.Schema]bool{}) {
			if types == nil {
				types = map[string]bool{}
			}
			types[t] = true
		}
	}
	return types
}

// typesOf returns the types a schema admits: its own "type", else the
// type of what it refers to or combines, else the types of its enum or
// const values. Empty means unconstrained.
func typesOf(s *jsonschema.Schema, seen map[*jsonschema.Schema]bool) []string {
	if s == nil || seen[s] {
		return nil
	}
	seen[s] = true
	if len(s.Types) > 0 {
		return s.Types
	}
	for _, r := range []*jsonschema.Schema{s.Ref, s.RecursiveRef, s.DynamicRef} {
		if t := typesOf(r, seen); len(t) > 0 {
			return t
		}
	}
	for _, a := range s.AllOf {
		if t := typesOf(a, seen); len(t) > 0 {
			return t
		}
	}
	for _, alts := range [][]*jsonschema.Schema{s.OneOf, s.AnyOf} {
		if len(alts) == 0 {
			continue
		}
		var union []string
		all := true
		for _, b := range alts {
			t := typesOf(b, seen)
			if len(t) == 0 {
				all = false
				break
			}
			union = append(union, t...)
		}
		if all {
			return union
		}
	}
	var vals []any
	vals = append(vals, s.Enum...)
	vals = append(vals, s.Constant...)
	var out []string
	for _, e := range vals {
		out = append(out, jsonTypeOf(e))
	}
	return out
}

// convertString converts a wire string to the first type of types it
// parses as. Numbers keep their exact text as json.Number.
func convertString(s string, types map[string]bool) (any, bool) {
	t := strings.TrimSpace(s)
	if (types["integer"] || types["number"]) && checkNumber(t) == nil {
		return json.Number(t), true
	}
	if types["boolean"] {
		switch strings.ToLower(t) {
		case "true", "yes", "1":
			return true, true
		case "false", "no", "0":
			return false, true
		}
	}
	if types["null"] && (t == "null" || t == "None") {
		return nil, true
	}
	if ((types["object"] && strings.HasPrefix(t, "{")) || (types["array"] && strings.HasPrefix(t, "["))) && checkDepth([]byte(t)) == nil {
		dec := json.NewDecoder(bytes.NewReader([]byte(t)))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil && !dec.More() {
			if _, ok := v.(map[string]any); ok && types["object"] {
				return v, true
			}
			if _, ok := v.([]any); ok && types["array"] {
				return v, true
			}
		}
	}
	return nil, false
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start || (s[start] == '0' && i-start > 1) {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		f := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == f {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		f := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == f {
			return false
		}
	}
	return i == len(s)
}

// jsonTypeOf names the JSON type of a decoded value; integral numbers are
// "integer".
func jsonTypeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil || !strings.ContainsAny(string(x), ".eE") {
			return "integer"
		}
		if f, err := x.Float64(); err == nil && f == float64(int64(f)) {
			return "integer"
		}
		return "number"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case float32:
		return jsonTypeOf(float64(x))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "integer"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "unknown"
}
