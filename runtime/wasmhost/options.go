package wasmhost

import "encoding/json"

// OptionSet summarises the options schema of a recipe or a promise check
// for the static checks of a profile (hcl/profile's Check): which options
// it names, with their JSON types, and whether it takes others.
type OptionSet struct {
	// Known maps each named option to its JSON Schema types ("string",
	// "integer", "array"…); an empty list is any type.
	Known map[string][]string
	// Open: options it does not name are accepted (additionalProperties
	// is not false, or patternProperties may match them).
	Open bool
	// Content lists the options naming files whose content the recipe
	// reads into what it makes (`"x-content": true` in the option's
	// schema: a wrapper's hash-files): the engine puts that content in
	// the part's signature, so the part is made again when a file
	// changes though its options do not.
	Content []string
}

// OptionSet reads the entry's options schema; ok is false when the entry
// declares none (its options go unchecked).
func (e Entry) OptionSet() (set OptionSet, ok bool) {
	if len(e.Options) == 0 {
		return OptionSet{}, false
	}
	var s optionSchema
	if err := json.Unmarshal(e.Options, &s); err != nil {
		return OptionSet{}, false
	}
	set = OptionSet{Known: map[string][]string{}, Open: true}
	s.collect(&set)
	// additionalProperties false closes the set, unless patterns may
	// name more.
	if s.Additional != nil && string(*s.Additional) == "false" && len(s.Pattern) == 0 {
		set.Open = false
	}
	return set, true
}

type optionSchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Additional *json.RawMessage           `json:"additionalProperties"`
	Pattern    map[string]json.RawMessage `json:"patternProperties"`
	AllOf      []optionSchema             `json:"allOf"`
	AnyOf      []optionSchema             `json:"anyOf"`
	OneOf      []optionSchema             `json:"oneOf"`
}

// collect adds the properties of s and of its allOf/anyOf/oneOf branches
// (each branch's names are options of the whole).
func (s *optionSchema) collect(set *OptionSet) {
	for name, raw := range s.Properties {
		var p struct {
			Type    json.RawMessage `json:"type"`
			Content bool            `json:"x-content"`
		}
		json.Unmarshal(raw, &p)
		if p.Content {
			set.Content = append(set.Content, name)
		}
		var types []string
		var one string
		if json.Unmarshal(p.Type, &one) == nil && one != "" {
			types = []string{one}
		} else {
			json.Unmarshal(p.Type, &types)
		}
		if prev, dup := set.Known[name]; dup && len(prev) > 0 {
			types = append(prev, types...)
		}
		set.Known[name] = types
	}
	for _, group := range [][]optionSchema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range group {
			group[i].collect(set)
		}
	}
}
