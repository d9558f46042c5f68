package slap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// DictToXML renders parameters as slapos.util.dict2xml does: the instance
// XML that slapproxy stores and SlapOS masters exchange,
//
//	<?xml version='1.0' encoding='utf-8'?>
//	<instance>
//	  <parameter id="k">v</parameter>
//	</instance>
//
// with keys sorted and every value turned into text by Python's str(), so
// 3 becomes "3", true "True" and nil "None". That conversion is why
// parameters always come back as strings.
func DictToXML(params map[string]any) (string, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n")
	if len(params) == 0 {
		b.WriteString("<instance/>\n")
		return b.String(), nil
	}
	b.WriteString("<instance>\n")
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(`  <parameter id="`)
		if err := writeAttr(&b, k); err != nil {
			return "", fmt.Errorf("parameter name: %w", err)
		}
		b.WriteString(`">`)
		if err := writeText(&b, PyStr(params[k]), false); err != nil {
			return "", fmt.Errorf("parameter %q: %w", k, err)
		}
		b.WriteString("</parameter>\n")
	}
	b.WriteString("</instance>\n")
	return b.String(), nil
}

// writeAttr escapes an attribute value as libxml2 does.
func writeAttr(b *bytes.Buffer, s string) error {
	var t bytes.Buffer
	if err := writeText(&t, s, false); err != nil {
		return err
	}
	r := strings.NewReplacer(`"`, "&quot;", "\n", "&#10;", "\t", "&#9;")
	b.WriteString(r.Replace(t.String()))
	return nil
}

// XMLToDict reads instance XML as slapos.util.xml2dict does: every
// <parameter id> under the root, values as strings; an empty parameter is
// nil (lxml's text of an empty element is None) and a repeated id gets its
// values joined with a space. Empty input is an empty map.
func XMLToDict(doc string) (map[string]any, error) {
	out := map[string]any{}
	if strings.TrimSpace(doc) == "" {
		return out, nil
	}
	d := xml.NewDecoder(strings.NewReader(doc))
	depth := 0
	var key string
	var text *strings.Builder
	for {
		t, err := d.Token()
		if err != nil {
			if depth == 0 && errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("instance XML: %w", err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Local == "parameter" {
				key = attr(t, "id")
				text = &strings.Builder{}
			}
		case xml.CharData:
			if depth == 2 && text != nil {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 2 && text != nil {
				var v any
				if text.Len() > 0 {
					v = text.String()
				}
				if prev, ok := out[key]; ok && prev != nil && v != nil {
					v = prev.(string) + " " + v.(string)
				}
				out[key] = v
				text = nil
			}
			depth--
			if depth == 0 {
				return out, nil
			}
		}
	}
}

// PyStr is Python's str() of a value decoded from the wire: what dict2xml
// stores for non-string parameters.
func PyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return PyRepr(v)
}

// PyRepr is Python's repr() of a wire value (strings quoted the way Python
// quotes them). Dictionaries are shown with sorted keys, since Go maps keep
// no insertion order.
func PyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return pyQuote(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return PyFloat(x)
	case []any:
		return "[" + joinRepr(x) + "]"
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return "[" + joinRepr(l) + "]"
	case Tuple:
		if len(x) == 1 {
			return "(" + PyRepr(x[0]) + ",)"
		}
		return "(" + joinRepr(x) + ")"
	case Set:
		if len(x) == 0 {
			return "set()"
		}
		return "{" + joinRepr(x) + "}"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyQuote(k) + ": " + PyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return PyRepr(m)
	case *Object:
		return "<" + ObjectModule + "." + x.Class + " object>"
	}
	return fmt.Sprint(v)
}

func joinRepr(l []any) string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = PyRepr(e)
	}
	return strings.Join(parts, ", ")
}

// pyQuote quotes s as Python's repr(str): single quotes unless s holds a
// single quote and no double quote.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && !unicode.IsPrint(r):
			switch {
			case r <= 0xff:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
