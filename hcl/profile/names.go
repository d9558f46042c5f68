package profile

import (
	"fmt"
	"strconv"
	"strings"
)

// EncodeName turns any name (a buildout section or option name) into an
// HCL identifier with the reversible encoding of docs/profiles.md §1.7:
// ASCII letters, digits, `_` and `-` are kept; every other byte becomes
// `__XX` (lowercase hex); a leading digit or `-` is encoded the same way;
// a literal `__` is written `__5f5f` so that `__` always starts an escape.
// A name that is already an identifier without `__` is returned unchanged.
func EncodeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' && i+1 < len(name) && name[i+1] == '_':
			b.WriteString("__5f5f")
			i++
		case i == 0 && (c >= '0' && c <= '9' || c == '-'):
			fmt.Fprintf(&b, "__%02x", c)
		case c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "__%02x", c)
		}
	}
	return b.String()
}

// DecodeName reverses EncodeName. It fails on text EncodeName cannot
// produce, so a hand-written name is never decoded to something else
// silently.
func DecodeName(id string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(id); {
		if strings.HasPrefix(id[i:], "__") {
			if strings.HasPrefix(id[i:], "__5f5f") {
				b.WriteString("__")
				i += 6
				continue
			}
			if i+4 <= len(id) && isLowerHex(id[i+2]) && isLowerHex(id[i+3]) {
				c, _ := strconv.ParseUint(id[i+2:i+4], 16, 8)
				b.WriteByte(byte(c))
				i += 4
				continue
			}
			// `_` followed by an escape (`___2e` is "_" then ".").
			b.WriteByte('_')
			i++
			continue
		}
		b.WriteByte(id[i])
		i++
	}
	out := b.String()
	if EncodeName(out) != id {
		return "", fmt.Errorf("decode %q: not a name produced by the encoding of docs/profiles.md §1.7 (it would be written %q)", id, EncodeName(out))
	}
	return out, nil
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
