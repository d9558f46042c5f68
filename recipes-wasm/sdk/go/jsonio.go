package recipe

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The call inputs and outputs are read and written here without
// encoding/json: compiled to WebAssembly, its reflection-driven decoder was
// 60% of a cookbook call's guest time (measurements in
// docs/adr/0014-guest-json-without-reflection.md). The reader decodes
// straight into the shapes of Options (int64 for integral numbers, float64
// otherwise, []any, map[string]any), which encoding/json with UseNumber
// followed by a normalising pass produced in two passes; the tests compare
// both on every input (FuzzDecodeInput) and the writer with encoding/json
// (TestMarshalOutput, FuzzAppendString).

// maxDepth bounds the nesting of arrays and objects, as encoding/json
// does, so a deep input is an error rather than a guest stack overflow.
const maxDepth = 10000

// jsonReader reads one JSON text from b. Strings are copied out of b, so
// nothing decoded refers to the input buffer, unless frozen says that b
// is itself an immutable copy (newFrozenReader): strings and keys are then
// substrings of it, one allocation for the whole input instead of one per
// string (each a mallocgc, which a WebAssembly guest pays dearly).
type jsonReader struct {
	b      []byte
	i      int
	depth  int
	frozen bool
	// base is the offset of b in the text errors locate.
	base int
}

// newFrozenReader reads a copy of b, made once, that nothing writes.
func newFrozenReader(b []byte) *jsonReader {
	s := string(b)
	return &jsonReader{b: unsafe.Slice(unsafe.StringData(s), len(s)), frozen: true}
}

// text returns b, which strBytes returned, as a string: without a copy
// when b is a slice of a frozen input or a buffer strBytes made for it
// (never written again), else copied.
func (r *jsonReader) text(b []byte) string {
	if r.frozen {
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(b)
}

func (r *jsonReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at byte %d", fmt.Sprintf(format, args...), r.base+r.i)
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte (0 at the end).
func (r *jsonReader) peek() byte {
	r.space()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// end checks that only white space follows the value.
func (r *jsonReader) end() error {
	if r.peek() != 0 || r.i < len(r.b) {
		return r.errorf("invalid character %q after the top-level value", r.b[r.i])
	}
	return nil
}

func (r *jsonReader) literal(word string) error {
	if len(r.b)-r.i < len(word) || string(r.b[r.i:r.i+len(word)]) != word {
		return r.errorf("invalid literal, expected %s", word)
	}
	r.i += len(word)
	return nil
}

// null consumes a null if one comes next.
func (r *jsonReader) null() (bool, error) {
	if r.peek() != 'n' {
		return false, nil
	}
	return true, r.literal("null")
}

// object reads an object, calling field for each member with the reader
// positioned at the member's value, which field must consume. key is
// valid only during the call (it may point into the input): matching it
// against known names allocates nothing.
func (r *jsonReader) object(field func(key []byte) error) error {
	if r.peek() != '{' {
		return r.unexpected("an object")
	}
	if r.depth++; r.depth > maxDepth {
		return r.errorf("exceeded max depth")
	}
	r.i++
	if r.peek() == '}' {
		r.i++
		r.depth--
		return nil
	}
	for {
		if r.peek() != '"' {
			return r.unexpected("a string (an object key)")
		}
		key, err := r.strBytes()
		if err != nil {
			return err
		}
		if r.peek() != ':' {
			return r.unexpected("':' after an object key")
		}
		r.i++
		if err := field(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			r.depth--
			return nil
		default:
			return r.unexpected("',' or '}' after an object member")
		}
	}
}

// array reads an array, calling elem for each element.
func (r *jsonReader) array(elem func() error) error {
	if r.peek() != '[' {
		return r.unexpected("an array")
	}
	if r.depth++; r.depth > maxDepth {
		return r.errorf("exceeded max depth")
	}
	r.i++
	if r.peek() == ']' {
		r.i++
		r.depth--
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			r.depth--
			return nil
		default:
			return r.unexpected("',' or ']' after an array element")
		}
	}
}

func (r *jsonReader) unexpected(want string) error {
	if r.i >= len(r.b) {
		return r.errorf("unexpected end of JSON input, expected %s", want)
	}
	return r.errorf("invalid character %q, expected %s", r.b[r.i], want)
}

// value reads any JSON value as Options holds it.
func (r *jsonReader) value() (any, error) {
	switch c := r.peek(); {
	case c == '"':
		return r.str()
	case c == '{':
		m := map[string]any{}
		return m, r.objectInto(m)
	case c == '[':
		l := []any{}
		err := r.array(func() error {
			v, err := r.value()
			l = append(l, v)
			return err
		})
		return l, err
	case c == 't':
		return true, r.literal("true")
	case c == 'f':
		return false, r.literal("false")
	case c == 'n':
		return nil, r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	}
	return nil, r.unexpected("a value")
}

// objectInto reads an object's members into m (a later duplicate key
// replaces an earlier one, as with encoding/json).
func (r *jsonReader) objectInto(m map[string]any) error {
	return r.object(func(key []byte) error {
		k := r.text(key)
		v, err := r.value()
		m[k] = v
		return err
	})
}

// number reads a number: int64 when it is written as an integer that
// fits, float64 otherwise (json.Number's Int64, then Float64).
func (r *jsonReader) number() (any, error) {
	start := r.i
	if err := r.scanNumber(); err != nil {
		return nil, err
	}
	if n, ok := smallInt(r.b[start:r.i]); ok {
		return n, nil
	}
	s := string(r.b[start:r.i])
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f, nil
}

// smallInt parses a number of at most 18 digits written as an integer,
// which int64 holds whatever the digits, as strconv.ParseInt would but
// without the string it needs (an allocation).
func smallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// scanNumber moves past a number, checking its syntax.
func (r *jsonReader) scanNumber() error {
	b := r.b
	i := r.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		r.i = i
		return r.unexpected("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			r.i = i
			return r.unexpected("a digit after the decimal point")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			r.i = i
			return r.unexpected("a digit in the exponent")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	r.i = i
	return nil
}

// str reads a string. Invalid UTF-8 and lone surrogates become U+FFFD,
// as encoding/json decodes them.
func (r *jsonReader) str() (string, error) {
	b, err := r.strBytes()
	if err != nil {
		return "", err
	}
	return r.text(b), nil
}

// strBytes reads a string: a slice of the input when the string has
// nothing to unescape or replace, else a new buffer.
func (r *jsonReader) strBytes() ([]byte, error) {
	if r.peek() != '"' {
		return nil, r.unexpected("a string")
	}
	r.i++
	start := r.i
	// Fast path: printable ASCII without escapes is used as is. IndexByte
	// is assembly in Go's WebAssembly port; a loop over bytes is not.
	if n := bytes.IndexByte(r.b[start:], '"'); n >= 0 {
		if s := r.b[start : start+n]; bytes.IndexByte(s, '\\') < 0 && printableASCII(s) {
			r.i = start + n + 1
			return s, nil
		}
	}
	// Slow path: runs of printable ASCII between escapes are copied
	// whole, the rest byte by byte.
	out := make([]byte, 0, max(bytes.IndexByte(r.b[start:], '"'), 16))
	i := start
	quote, backslash := -1, -1 // the next '"' and '\\' at or after i
	for {
		if quote < i {
			if quote = bytes.IndexByte(r.b[i:], '"'); quote < 0 {
				quote = len(r.b)
			} else {
				quote += i
			}
		}
		if backslash < i {
			if backslash = bytes.IndexByte(r.b[i:quote], '\\'); backslash < 0 {
				backslash = quote
			} else {
				backslash += i
			}
		}
		if n := printablePrefix(r.b[i:min(quote, backslash)]); n > 0 {
			out = append(out, r.b[i:i+n]...)
			i += n
		}
		if i >= len(r.b) {
			r.i = i
			return nil, r.unexpected("'\"' ending a string")
		}
		c := r.b[i]
		switch {
		case c == '"':
			r.i = i + 1
			return out, nil
		case c < 0x20:
			r.i = i
			return nil, r.errorf("invalid character %q in a string", c)
		case c == '\\':
			if i+1 >= len(r.b) {
				r.i = i + 1
				return nil, r.unexpected("an escape")
			}
			e := r.b[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				c1, ok := hex4(r.b, i)
				if !ok {
					r.i = i
					return nil, r.errorf("invalid \\u escape in a string")
				}
				i += 4
				if utf16.IsSurrogate(c1) {
					// A pair makes one rune; a lone half is U+FFFD.
					c2 := rune(-1)
					if i+1 < len(r.b) && r.b[i] == '\\' && r.b[i+1] == 'u' {
						if v, ok := hex4(r.b, i+2); ok {
							c2 = v
						}
					}
					if d := utf16.DecodeRune(c1, c2); d != utf8.RuneError {
						c1 = d
						i += 6
					} else {
						c1 = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, c1)
			default:
				r.i = i - 1
				return nil, r.errorf("invalid escape %q in a string", e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			rr, size := utf8.DecodeRune(r.b[i:])
			if rr == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, r.b[i:i+size]...)
			}
			i += size
		}
	}
}

// printableASCII reports whether s holds only bytes 0x20–0x7f, eight at a
// time: a byte below 0x20 borrows into its high bit when 0x20 is taken
// from it, a byte from 0x80 has it set.
func printableASCII(s []byte) bool {
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		if (x|(x-0x2020202020202020))&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// printablePrefix returns the length of the run of bytes 0x20–0x7f that
// s starts with, eight at a time as printableASCII does.
func printablePrefix(s []byte) int {
	n := 0
	for len(s)-n >= 8 {
		x := binary.LittleEndian.Uint64(s[n:])
		if (x|(x-0x2020202020202020))&0x8080808080808080 != 0 {
			break
		}
		n += 8
	}
	for n < len(s) && s[n] >= 0x20 && s[n] < utf8.RuneSelf {
		n++
	}
	return n
}

// hex4 parses the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var n rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | rune(c)
	}
	return n, true
}

// stringField reads a string or null (null leaves the field empty).
func (r *jsonReader) stringField() (string, error) {
	if isNull, err := r.null(); isNull || err != nil {
		return "", err
	}
	return r.str()
}

// mapField reads an object or null into a map, merging into m when the
// key came before (as encoding/json decodes into a non-nil map).
func (r *jsonReader) mapField(m map[string]any) (map[string]any, error) {
	if isNull, err := r.null(); isNull || err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, r.objectInto(m)
}

// stringsField reads an array of strings or null.
func (r *jsonReader) stringsField() ([]string, error) {
	if isNull, err := r.null(); isNull || err != nil {
		return nil, err
	}
	l := []string{}
	err := r.array(func() error {
		s, err := r.stringField()
		l = append(l, s)
		return err
	})
	return l, err
}

// skip moves past a value, checking its syntax without decoding it (an
// unknown member, which encoding/json ignores too).
// twoStrings reads null or an object of which the string members k1 and
// k2 are kept (in *p1, *p2) and any other member is skipped.
func (r *jsonReader) twoStrings(k1 string, p1 *string, k2 string, p2 *string) error {
	if isNull, err := r.null(); isNull || err != nil {
		return err
	}
	return r.object(func(key []byte) error {
		switch fieldName(key, k1, k2) {
		case k1:
			v, err := r.stringField()
			*p1 = v
			return err
		case k2:
			v, err := r.stringField()
			*p2 = v
			return err
		}
		return r.skip()
	})
}

func (r *jsonReader) skip() error {
	switch c := r.peek(); {
	case c == '"':
		_, err := r.strBytes()
		return err
	case c == '{':
		return r.object(func([]byte) error { return r.skip() })
	case c == '[':
		return r.array(r.skip)
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return r.scanNumber()
	}
	return r.unexpected("a value")
}

// contextCache keeps the last call context decoded: every call of a
// session (one partition's or one software's apply) sends the same one,
// so comparing its bytes saves decoding its ten strings again.
type contextCache struct {
	mu  sync.Mutex
	raw []byte
	ctx CallContext
}

// cachedContext reads the "context" member into c through cache (nil: no
// cache).
func (r *jsonReader) cachedContext(c *CallContext, cache *contextCache) error {
	if cache == nil || *c != (CallContext{}) {
		// A repeated "context" member merges into the first, as with
		// encoding/json: decode it in place.
		return r.callContext(c)
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	r.space()
	start := r.i
	if cache.raw != nil && bytes.HasPrefix(r.b[start:], cache.raw) {
		// The same bytes as a context decoded before: a JSON object or
		// null ends where its text says, so these are that whole value,
		// already checked, and need no scan.
		r.i += len(cache.raw)
	} else {
		if err := r.skip(); err != nil {
			return err
		}
		// Decoded from a copy of its own text, so that the strings the
		// memo keeps hold on to that only, not to the whole input.
		sub := newFrozenReader(r.b[start:r.i])
		sub.depth, sub.base = r.depth, r.base+start
		var fresh CallContext
		if err := sub.callContext(&fresh); err != nil {
			return err
		}
		cache.raw = append(cache.raw[:0], r.b[start:r.i]...)
		cache.ctx = fresh
	}
	*c = cache.ctx
	if c.Partition != nil {
		// A recipe gets its own copy, as a decoded one would be.
		p := *c.Partition
		c.Partition = &p
	}
	return nil
}

// fieldName matches key against the known names of a shape: exactly, or
// else ignoring case as encoding/json matches struct fields.
func fieldName(key []byte, names ...string) string {
	for _, n := range names {
		if string(key) == n {
			return n
		}
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return n
		}
	}
	return ""
}

// topObject reads the top-level object of an input, or a null, which
// encoding/json decodes into a struct as nothing at all.
func (r *jsonReader) topObject(field func(key []byte) error) error {
	if isNull, err := r.null(); isNull || err != nil {
		return err
	}
	return r.object(field)
}

// decodeRecipeInput reads a recipe entry point's input (docs/wasm-abi.md
// §4.1), its context through cache when not nil.
func decodeRecipeInput(b []byte, cache *contextCache) (in recipeInput, err error) {
	r := newFrozenReader(b)
	err = r.topObject(func(key []byte) error {
		var err error
		switch fieldName(key, "recipe", "part", "phase", "options", "context", "previous") {
		case "recipe":
			in.Recipe, err = r.stringField()
		case "part":
			in.Part, err = r.stringField()
		case "phase":
			in.Phase, err = r.stringField()
		case "options":
			in.Options, err = r.mapField(in.Options)
		case "context":
			err = r.cachedContext(&in.Context, cache)
		case "previous":
			in.Previous, err = r.previous(in.Previous)
		default:
			err = r.skip()
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	return in, err
}

// decodePromiseInput reads promise_check's input (docs/wasm-abi.md §5),
// its context through cache when not nil.
func decodePromiseInput(b []byte, cache *contextCache) (in promiseInput, err error) {
	r := newFrozenReader(b)
	err = r.topObject(func(key []byte) error {
		var err error
		switch fieldName(key, "promise", "name", "options", "context") {
		case "promise":
			in.Promise, err = r.stringField()
		case "name":
			in.Name, err = r.stringField()
		case "options":
			in.Options, err = r.mapField(in.Options)
		case "context":
			err = r.cachedContext(&in.Context, cache)
		default:
			err = r.skip()
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	return in, err
}

func (r *jsonReader) previous(p *Previous) (*Previous, error) {
	if isNull, err := r.null(); isNull || err != nil {
		return nil, err
	}
	if p == nil {
		p = &Previous{}
	}
	return p, r.object(func(key []byte) error {
		var err error
		switch fieldName(key, "options", "outputs", "installed") {
		case "options":
			p.Options, err = r.mapField(p.Options)
		case "outputs":
			p.Outputs, err = r.mapField(p.Outputs)
		case "installed":
			p.Installed, err = r.stringsField()
		default:
			err = r.skip()
		}
		return err
	})
}

func (r *jsonReader) callContext(c *CallContext) error {
	if isNull, err := r.null(); isNull || err != nil {
		return err
	}
	return r.object(func(key []byte) error {
		var err error
		switch fieldName(key, "kind", "partition", "software", "profile_dir", "cache_dir", "node") {
		case "kind":
			c.Kind, err = r.stringField()
		case "partition":
			if isNull, err := r.null(); isNull || err != nil {
				c.Partition = nil
				return err
			}
			if c.Partition == nil {
				c.Partition = &Partition{}
			}
			p := c.Partition
			err = r.object(func(key []byte) error {
				var err error
				switch fieldName(key, "id", "path", "user", "ipv4", "ipv6") {
				case "id":
					p.ID, err = r.stringField()
				case "path":
					p.Path, err = r.stringField()
				case "user":
					p.User, err = r.stringField()
				case "ipv4":
					p.IPv4, err = r.stringField()
				case "ipv6":
					p.IPv6, err = r.stringField()
				default:
					err = r.skip()
				}
				return err
			})
		case "software":
			err = r.twoStrings("path", &c.Software.Path, "url", &c.Software.URL)
		case "profile_dir":
			c.ProfileDir, err = r.stringField()
		case "cache_dir":
			c.CacheDir, err = r.stringField()
		case "node":
			err = r.twoStrings("id", &c.Node.ID, "root", &c.Node.Root)
		default:
			err = r.skip()
		}
		return err
	})
}

// appendString appends s as a JSON string the way encoding/json does
// without HTML escaping: control characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	// Fast path: printable ASCII without quote or backslash, checked with
	// assembly and eight bytes at a time (the input is only read).
	if strings.IndexByte(s, '"') < 0 && strings.IndexByte(s, '\\') < 0 && printableASCII(unsafe.Slice(unsafe.StringData(s), len(s))) {
		return append(append(dst, s...), '"')
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		rr, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case rr == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case rr == '\u2028' || rr == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[rr&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendValue appends v as JSON. The JSON values recipes return are
// written here; anything else (a float, a struct a recipe put in its
// outputs) goes through encoding/json, whose output it matches.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendStrings(dst, x), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		return appendObject(dst, x)
	case Options:
		return appendObject(dst, x)
	}
	b, err := marshalStd(v)
	return append(dst, b...), err
}

// appendObject writes m with its keys sorted, as encoding/json does.
func appendObject(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	// The keys of the usual few outputs sort on the stack.
	var small [8]string
	keys := small[:0]
	if len(m) > len(small) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, m[k]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendStrings(dst []byte, l []string) []byte {
	dst = append(dst, '[')
	for i, s := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// marshalRecipeOutput writes out as RecipeOutput's json tags say.
func marshalRecipeOutput(out RecipeOutput) ([]byte, error) {
	return appendRecipeOutput(make([]byte, 0, 256), out)
}

// appendRecipeOutput is marshalRecipeOutput writing at the end of dst.
func appendRecipeOutput(dst []byte, out RecipeOutput) ([]byte, error) {
	dst = append(dst, `{"outputs":`...)
	dst, err := appendObject(dst, out.Outputs)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `,"installed":`...)
	dst, _ = appendValue(dst, out.Installed)
	dst = append(dst, `,"messages":`...)
	dst, _ = appendValue(dst, out.Messages)
	dst = append(dst, `,"error":`...)
	dst = appendString(dst, out.Error)
	return append(dst, '}'), nil
}

// marshalCheckOutput writes out as CheckOutput's json tags say.
func marshalCheckOutput(out CheckOutput) []byte {
	return appendCheckOutput(make([]byte, 0, 64+len(out.Message)), out)
}

// appendCheckOutput is marshalCheckOutput writing at the end of dst.
func appendCheckOutput(dst []byte, out CheckOutput) []byte {
	dst = append(dst, `{"ok":`...)
	dst = strconv.AppendBool(dst, out.OK)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, out.Message)
	return append(dst, '}')
}

// marshalStd encodes v with encoding/json without HTML escaping.
func marshalStd(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// decodeHostError reads a host function's response of the form {} or
// {"error": "..."} (docs/wasm-abi.md §6) and returns its error field.
func decodeHostError(b []byte) (msg string, err error) {
	r := &jsonReader{b: b}
	err = r.object(func(key []byte) error {
		var err error
		if fieldName(key, "error") == "error" {
			msg, err = r.stringField()
		} else {
			err = r.skip()
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	return msg, err
}

// decodeWriteFileResponse reads slapnode.write_file's answer: {} or
// {"error": "...", "missing_dir": true}.
func decodeWriteFileResponse(b []byte) (msg string, missingDir bool, err error) {
	r := &jsonReader{b: b}
	err = r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "error":
			msg, err = r.stringField()
		case "missing_dir":
			var v any
			v, err = r.value()
			missingDir = v == true
		default:
			err = r.skip()
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	return msg, missingDir, err
}

// decodeMkdirResponse reads slapnode.mkdir's answer: {"created": N} or
// {"error": "...", "fallback": true}.
func decodeMkdirResponse(b []byte) (created int, msg string, fallback bool, err error) {
	r := &jsonReader{b: b}
	err = r.object(func(key []byte) error {
		var err error
		var v any
		switch string(key) {
		case "error":
			msg, err = r.stringField()
		case "created":
			if v, err = r.value(); err == nil {
				n, ok := v.(int64)
				if !ok || n < 0 {
					return r.errorf("created: %v is not a count", v)
				}
				created = int(n)
			}
		case "fallback":
			v, err = r.value()
			fallback = v == true
		default:
			err = r.skip()
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	return created, msg, fallback, err
}
