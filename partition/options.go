package partition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/slapnode/slapnode/schema"
)

// toJSON is the canonical JSON of a part's options: an object with sorted
// keys, each value as go-cty writes it. Its bytes are signed (signature),
// so they are those of the first versions, which built a map of each
// value's ctyjson text and gave it to json.Marshal (TestSignatureStable):
// go-cty writes compact JSON whose strings encoding/json escaped, which
// json.Marshal's compaction of a RawMessage leaves as it is. Written
// straight into one buffer, sized once, it costs a part one allocation
// where the map cost a dozen.
func toJSON(opts map[string]cty.Value) (json.RawMessage, error) {
	keys := make([]string, 0, len(opts))
	size := 2
	for k, v := range opts {
		keys = append(keys, k)
		size += len(k) + 4
		if v.Type() == cty.String && v.IsKnown() && !v.IsNull() && !v.IsMarked() {
			size += len(v.AsString()) + 8
		} else {
			size += 16
		}
	}
	sort.Strings(keys)
	buf := bytes.NewBuffer(make([]byte, 0, size))
	enc := json.NewEncoder(buf) // escapes HTML as json.Marshal does
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeString(enc, buf, k); err != nil {
			return nil, err
		}
		buf.WriteByte(':')
		v := opts[k]
		if v.Type() == cty.String && v.IsKnown() && !v.IsNull() && !v.IsMarked() {
			// What go-cty does for a string (json.Marshal), without
			// its copy.
			if err := encodeString(enc, buf, v.AsString()); err != nil {
				return nil, fmt.Errorf("option %s: %w", k, err)
			}
			continue
		}
		b, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", k, err)
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// encodeString appends the JSON string s as json.Marshal writes it.
func encodeString(enc *json.Encoder, buf *bytes.Buffer, s string) error {
	if err := enc.Encode(s); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // the Encoder's newline
	return nil
}

// maxDirectDepth bounds the nesting optionParams converts; deeper options
// take the JSON path, whose depth check (schema.MaxJSONDepth) reports them.
const maxDirectDepth = 32

// optionParams returns the options as schema.DecodeJSON reads their
// canonical JSON (toJSON): objects as map[string]any, arrays as []any,
// numbers as json.Number of go-cty's text, without writing and parsing
// that JSON. ok is false for what the JSON path must handle for its
// errors or its exact form: a string that is not valid UTF-8 (encoding/json
// replaces its bytes), nesting near schema.MaxJSONDepth, a capsule value, a
// marked or unknown one.
func optionParams(opts map[string]cty.Value) (map[string]any, bool) {
	out := make(map[string]any, len(opts))
	for k, v := range opts {
		if !utf8.ValidString(k) {
			return nil, false
		}
		p, ok := paramValue(v, 1)
		if !ok {
			return nil, false
		}
		out[k] = p
	}
	return out, true
}

func paramValue(v cty.Value, depth int) (any, bool) {
	if v.IsMarked() || !v.IsKnown() || depth > maxDirectDepth {
		return nil, false
	}
	if v.IsNull() {
		return nil, true
	}
	t := v.Type()
	switch {
	case t == cty.String:
		s := v.AsString()
		return s, utf8.ValidString(s)
	case t == cty.Number:
		if v.RawEquals(cty.PositiveInfinity) || v.RawEquals(cty.NegativeInfinity) {
			return nil, false
		}
		return json.Number(v.AsBigFloat().Text('f', -1)), true
	case t == cty.Bool:
		return v.True(), true
	case t.IsListType(), t.IsSetType(), t.IsTupleType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			p, ok := paramValue(ev, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, p)
		}
		return out, true
	case t.IsMapType(), t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			ek, ev := it.Element()
			k := ek.AsString()
			if !utf8.ValidString(k) {
				return nil, false
			}
			p, ok := paramValue(ev, depth+1)
			if !ok {
				return nil, false
			}
			out[k] = p
		}
		return out, true
	}
	return nil, false
}

// decodeOptions returns the parameters the options' schema validates:
// from the values themselves when they convert exactly (direct), else by
// reading their canonical JSON as any parameter document is read.
func decodeOptions(opts map[string]cty.Value, optJSON json.RawMessage) (params map[string]any, direct bool, err error) {
	if len(optJSON) <= schema.MaxParamsSize {
		if params, ok := optionParams(opts); ok {
			return params, true, nil
		}
	}
	params, err = schema.DecodeJSON(bytes.NewReader(optJSON))
	return params, false, err
}

// unchangedByValidation reports whether the validated parameters are the
// options as given, so that their JSON is optJSON: read directly from the
// values (valid UTF-8 strings, which encoding/json writes back as it
// wrote them; numbers kept as their text), no "$schema" (which validation
// drops), nothing defaulted (nothing is then removed either), nothing
// coerced.
func unchangedByValidation(direct bool, opts map[string]cty.Value, res *schema.Result) bool {
	_, dollar := opts["$schema"]
	return direct && !dollar && len(res.Defaults) == 0 && len(res.InvalidDefaults) == 0 && len(res.Coerced) == 0
}

// flatStrings reads a recipe's outputs when they are what recipes mostly
// return, an object of strings (or nulls), as go-cty's JSON decoding reads
// them (ImpliedType then Unmarshal: strings, null of the dynamic type)
// for a tenth of its allocations: that decoding reads every token twice.
// It puts them in into and reports true; for anything else — other
// values, a key given twice (go-cty refuses it when its values' types
// differ), invalid JSON — it reports false and leaves into alone, to
// go-cty.
func flatStrings(data []byte, into map[string]cty.Value) bool {
	// The object is valid JSON with no nested value: each member has the
	// one colon outside strings. With nothing else than the object's own
	// punctuation outside strings, every value is a string: no null to
	// tell apart, decoded without a pointer per value.
	members, inString, escaped, strs := 0, false, false, true
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == ':':
			members++
		case c == '{' || c == '}' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			strs = false
		}
	}
	if strs {
		var m map[string]string
		if json.Unmarshal(data, &m) != nil || m == nil || members != len(m) {
			return false
		}
		for k, v := range m {
			into[k] = cty.StringVal(v)
		}
		return true
	}
	var m map[string]*string
	if json.Unmarshal(data, &m) != nil || m == nil || members != len(m) {
		return false
	}
	for k, v := range m {
		if v == nil {
			into[k] = cty.NullVal(cty.DynamicPseudoType)
			continue
		}
		into[k] = cty.StringVal(*v)
	}
	return true
}
