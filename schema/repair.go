package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Keywords whose value is a schema, a list of schemas or a map of schemas,
// in any draft. Only these are walked by repair: other keywords hold data
// ("enum", "default", SlapOS's "options") that must stay untouched.
var (
	schemaKeywords = map[string]bool{
		"additionalItems": true, "additionalProperties": true, "unevaluatedItems": true,
		"unevaluatedProperties": true, "contains": true, "propertyNames": true, "not": true,
		"if": true, "then": true, "else": true, "contentSchema": true, "items": true,
	}
	schemaListKeywords = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true, "items": true}
	schemaMapKeywords  = map[string]bool{
		"properties": true, "patternProperties": true, "$defs": true, "definitions": true,
		"dependentSchemas": true, "dependencies": true,
	}
)

// repair drops, unless Options.Strict, the entries of schema maps
// ("properties", "$defs"…) whose value cannot be a schema. Real SlapOS
// schemas contain such mistakes (simpleran's
// "properties": {"$ref": "…"}); the library would refuse the whole file,
// while SlapOS's validator silently ignores them. Every dropped entry is
// reported as a warning.
func (l *loader) repair(loc string, data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if l.opts.Strict {
		return data, nil
	}
	var dropped []string
	repairSchema(doc, "", &dropped)
	if len(dropped) == 0 {
		return data, nil
	}
	for _, d := range dropped {
		l.warnings = append(l.warnings, fmt.Sprintf("%s#%s: not a schema, ignored as SlapOS does", displayLoc(loc), d))
	}
	return json.Marshal(doc)
}

func repairSchema(node any, ptr string, dropped *[]string) {
	m, ok := node.(map[string]any)
	if !ok {
		return
	}
	for _, kw := range sortedKeys(m) {
		val := m[kw]
		kptr := ptr + "/" + escapePtr(kw)
		if schemaMapKeywords[kw] {
			sub, ok := val.(map[string]any)
			if !ok {
				continue
			}
			for _, name := range sortedKeys(sub) {
				s := sub[name]
				switch s.(type) {
				case map[string]any:
					repairSchema(s, kptr+"/"+escapePtr(name), dropped)
				case bool:
				case []any:
					// draft-04..07 "dependencies" lists property names.
					if kw != "dependencies" {
						delete(sub, name)
						*dropped = append(*dropped, kptr+"/"+escapePtr(name))
					}
				default:
					delete(sub, name)
					*dropped = append(*dropped, kptr+"/"+escapePtr(name))
				}
			}
			continue
		}
		if schemaListKeywords[kw] {
			if list, ok := val.([]any); ok {
				for i, s := range list {
					repairSchema(s, kptr+"/"+strconv.Itoa(i), dropped)
				}
				continue
			}
		}
		if schemaKeywords[kw] {
			repairSchema(val, kptr, dropped)
		}
	}
}
