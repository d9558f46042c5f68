package schema

import (
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Parameter summarises one parameter a schema declares, for display.
type Parameter struct {
	// Pointer is the JSON pointer of the parameter ("/ram-size", or
	// "/frontend/port" for a nested one).
	Pointer     string   `json:"pointer"`
	Name        string   `json:"name"`
	Types       []string `json:"types,omitempty"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Default     any      `json:"default,omitempty"`
	HasDefault  bool     `json:"has_default,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Enum        []any    `json:"enum,omitempty"`
	// Constraints are short readable rules: ">= 1", "pattern ^[a-z]+$".
	Constraints []string `json:"constraints,omitempty"`
	// Conditional is set when the parameter is only declared in an
	// anyOf/oneOf/if branch: it exists in some configurations only.
	Conditional bool `json:"conditional,omitempty"`
	Deprecated  bool `json:"deprecated,omitempty"`
	ReadOnly    bool `json:"read_only,omitempty"`
}

// Parameters lists the parameters the schema declares, sorted by pointer,
// looking through $ref, allOf and (marked Conditional) branches, and into
// nested objects up to depth levels (1: top-level only).
func (v *Validator) Parameters(depth int) []Parameter {
	if v.root == nil {
		return nil
	}
	var out []Parameter
	collectParams(v.root, "", depth, false, &out, map[*jsonschema.Schema]bool{})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

func collectParams(s *jsonschema.Schema, ptr string, depth int, conditional bool, out *[]Parameter, onPath map[*jsonschema.Schema]bool) {
	if depth <= 0 || onPath[s] {
		return
	}
	onPath[s] = true
	defer delete(onPath, s)
	always := map[*jsonschema.Schema]bool{}
	for _, c := range closure(s, false) {
		always[c] = true
	}
	required := map[string]bool{}
	for c := range always {
		for _, r := range c.Required {
			required[r] = true
		}
	}
	byName := map[string]int{}
	start := len(*out)
	for _, c := range closure(s, true) {
		for _, name := range sortedKeys(c.Properties) {
			ps := c.Properties[name]
			cond := conditional || !always[c]
			if i, ok := byName[name]; ok {
				p := &(*out)[i]
				mergeParam(p, ps)
				p.Conditional = p.Conditional && cond
				continue
			}
			p := Parameter{Pointer: ptr + "/" + escapePtr(name), Name: name, Required: required[name] && !cond, Conditional: cond}
			mergeParam(&p, ps)
			byName[name] = len(*out)
			*out = append(*out, p)
		}
	}
	// Recurse after listing this level so that indexes stay valid.
	added := append([]Parameter(nil), (*out)[start:]...)
	for _, p := range added {
		for _, c := range closure(s, true) {
			if ps, ok := c.Properties[p.Name]; ok {
				collectParams(ps, p.Pointer, depth-1, p.Conditional, out, onPath)
				break
			}
		}
	}
}

// mergeParam fills what p lacks from the property schema and what it
// refers to.
func mergeParam(p *Parameter, ps *jsonschema.Schema) {
	for _, c := range closure(ps, false) {
		if p.Title == "" {
			p.Title = c.Title
		}
		if p.Description == "" {
			p.Description = c.Description
		}
		if !p.HasDefault && c.Default != nil {
			p.Default, p.HasDefault = c.Default, true
		}
		if len(p.Types) == 0 {
			p.Types = typesOf(c, map[*jsonschema.Schema]bool{})
			p.Types = uniq(p.Types)
		}
		if len(p.Enum) == 0 && len(c.Enum) > 0 {
			p.Enum = c.Enum
		}
		p.Deprecated = p.Deprecated || c.Deprecated
		p.ReadOnly = p.ReadOnly || c.ReadOnly
		add := func(s string) {
			for _, x := range p.Constraints {
				if x == s {
					return
				}
			}
			p.Constraints = append(p.Constraints, s)
		}
		if len(c.Constant) > 0 {
			add("= " + describe(c.Constant[0], true))
		}
		if c.Minimum != nil {
			add(">= " + rat(c.Minimum))
		}
		if c.ExclusiveMinimum != nil {
			add("> " + rat(c.ExclusiveMinimum))
		}
		if c.Maximum != nil {
			add("<= " + rat(c.Maximum))
		}
		if c.ExclusiveMaximum != nil {
			add("< " + rat(c.ExclusiveMaximum))
		}
		if c.MultipleOf != nil {
			add("multiple of " + rat(c.MultipleOf))
		}
		if c.MinLength >= 0 {
			add(fmt.Sprintf("length >= %d", c.MinLength))
		}
		if c.MaxLength >= 0 {
			add(fmt.Sprintf("length <= %d", c.MaxLength))
		}
		if c.Pattern != nil {
			add("pattern " + c.Pattern.String())
		}
		if c.Format != "" {
			add("format " + c.Format)
		}
		if c.MinItems >= 0 {
			add(fmt.Sprintf("items >= %d", c.MinItems))
		}
		if c.MaxItems >= 0 {
			add(fmt.Sprintf("items <= %d", c.MaxItems))
		}
		if c.UniqueItems {
			add("unique items")
		}
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Summary is a readable description of the schema's parameters, as
// printed by "slapnode schema show".
func (v *Validator) Summary(depth int) string {
	if v.root == nil {
		return "  (no schema: any parameters are accepted)\n"
	}
	var b strings.Builder
	if v.root.Title != "" {
		fmt.Fprintf(&b, "  %s\n", v.root.Title)
	}
	params := v.Parameters(depth)
	if len(params) == 0 {
		b.WriteString("  (the schema declares no parameters)\n")
	}
	for _, p := range params {
		indent := strings.Repeat("  ", strings.Count(p.Pointer, "/"))
		typ := strings.Join(p.Types, "|")
		if typ == "" {
			typ = "any"
		}
		var flags []string
		if p.Required {
			flags = append(flags, "required")
		}
		if p.Conditional {
			flags = append(flags, "conditional")
		}
		if p.Deprecated {
			flags = append(flags, "deprecated")
		}
		if p.ReadOnly {
			flags = append(flags, "read-only")
		}
		line := fmt.Sprintf("%s%s  %s", indent, unescapePtr(p.Name), typ)
		if len(flags) > 0 {
			line += "  (" + strings.Join(flags, ", ") + ")"
		}
		if p.HasDefault {
			line += "  default " + oneLine(listValues([]any{p.Default}), 60)
		}
		b.WriteString(line + "\n")
		if p.Title != "" && p.Title != p.Name {
			fmt.Fprintf(&b, "%s    %s\n", indent, oneLine(p.Title, 100))
		}
		if p.Description != "" && p.Description != p.Title {
			fmt.Fprintf(&b, "%s    %s\n", indent, oneLine(p.Description, 160))
		}
		if len(p.Enum) > 0 {
			fmt.Fprintf(&b, "%s    one of: %s\n", indent, oneLine(listValues(p.Enum), 160))
		}
		if len(p.Constraints) > 0 {
			fmt.Fprintf(&b, "%s    %s\n", indent, oneLine(strings.Join(p.Constraints, ", "), 160))
		}
	}
	return b.String()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
