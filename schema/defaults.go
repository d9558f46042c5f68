package schema

import (
	"fmt"
	"strconv"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// maxDepth stops default application and coercion on absurdly deep
// documents; validation itself still sees the whole document.
const maxDepth = 64

// applicable returns s and the schemas that apply in place to value: $ref
// targets and allOf always, and the branches of oneOf (only when exactly one
// matches), anyOf (those that match), if/then/else and dependentSchemas that
// value selects. Defaults of a branch the value does not take must not be
// applied.
func applicable(s *jsonschema.Schema, value any) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	seen := map[*jsonschema.Schema]bool{}
	var visit func(*jsonschema.Schema)
	visit = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		visit(s.Ref)
		visit(s.RecursiveRef)
		visit(s.DynamicRef)
		for _, a := range s.AllOf {
			visit(a)
		}
		if len(s.OneOf) > 0 {
			var match *jsonschema.Schema
			n := 0
			for _, b := range s.OneOf {
				if b.Validate(value) == nil {
					n++
					match = b
				}
			}
			if n == 1 {
				visit(match)
			}
		}
		for _, b := range s.AnyOf {
			if b.Validate(value) == nil {
				visit(b)
			}
		}
		if s.If != nil {
			if s.If.Validate(value) == nil {
				visit(s.Then)
			} else {
				visit(s.Else)
			}
		}
		if m, ok := value.(map[string]any); ok {
			for name, ds := range s.DependentSchemas {
				if _, present := m[name]; present {
					visit(ds)
				}
			}
			for name, d := range s.Dependencies {
				if ds, ok := d.(*jsonschema.Schema); ok {
					if _, present := m[name]; present {
						visit(ds)
					}
				}
			}
		}
	}
	visit(s)
	return out
}

// closure returns s and the schemas reachable in place without looking at a
// value: $ref and allOf, plus, when branches is set, every anyOf/oneOf
// branch, then/else and dependent schema.
func closure(s *jsonschema.Schema, branches bool) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	seen := map[*jsonschema.Schema]bool{}
	var visit func(*jsonschema.Schema)
	visit = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		visit(s.Ref)
		visit(s.RecursiveRef)
		visit(s.DynamicRef)
		for _, a := range s.AllOf {
			visit(a)
		}
		if !branches {
			return
		}
		for _, b := range s.OneOf {
			visit(b)
		}
		for _, b := range s.AnyOf {
			visit(b)
		}
		visit(s.Then)
		visit(s.Else)
		for _, k := range sortedKeys(s.DependentSchemas) {
			visit(s.DependentSchemas[k])
		}
	}
	visit(s)
	return out
}

// propertySchemas returns the schemas of s that apply to property name.
func propertySchemas(s *jsonschema.Schema, name string) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	if p, ok := s.Properties[name]; ok {
		out = append(out, p)
	}
	for re, p := range s.PatternProperties {
		if re.MatchString(name) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		if a, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
			out = append(out, a)
		}
	}
	return out
}

// itemSchemas returns the schemas of s that apply to array item i.
func itemSchemas(s *jsonschema.Schema, i int) []*jsonschema.Schema {
	if i < len(s.PrefixItems) {
		return []*jsonschema.Schema{s.PrefixItems[i]}
	}
	if len(s.PrefixItems) > 0 || s.Items2020 != nil {
		if s.Items2020 != nil {
			return []*jsonschema.Schema{s.Items2020}
		}
		return nil
	}
	switch it := s.Items.(type) {
	case *jsonschema.Schema:
		return []*jsonschema.Schema{it}
	case []*jsonschema.Schema:
		if i < len(it) {
			return []*jsonschema.Schema{it[i]}
		}
		if a, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
			return []*jsonschema.Schema{a}
		}
	}
	return nil
}

// defaultOf returns the default of a property schema, looking through $ref
// and allOf because SlapOS schemas often put the default in a shared
// definition. A "default": null cannot be told from no default by the
// library, so null defaults are not applied.
func defaultOf(s *jsonschema.Schema) (any, bool) {
	for _, c := range closure(s, false) {
		if c.Default != nil {
			return c.Default, true
		}
	}
	return nil, false
}

// applyDefaults fills missing properties of val (an object or array,
// modified in place) from the defaults of the schemas that apply, recursing
// into nested objects and arrays, and records the pointers it filled.
func (v *Validator) applyDefaults(s *jsonschema.Schema, val any, ptr string, res *Result, depth int) {
	if s == nil || depth > maxDepth {
		return
	}
	switch x := val.(type) {
	case map[string]any:
		subs := applicable(s, x)
		for _, sub := range subs {
			for _, name := range sortedKeys(sub.Properties) {
				if _, present := x[name]; present {
					continue
				}
				ps := sub.Properties[name]
				if d, ok := defaultOf(ps); ok {
					p := ptr + "/" + escapePtr(name)
					if v.badDefault[ps] {
						res.InvalidDefaults = append(res.InvalidDefaults, p)
						continue
					}
					c, err := copyJSON(d, "")
					if err != nil {
						continue
					}
					x[name] = c
					res.Defaults = append(res.Defaults, p)
				}
			}
		}
		for _, name := range sortedKeys(x) {
			pv := x[name]
			if !isContainer(pv) {
				continue
			}
			for _, sub := range subs {
				for _, ps := range propertySchemas(sub, name) {
					v.applyDefaults(ps, pv, ptr+"/"+escapePtr(name), res, depth+1)
				}
			}
		}
	case []any:
		subs := applicable(s, x)
		for i, e := range x {
			if !isContainer(e) {
				continue
			}
			for _, sub := range subs {
				for _, is := range itemSchemas(sub, i) {
					v.applyDefaults(is, e, ptr+"/"+strconv.Itoa(i), res, depth+1)
				}
			}
		}
	}
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// findBadDefaults marks the property schemas whose default does not
// validate against the property's own schema, alone or once the defaults
// nested in it are applied too. Real SlapOS schemas have such defaults
// (wendelin's "replicate-with-tls": {"type": "string", "default": true};
// its "replication": {"default": {}} stops matching its enum once nested
// defaults are added); applying one would turn valid parameters into
// invalid ones, so they are left out and reported in
// Result.InvalidDefaults. Checked once at compile time so that validation
// does not pay for it.
func (v *Validator) findBadDefaults() {
	v.badDefault = map[*jsonschema.Schema]bool{}
	var withDefault []*jsonschema.Schema
	walkSchemas(v.root, func(s *jsonschema.Schema) {
		for _, k := range sortedKeys(s.Properties) {
			ps := s.Properties[k]
			if d, ok := defaultOf(ps); ok {
				withDefault = append(withDefault, ps)
				if validateQuiet(ps, d) != nil {
					v.badDefault[ps] = true
				}
			}
		}
	})
	v.defaults = len(withDefault) > 0
	for _, ps := range withDefault {
		if v.badDefault[ps] {
			continue
		}
		d, _ := defaultOf(ps)
		if !isContainer(d) {
			continue
		}
		c, err := copyJSON(d, "")
		if err != nil {
			v.badDefault[ps] = true
			continue
		}
		v.applyDefaults(ps, c, "", &Result{}, 0)
		if validateQuiet(ps, c) != nil {
			v.badDefault[ps] = true
		}
	}
}

// validateQuiet validates, turning a panic of the library on an odd
// default into an error.
func validateQuiet(s *jsonschema.Schema, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return s.Validate(v)
}
