package recipe

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Options are a part's options as JSON values: string, bool, nil, int64
// (integral numbers), float64, []any and map[string]any. The host has
// validated them against the recipe's schema and applied its defaults; the
// accessors still check types, because a recipe can also be run without a
// host (tests) and because a clear error beats a panic.
type Options map[string]any

// Has reports whether the option is set (to anything but null).
func (o Options) Has(key string) bool {
	v, ok := o[key]
	return ok && v != nil
}

// Keys returns the option names, sorted.
func (o Options) Keys() []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// String returns a required string option. Numbers and booleans are
// formatted, as buildout options are all strings and profiles translated from
// buildout write "8080" and 8080 alike.
func (o Options) String(key string) (string, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return "", fmt.Errorf("option %q is required", key)
	}
	s, ok := scalarString(v)
	if !ok {
		return "", fmt.Errorf("option %q must be a string, not %s", key, TypeName(v))
	}
	return s, nil
}

// StringOr returns a string option, or def when it is absent or null.
func (o Options) StringOr(key, def string) (string, error) {
	if !o.Has(key) {
		return def, nil
	}
	return o.String(key)
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// Int returns an integer option (a JSON number or a decimal string), or def
// when it is absent.
func (o Options) Int(key string, def int64) (int64, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) {
			return int64(x), nil
		}
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("option %q must be an integer, not %s %v", key, TypeName(v), v)
}

// Bool returns a boolean option, or def when absent. Buildout spellings
// ("true"/"false", "yes"/"no", "on"/"off", "1"/"0") are accepted.
func (o Options) Bool(key string, def bool) (bool, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0", "":
			return false, nil
		}
	}
	return false, fmt.Errorf("option %q must be a boolean (true/false), not %v", key, v)
}

// StringList returns a list option. A JSON list of scalars is used as is; a
// string is split into lines (blank lines dropped, lines trimmed), buildout's
// way of writing lists. Absent means nil.
func (o Options) StringList(key string) ([]string, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case string:
		return Lines(x), nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := scalarString(e)
			if !ok {
				return nil, fmt.Errorf("option %q: element %d must be a string, not %s", key, i, TypeName(e))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("option %q must be a list of strings or a newline-separated string, not %s", key, TypeName(v))
}

// Lines splits s into its non-blank lines, trimmed.
func Lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Map returns an object option (nil when absent).
func (o Options) Map(key string) (map[string]any, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case map[string]any:
		return x, nil
	case Options:
		return x, nil
	}
	return nil, fmt.Errorf("option %q must be an object, not %s", key, TypeName(v))
}

// Mode returns a file mode option written in octal ("0755", "755", "0o755")
// or as a number whose decimal digits are octal (buildout writes mode = 0755
// without quotes, which HCL reads as 755), or def when absent.
func (o Options) Mode(key string, def os.FileMode) (os.FileMode, error) {
	v, ok := o[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := scalarString(v)
	if !ok {
		return 0, fmt.Errorf("option %q must be an octal file mode like \"0644\", not %s", key, TypeName(v))
	}
	return ParseMode(key, s)
}

// ParseMode parses an octal file mode; name is used in the error.
func ParseMode(name, s string) (os.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0o"), "0O")
	m, err := strconv.ParseUint(t, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("option %q: %q is not an octal file mode like \"0644\"", name, s)
	}
	perm := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		perm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		perm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		perm |= os.ModeSticky
	}
	return perm, nil
}

// Decode converts the options into v (a pointer to a struct with json tags)
// through JSON, for recipes that prefer typed options.
func (o Options) Decode(v any) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("options: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("options: %v", err)
	}
	return nil
}

// TypeName names the JSON type of v for error messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, int, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any, Options:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
