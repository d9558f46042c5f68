// Package slap speaks SlapOS's SLAP protocol: the xml_marshaller encoding
// that slapos.util's dumps/loads produce, the instance-parameter XML
// (<instance><parameter id="…">), the protocol's objects (Computer,
// ComputerPartition, SoftwareRelease, SoftwareInstance) and a client for the
// legacy form-encoded endpoints that slapgrid and `slapos request` use.
//
// Everything here is byte-compatible with slapos.core 1.24.0 and its
// slapproxy, as captured in the reference wire samples: the same bytes go out
// for the same values, so a node built on this package can talk to a real
// SlapOS master, and slapnode's master can serve a real slapgrid.
package slap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Values understood by Marshal and produced by Unmarshal:
//
//	nil                         <none/>
//	string                      <string> (escaped twice, non-ASCII as &#N;)
//	bool                        <bool>1</bool> / <bool>0</bool>
//	int, int64                  <int>
//	float64                     <float> (Python repr)
//	[]any ([]string accepted)   <list id="iN">
//	Tuple                       <tuple> (no id)
//	map[string]any (…string)    <dictionary id="iN">, keys sorted
//	Set                         <set id="iN">
//	*Object                     <object id="iN" module="slapos.slap.slap" class="…">

// Tuple is a Python tuple: marshalled without an id.
type Tuple []any

// Set is a Python set; its elements keep the order they were read in.
type Set []any

// Object is a marshalled instance of one of the four slapos.slap.slap
// classes SlapOS's safe unmarshaller accepts.
type Object struct {
	Class string         // Computer, ComputerPartition, SoftwareRelease or SoftwareInstance
	Args  Tuple          // __getinitargs__
	Dict  map[string]any // __dict__
}

// ObjectModule is the only module objects may come from.
const ObjectModule = "slapos.slap.slap"

// allowedClasses are the classes slapos.util's safe unmarshaller accepts;
// anything else in a document is refused, as upstream does, so that a
// malicious peer cannot make either side build arbitrary objects.
var allowedClasses = map[string]bool{
	"Computer": true, "ComputerPartition": true, "SoftwareRelease": true, "SoftwareInstance": true,
}

// ErrSyntax is wrapped by every Unmarshal error about a malformed document.
var ErrSyntax = errors.New("not a valid xml_marshaller document")

// Marshal encodes v the way slapos.util.dumps does, byte for byte.
func Marshal(v any) ([]byte, error) {
	e := encoder{next: 2}
	e.buf.WriteString("<marshal>")
	if err := e.value(v); err != nil {
		return nil, err
	}
	e.buf.WriteString("</marshal>")
	return e.buf.Bytes(), nil
}

// MustMarshal is Marshal for values built by the program itself (never from
// input), where an error is a programming mistake.
func MustMarshal(v any) []byte {
	b, err := Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type encoder struct {
	buf  bytes.Buffer
	next int // the id counter: one per list, dict, set and object, from i2
}

func (e *encoder) id() string {
	s := "i" + strconv.Itoa(e.next)
	e.next++
	return s
}

func (e *encoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf.WriteString("<none/>")
	case string:
		e.buf.WriteString("<string>")
		if err := writeText(&e.buf, pyEscape(x), true); err != nil {
			return err
		}
		e.buf.WriteString("</string>")
	case bool:
		if x {
			e.buf.WriteString("<bool>1</bool>")
		} else {
			e.buf.WriteString("<bool>0</bool>")
		}
	case int:
		e.buf.WriteString("<int>" + strconv.Itoa(x) + "</int>")
	case int64:
		e.buf.WriteString("<int>" + strconv.FormatInt(x, 10) + "</int>")
	case float64:
		e.buf.WriteString("<float>" + PyFloat(x) + "</float>")
	case Tuple:
		if len(x) == 0 {
			e.buf.WriteString("<tuple/>")
			return nil
		}
		e.buf.WriteString("<tuple>")
		for _, c := range x {
			if err := e.value(c); err != nil {
				return err
			}
		}
		e.buf.WriteString("</tuple>")
	case []any:
		return e.seq("list", x)
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return e.seq("list", l)
	case Set:
		return e.seq("set", x)
	case map[string]any:
		return e.dict(x)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return e.dict(m)
	case *Object:
		if !allowedClasses[x.Class] {
			return fmt.Errorf("marshal: class %q is not one of slapos.slap.slap's Computer, ComputerPartition, SoftwareRelease, SoftwareInstance", x.Class)
		}
		e.buf.WriteString(`<object id="` + e.id() + `" module="` + ObjectModule + `" class="` + x.Class + `">`)
		if err := e.value(x.Args); err != nil {
			return err
		}
		if err := e.dict(x.Dict); err != nil {
			return err
		}
		e.buf.WriteString("</object>")
	default:
		return fmt.Errorf("marshal: cannot encode a Go %T; use nil, string, bool, int, float64, []any, Tuple, Set, map[string]any or *slap.Object", v)
	}
	return nil
}

func (e *encoder) seq(tag string, l []any) error {
	id := e.id()
	if len(l) == 0 {
		e.buf.WriteString("<" + tag + ` id="` + id + `"/>`)
		return nil
	}
	e.buf.WriteString("<" + tag + ` id="` + id + `">`)
	for _, c := range l {
		if err := e.value(c); err != nil {
			return err
		}
	}
	e.buf.WriteString("</" + tag + ">")
	return nil
}

func (e *encoder) dict(m map[string]any) error {
	id := e.id()
	if len(m) == 0 {
		e.buf.WriteString(`<dictionary id="` + id + `"/>`)
		return nil
	}
	e.buf.WriteString(`<dictionary id="` + id + `">`)
	// Python sorts str keys by code point; Go compares UTF-8 bytes, which
	// orders code points the same way.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := e.value(k); err != nil {
			return err
		}
		if err := e.value(m[k]); err != nil {
			return err
		}
	}
	e.buf.WriteString("</dictionary>")
	return nil
}

// pyEscape is xml.sax.saxutils.escape: the first of the two escapings a
// marshalled string goes through.
func pyEscape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	s = strings.ReplaceAll(s, "&", "&amp;")
	s = strings.ReplaceAll(s, ">", "&gt;")
	return strings.ReplaceAll(s, "<", "&lt;")
}

// pyUnescape is xml.sax.saxutils.unescape, in its order (&amp; last), so
// that "&amp;lt;" becomes "&lt;" and not "<".
func pyUnescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	s = strings.ReplaceAll(s, "&lt;", "<")
	s = strings.ReplaceAll(s, "&gt;", ">")
	return strings.ReplaceAll(s, "&amp;", "&")
}

// writeText escapes text content as libxml2 serialises it: &, <, > and \r
// as entities; with ascii, every non-ASCII character as a decimal character
// reference (lxml's default ASCII output), else as UTF-8. Characters XML
// cannot carry are refused, as lxml refuses them.
func writeText(b *bytes.Buffer, s string, ascii bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("marshal: string %q is not valid UTF-8", truncate(s))
	}
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#13;")
		case r == '\t' || r == '\n':
			b.WriteRune(r)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r < 0xE000):
			return fmt.Errorf("marshal: string %q holds the character U+%04X, which XML cannot carry", truncate(s), r)
		case r >= 0x80 && ascii:
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
		default:
			b.WriteRune(r)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// PyFloat formats f as Python's repr(float) does: shortest round-trip
// digits, fixed notation for exponents in [-4, 16), always with a fraction
// or an exponent ("3.0", "1e+16", "1.5e-05"). slapproxy's timestamps are
// str(time.time()), so this is what makes them match.
func PyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}

// maxDepth bounds nesting so that a hostile document cannot exhaust the
// stack; real documents are less than ten levels deep.
const maxDepth = 200

// Unmarshal decodes a document produced by slapos.util.dumps (or Marshal).
// Strings are unescaped once more after XML parsing, as slapos.util.loads
// does; <unicode> is read as a string; <reference> resolves to the container
// it names. Objects of any class but the four slapos.slap.slap ones are
// refused.
func Unmarshal(data []byte) (any, error) {
	d := decoder{x: xml.NewDecoder(bytes.NewReader(data)), refs: map[string]any{}}
	d.x.Strict = true
	start, err := d.nextStart()
	if err != nil {
		return nil, err
	}
	if start.Name.Local != "marshal" {
		return nil, fmt.Errorf("%w: the root element is <%s>, want <marshal>", ErrSyntax, start.Name.Local)
	}
	v, end, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if end {
		return nil, fmt.Errorf("%w: <marshal> is empty", ErrSyntax)
	}
	if err := d.expectEnd("marshal"); err != nil {
		return nil, err
	}
	return v, nil
}

type decoder struct {
	x     *xml.Decoder
	refs  map[string]any
	stack []string // open elements: RawToken does not check nesting, so we do
}

// token is xml.Decoder.Token without its namespace bookkeeping, which
// costs more than the rest of decoding: RawToken plus a check that every
// end tag closes the element it should.
func (d *decoder) token() (xml.Token, error) {
	t, err := d.x.RawToken()
	if err != nil {
		if err == io.EOF && len(d.stack) > 0 {
			return nil, fmt.Errorf("<%s> is not closed", d.stack[len(d.stack)-1])
		}
		return nil, err
	}
	switch t := t.(type) {
	case xml.StartElement:
		d.stack = append(d.stack, t.Name.Local)
	case xml.EndElement:
		if len(d.stack) == 0 || d.stack[len(d.stack)-1] != t.Name.Local || t.Name.Space != "" {
			return nil, fmt.Errorf("unexpected </%s>", t.Name.Local)
		}
		d.stack = d.stack[:len(d.stack)-1]
	}
	return t, nil
}

// nextStart skips to the next start element.
func (d *decoder) nextStart() (xml.StartElement, error) {
	for {
		t, err := d.token()
		if err != nil {
			return xml.StartElement{}, d.wrap(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, fmt.Errorf("%w: unexpected text %q", ErrSyntax, truncate(string(t)))
			}
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("%w: unexpected </%s>", ErrSyntax, t.Name.Local)
		}
	}
}

func (d *decoder) wrap(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: document ends too early", ErrSyntax)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

// value reads the next value; end is true when the enclosing element ended
// instead.
func (d *decoder) value(depth int) (v any, end bool, err error) {
	if depth > maxDepth {
		return nil, false, fmt.Errorf("%w: nested deeper than %d levels", ErrSyntax, maxDepth)
	}
	var start xml.StartElement
	for {
		t, err := d.token()
		if err != nil {
			return nil, false, d.wrap(err)
		}
		if s, ok := t.(xml.StartElement); ok {
			start = s
			break
		}
		if _, ok := t.(xml.EndElement); ok {
			return nil, true, nil
		}
		if c, ok := t.(xml.CharData); ok && len(bytes.TrimSpace(c)) != 0 {
			return nil, false, fmt.Errorf("%w: unexpected text %q", ErrSyntax, truncate(string(c)))
		}
	}
	tag := start.Name.Local
	if start.Name.Space != "" {
		return nil, false, fmt.Errorf("%w: unknown element <%s:%s>", ErrSyntax, start.Name.Space, tag)
	}
	switch tag {
	case "none":
		return nil, false, d.expectEnd(tag)
	case "string", "unicode":
		s, err := d.text(tag)
		return pyUnescape(s), false, err
	case "int", "long":
		s, err := d.text(tag)
		if err != nil {
			return nil, false, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("%w: <%s>%s</%s> is not a 64-bit integer", ErrSyntax, tag, truncate(s), tag)
		}
		return int(n), false, nil
	case "float":
		s, err := d.text(tag)
		if err != nil {
			return nil, false, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, false, fmt.Errorf("%w: <float>%s</float> is not a number", ErrSyntax, truncate(s))
		}
		return f, false, nil
	case "bool":
		s, err := d.text(tag)
		if err != nil {
			return nil, false, err
		}
		switch strings.TrimSpace(s) {
		case "1", "True":
			return true, false, nil
		case "0", "False":
			return false, false, nil
		}
		return nil, false, fmt.Errorf("%w: <bool>%s</bool> is neither 1 nor 0", ErrSyntax, truncate(s))
	case "tuple":
		l, err := d.items(depth)
		return Tuple(l), false, err
	case "list", "set":
		var l []any
		if tag == "list" {
			l = []any{}
		} else {
			l = Set{}
		}
		// Register before reading the children, so that a reference
		// inside resolves; a reference to a list still being read sees
		// its empty placeholder (cycles are not representable in Go).
		d.register(start, l)
		items, err := d.items(depth)
		if err != nil {
			return nil, false, err
		}
		if tag == "set" {
			v = Set(items)
		} else {
			v = items
		}
		d.register(start, v)
		return v, false, nil
	case "dictionary":
		m := map[string]any{}
		d.register(start, m)
		return m, false, d.dictItems(m, depth)
	case "object":
		return d.object(start, depth)
	case "reference":
		id := attr(start, "id")
		v, ok := d.refs[id]
		if !ok {
			return nil, false, fmt.Errorf("%w: <reference id=%q/> names no earlier container", ErrSyntax, id)
		}
		return v, false, d.expectEnd(tag)
	}
	return nil, false, fmt.Errorf("%w: unknown element <%s>", ErrSyntax, tag)
}

func (d *decoder) register(start xml.StartElement, v any) {
	if id := attr(start, "id"); id != "" {
		d.refs[id] = v
	}
}

func attr(s xml.StartElement, name string) string {
	for _, a := range s.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (d *decoder) items(depth int) ([]any, error) {
	l := []any{}
	for {
		v, end, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if end {
			return l, nil
		}
		l = append(l, v)
	}
}

func (d *decoder) dictItems(m map[string]any, depth int) error {
	for {
		k, end, err := d.value(depth + 1)
		if err != nil {
			return err
		}
		if end {
			return nil
		}
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("%w: a dictionary key is a %T; only string keys are supported", ErrSyntax, k)
		}
		v, end, err := d.value(depth + 1)
		if err != nil {
			return err
		}
		if end {
			return fmt.Errorf("%w: dictionary key %q has no value", ErrSyntax, key)
		}
		m[key] = v
	}
}

func (d *decoder) object(start xml.StartElement, depth int) (any, bool, error) {
	module, class := attr(start, "module"), attr(start, "class")
	if module != ObjectModule || !allowedClasses[class] {
		return nil, false, fmt.Errorf("%w: refusing an object of class %s.%s (only %s's Computer, ComputerPartition, SoftwareRelease and SoftwareInstance are allowed)", ErrSyntax, module, class, ObjectModule)
	}
	o := &Object{Class: class}
	d.register(start, o)
	args, end, err := d.value(depth + 1)
	if err != nil {
		return nil, false, err
	}
	if !end {
		t, ok := args.(Tuple)
		if !ok {
			return nil, false, fmt.Errorf("%w: object %s's first child is a %T, want <tuple>", ErrSyntax, class, args)
		}
		o.Args = t
		state, end, err := d.value(depth + 1)
		if err != nil {
			return nil, false, err
		}
		if !end {
			m, ok := state.(map[string]any)
			if !ok {
				return nil, false, fmt.Errorf("%w: object %s's state is a %T, want <dictionary>", ErrSyntax, class, state)
			}
			o.Dict = m
			if err := d.expectEnd("object"); err != nil {
				return nil, false, err
			}
		}
	}
	if o.Dict == nil {
		o.Dict = map[string]any{}
	}
	return o, false, nil
}

// text reads character data up to the end of tag.
func (d *decoder) text(tag string) (string, error) {
	var sb strings.Builder
	for {
		t, err := d.token()
		if err != nil {
			return "", d.wrap(err)
		}
		switch t := t.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("%w: <%s> inside <%s>", ErrSyntax, t.Name.Local, tag)
		}
	}
}

func (d *decoder) expectEnd(tag string) error {
	for {
		t, err := d.token()
		if err != nil {
			return d.wrap(err)
		}
		switch t := t.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			return fmt.Errorf("%w: unexpected <%s> inside <%s>", ErrSyntax, t.Name.Local, tag)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("%w: unexpected text %q in <%s>", ErrSyntax, truncate(string(t)), tag)
			}
		}
	}
}
