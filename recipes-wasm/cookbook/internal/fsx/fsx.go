// Package fsx holds the file, option and shell helpers the cookbook's
// recipes share.
package fsx

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Resolve makes p absolute: a relative path is taken relative to the
// part's directory (the partition for instance parts, the software
// directory for software parts).
func Resolve(ctx recipe.Context, p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(ctx.Dir(), p)
	} else if clean(p) {
		// Most paths come clean from the profile: checking that is a
		// fifth of what filepath.Clean costs in WebAssembly.
		return p
	}
	return filepath.Clean(p)
}

// clean reports whether the absolute path p is one filepath.Clean leaves
// as it is: no empty, "." or ".." component, no final slash. A false
// answer only means filepath.Clean has to look.
func clean(p string) bool {
	for i := strings.IndexByte(p, '/'); i >= 0; {
		rest := p[i+1:]
		j := strings.IndexByte(rest, '/')
		seg := rest
		if j >= 0 {
			seg = rest[:j]
		}
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if j < 0 {
			return true
		}
		i += 1 + j
	}
	return true
}

// ResolveProfile makes p absolute relative to the profile directory, where
// a profile's own files (templates, patches) live.
func ResolveProfile(ctx recipe.Context, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(ctx.ProfileDir, p)
}

// PartDir is the default location of a part: DIR/parts/PART, as buildout
// puts parts under ${buildout:parts-directory}.
func PartDir(ctx recipe.Context) string {
	return filepath.Join(ctx.Dir(), "parts", ctx.Part)
}

// WriteFile writes data to path with mode, creating parent directories:
// the host writes a temporary file next to path and renames it, so a
// service reading the file never sees it half written
// (recipe.Context.WriteFile). The temporary name is fixed: a write
// interrupted by a kill leaves a file the next write of the same path
// replaces, so a re-run converges on the tree of a clean one without
// listing the directory.
func WriteFile(ctx recipe.Context, path string, data []byte, mode os.FileMode) error {
	return ctx.WriteFile(path, data, mode)
}

// SetMode gives regular files mode, through Context.Chmod: WASI preview 1
// cannot set permission bits, so the host does it (slapnode.chmod).
func SetMode(ctx recipe.Context, mode os.FileMode, paths ...string) error {
	return ctx.Chmod(mode, paths...)
}

// Duration reads a timeout option: a number of seconds, or a Go/HCL
// duration string ("90s", "2m").
func Duration(opts recipe.Options, key string, def time.Duration) (time.Duration, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case int64:
		return time.Duration(x) * time.Second, nil
	case float64:
		return time.Duration(x * float64(time.Second)), nil
	case string:
		s := strings.TrimSpace(x)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
	}
	return 0, fmt.Errorf("option %q must be a number of seconds or a duration like \"90s\", not %v", key, v)
}

// Env reads an environment option: an object {"K": "V"} or buildout's
// newline-separated K=V lines.
func Env(opts recipe.Options, key string) (map[string]string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return nil, nil
	}
	env := map[string]string{}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			s, ok := e.(string)
			if !ok {
				s = fmt.Sprint(e)
			}
			env[k] = s
		}
	case string:
		for _, line := range recipe.Lines(x) {
			k, val, ok := strings.Cut(line, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("option %q: line %q is not NAME=VALUE", key, line)
			}
			env[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
	case []any:
		for _, e := range x {
			s, _ := e.(string)
			k, val, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("option %q: element %q is not NAME=VALUE", key, s)
			}
			env[k] = val
		}
	default:
		return nil, fmt.Errorf("option %q must be an object or NAME=VALUE lines, not %s", key, recipe.TypeName(v))
	}
	return env, nil
}

// SortedKeys returns the keys of m, sorted.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ShellSplit splits s into words like POSIX sh (and Python's shlex.split):
// single quotes are literal, double quotes allow \" \\ \$ \`, a backslash
// outside quotes escapes the next character. No expansion is done.
func ShellSplit(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ShellQuote quotes s for POSIX sh so that it is one literal word.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Argv reads a command option: a list of words, or a string split like sh.
func Argv(opts recipe.Options, key string) ([]string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		words, err := ShellSplit(s)
		if err != nil {
			return nil, fmt.Errorf("option %q: %w", key, err)
		}
		return words, nil
	}
	return opts.StringList(key)
}

// ArgLines reads an options list such as configure-options: a list of
// words, or a string whose lines are each split like sh.
func ArgLines(opts recipe.Options, key string) ([]string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return nil, nil
	}
	if _, ok := v.(string); ok {
		return Argv(opts, key)
	}
	return opts.StringList(key)
}

// ValidName reports whether s is a valid environment variable name.
func ValidName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// MkdirAll creates path and its missing parents with mode 0755: WASI
// creates directories 0700, and commands the host runs for the recipe (as
// the partition user) must be able to enter and write what the recipe
// prepared for them. Existing directories are left as they are.
func MkdirAll(ctx recipe.Context, path string) error {
	var created []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	if len(created) == 0 {
		return nil
	}
	return ctx.Chmod(0o755, created...)
}

// Unmangle decodes an option name written with the mangling of
// docs/profiles.md §1.7 (`__XX` for a byte, `__5f5f` for `__`), as
// converted buildout profiles write names that are not HCL identifiers
// (`-extends` is `__2dextends`). A name that is not a mangled one is
// returned unchanged.
func Unmangle(name string) string {
	if !strings.Contains(name, "__") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		if strings.HasPrefix(name[i:], "__5f5f") {
			b.WriteString("__")
			i += 6
			continue
		}
		if strings.HasPrefix(name[i:], "__") && i+4 <= len(name) && isLowerHex(name[i+2]) && isLowerHex(name[i+3]) {
			c, _ := strconv.ParseUint(name[i+2:i+4], 16, 8)
			b.WriteByte(byte(c))
			i += 4
			continue
		}
		b.WriteByte(name[i])
		i++
	}
	return b.String()
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
