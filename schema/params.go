package schema

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseKeyValues turns --param arguments into parameters.
//
//	key=value    the string "value" (like SlapOS's --parameters k=v)
//	key:=JSON    a JSON value: port:=8080, debug:=true, tags:='["a","b"]'
//
// The key is everything before the first "=" (or ":="), so a value may
// contain "=". A key given twice is an error rather than a silent choice.
func ParseKeyValues(pairs []string) (map[string]any, error) {
	out := make(map[string]any, len(pairs))
	for _, p := range pairs {
		i := strings.IndexByte(p, '=')
		if i < 0 {
			return nil, fmt.Errorf("schema: parameter %q: expected key=value or key:=JSON", p)
		}
		key, val := p[:i], p[i+1:]
		isJSON := strings.HasSuffix(key, ":")
		if isJSON {
			key = key[:len(key)-1]
		}
		if key == "" {
			return nil, fmt.Errorf("schema: parameter %q has an empty name", p)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("schema: parameter %q given twice", key)
		}
		if !isJSON {
			out[key] = val
			continue
		}
		v, err := decodeJSONValue([]byte(val))
		if err != nil {
			return nil, fmt.Errorf("schema: parameter %q: value after := is not JSON (quote strings, e.g. %s:='\"text\"', or use %s=text): %w", key, key, key, err)
		}
		out[key] = v
	}
	return out, nil
}

func decodeJSONValue(data []byte) (any, error) {
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// DecodeJSON reads a JSON object of parameters, keeping numbers exact
// (json.Number).
func DecodeJSON(r io.Reader) (map[string]any, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxParamsSize+1))
	if err != nil {
		return nil, fmt.Errorf("schema: read parameters: %w", err)
	}
	if len(data) > MaxParamsSize {
		return nil, fmt.Errorf("schema: parameter document larger than %d MiB", MaxParamsSize>>20)
	}
	if err := checkDepth(data); err != nil {
		return nil, fmt.Errorf("schema: parameters are %w", err)
	}
	v, err := decodeJSONValue(data)
	if err != nil {
		return nil, fmt.Errorf("schema: parameters are not valid JSON: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema: parameters must be a JSON object, not %s", jsonTypeOf(v))
	}
	return m, nil
}

// ParseInstanceXML reads SlapOS instance XML
//
//	<instance><parameter id="k">v</parameter>…</instance>
//
// and returns the parameters and their serialisation: SerialisationJSONInXML
// when the only parameter is "_" holding a JSON object (its decoded content
// is returned), SerialisationXML otherwise (every value a string; a repeated
// id has its values joined by a space, as SlapOS's xml2dict does).
func ParseInstanceXML(r io.Reader) (map[string]any, string, error) {
	dec := xml.NewDecoder(&boundedReader{r: r, limit: MaxParamsSize, what: "instance XML"})
	var root *xml.StartElement
	for root == nil {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, "", errors.New("schema: instance XML is empty (expected <instance>)")
		}
		if err != nil {
			return nil, "", fmt.Errorf("schema: instance XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = &se
		}
	}
	if root.Name.Local != "instance" {
		return nil, "", fmt.Errorf("schema: instance XML: root element is <%s>, expected <instance>", root.Name.Local)
	}
	params := map[string]any{}
	var order []string
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", fmt.Errorf("schema: instance XML: %w", err)
		}
		if ee, ok := tok.(xml.EndElement); ok && ee.Name.Local == "instance" {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != "parameter" {
			return nil, "", fmt.Errorf("schema: instance XML: unexpected <%s> in <instance>, only <parameter id=\"…\"> is allowed", se.Name.Local)
		}
		id, hasID := "", false
		for _, a := range se.Attr {
			if a.Name.Local == "id" {
				id, hasID = a.Value, true
			}
		}
		if !hasID {
			return nil, "", errors.New("schema: instance XML: <parameter> without id attribute")
		}
		var text string
		if err := dec.DecodeElement(&text, &se); err != nil {
			return nil, "", fmt.Errorf("schema: instance XML: parameter %q: %w", id, err)
		}
		if prev, dup := params[id]; dup {
			params[id] = prev.(string) + " " + text
		} else {
			params[id] = text
			order = append(order, id)
		}
	}
	if len(order) == 1 && order[0] == "_" {
		v, err := decodeJSONValue([]byte(params["_"].(string)))
		if errors.Is(err, ErrTooDeep) {
			return nil, "", fmt.Errorf("schema: instance XML: parameter \"_\" (json-in-xml) is %w", err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("schema: instance XML: parameter \"_\" (json-in-xml) is not valid JSON: %w", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("schema: instance XML: parameter \"_\" (json-in-xml) must hold a JSON object, not %s", jsonTypeOf(v))
		}
		return m, SerialisationJSONInXML, nil
	}
	return params, SerialisationXML, nil
}

// InstanceXML writes parameters the way SlapOS's dict2xml does: keys
// sorted, one <parameter> each, non-string values as JSON text. For
// json-in-xml, pass {"_": "<JSON document>"}.
func InstanceXML(params map[string]any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<instance>\n")
	for _, k := range sortedKeys(params) {
		var s string
		switch v := params[k].(type) {
		case string:
			s = v
		default:
			j, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("schema: parameter %q: %w", k, err)
			}
			s = string(j)
		}
		b.WriteString(`  <parameter id="`)
		if err := xml.EscapeText(&b, []byte(k)); err != nil {
			return nil, err
		}
		b.WriteString(`">`)
		if err := xml.EscapeText(&b, []byte(s)); err != nil {
			return nil, err
		}
		b.WriteString("</parameter>\n")
	}
	b.WriteString("</instance>\n")
	return b.Bytes(), nil
}
