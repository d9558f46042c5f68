package buildout

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Resolution errors, matchable with errors.Is.
var (
	ErrMissingSection = errors.New("referenced section does not exist")
	ErrMissingOption  = errors.New("referenced option does not exist")
	ErrCircular       = errors.New("circular reference in substitutions")
	ErrBadReference   = errors.New("invalid substitution")
	ErrMacroLoop      = errors.New("infinite <= macro loop")
)

// ResolvedSection is the fully resolved options of one section, or the
// error zc.buildout would raise when the section is used.
type ResolvedSection struct {
	Options map[string]string
	Err     error
}

// Resolve computes, for every section, the options zc.buildout's Options
// object holds after initialisation: `<=` macros expanded (with `+=`/`-=`
// applied to the macro's values), then every `${section:option}`
// substituted; `$${` is kept as is (zc.buildout 2.x keeps `$$`). Recipes
// are not run, so options they would add are absent. Substitution is lazy
// as in buildout: a section fails only because of what it uses.
func (c *Config) Resolve() map[string]*ResolvedSection {
	out := make(map[string]*ResolvedSection, len(c.Sections))
	for name := range c.Sections {
		r := &resolver{cfg: c, data: map[string]*secState{}}
		st, err := r.section(name)
		if err == nil {
			var opts map[string]string
			opts, err = st.all()
			if err == nil {
				out[name] = &ResolvedSection{Options: opts}
				continue
			}
		}
		out[name] = &ResolvedSection{Err: err}
	}
	return out
}

type resolver struct {
	cfg  *Config
	data map[string]*secState
}

type secState struct {
	r      *resolver
	name   string
	raw    map[string]string
	cooked map[string]string
	data   map[string]string
}

type refKey struct{ section, option string }

func (r *resolver) section(name string) (*secState, error) {
	if s, ok := r.data[name]; ok {
		return s, nil
	}
	raw, ok := r.cfg.Sections[name]
	if !ok {
		return nil, fmt.Errorf("%w: [%s]", ErrMissingSection, name)
	}
	s := &secState{r: r, name: name, raw: map[string]string{}, cooked: map[string]string{}, data: map[string]string{}}
	for k, v := range raw {
		s.raw[k] = v.Text
	}
	r.data[name] = s
	if err := s.initialize(); err != nil {
		return nil, fmt.Errorf("[%s]: %w", name, err)
	}
	return s, nil
}

func (s *secState) initialize() error {
	if _, ok := s.raw["<"]; ok {
		ext, err := s.r.extendRaw(s.name, s.raw, nil)
		if err != nil {
			return err
		}
		s.raw = ext
	}
	keys := sortedKeys(s.raw)
	for _, k := range keys {
		v := s.raw[k]
		if strings.Contains(v, "${") {
			sub, err := s.substitute(v, []refKey{{s.name, k}})
			if err != nil {
				return fmt.Errorf("option %s: %w", k, err)
			}
			s.cooked[k] = sub
		}
	}
	if s.name == "buildout" {
		return nil
	}
	deps, _, err := s.get("<part-dependencies>", nil)
	if err != nil {
		return err
	}
	for _, d := range strings.Fields(deps) {
		if _, err := s.r.section(d); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// extendRaw is zc.buildout's Options._do_extend_raw: the options of the
// `<=` sections (themselves expanded), in order, then the section's own,
// merged with _update_section so `+=`/`-=` apply to the macro's values.
func (r *resolver) extendRaw(name string, data map[string]string, doing []string) (map[string]string, error) {
	if name == "buildout" {
		return data, nil
	}
	for _, d := range doing {
		if d == name {
			return nil, fmt.Errorf("%w: %s", ErrMacroLoop, strings.Join(append(doing, name), " <= "))
		}
	}
	doing = append(doing, name)
	toDo, ok := data["<"]
	if !ok {
		return data, nil
	}
	result := Section{}
	for _, iname := range strings.Split(toDo, "\n") {
		iname = strings.TrimSpace(iname)
		if iname == "" {
			continue
		}
		raw, ok := r.cfg.Sections[iname]
		if !ok {
			return nil, fmt.Errorf("%w: [%s] (named by <= in [%s])", ErrMissingSection, iname, name)
		}
		rawText := make(map[string]string, len(raw))
		for k, v := range raw {
			rawText[k] = v.Text
		}
		ext, err := r.extendRaw(iname, rawText, doing)
		if err != nil {
			return nil, err
		}
		for k, v := range ext {
			result[k] = &Value{Text: v}
		}
	}
	own := Section{}
	for k, v := range data {
		own[k] = &Value{Text: v}
	}
	merged := updateSection(result, own)
	out := make(map[string]string, len(merged))
	for k, v := range merged {
		if k != "<" {
			out[k] = v.Text
		}
	}
	return out, nil
}

// get is Options.get: the substituted value of option, or ok=false.
func (s *secState) get(option string, seen []refKey) (string, bool, error) {
	if v, ok := s.data[option]; ok {
		return v, true, nil
	}
	v, ok := s.cooked[option]
	if !ok {
		if v, ok = s.raw[option]; !ok {
			return "", false, nil
		}
	}
	if strings.Contains(v, "${") {
		key := refKey{s.name, option}
		if seen == nil {
			seen = []refKey{key}
		} else {
			for _, k := range seen {
				if k == key {
					return "", false, fmt.Errorf("%w: %s", ErrCircular, chain(append(seen, key)))
				}
			}
			seen = append(seen, key)
		}
		var err error
		if v, err = s.substitute(v, seen); err != nil {
			return "", false, err
		}
	}
	s.data[option] = v
	return v, true, nil
}

func chain(keys []refKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = "${" + k.section + ":" + k.option + "}"
	}
	return strings.Join(parts, " -> ")
}

func (s *secState) all() (map[string]string, error) {
	out := make(map[string]string, len(s.raw))
	for _, k := range sortedKeys(s.raw) {
		v, _, err := s.get(k, nil)
		if err != nil {
			return nil, fmt.Errorf("[%s] option %s: %w", s.name, k, err)
		}
		out[k] = v
	}
	return out, nil
}

var (
	refSplit  = regexp.MustCompile(`\$\{[^}]*\}`)
	refSimple = regexp.MustCompile(`^[-a-zA-Z0-9 ._]+$`)
	refValid  = regexp.MustCompile(`^\$\{[-a-zA-Z0-9 ._]*:[-a-zA-Z0-9 ._]+\}$`)
)

// substitute is '$$'.join(_sub(piece) for piece in v.split('$$')).
func (s *secState) substitute(v string, seen []refKey) (string, error) {
	pieces := strings.Split(v, "$$")
	for i, p := range pieces {
		sub, err := s.sub(p, seen)
		if err != nil {
			return "", err
		}
		pieces[i] = sub
	}
	return strings.Join(pieces, "$$"), nil
}

// CheckRef validates a `${...}` reference as zc.buildout does and splits it.
func CheckRef(ref string) (section, option string, err error) {
	parts := strings.Split(ref[2:len(ref)-1], ":")
	if !refValid.MatchString(ref) {
		switch {
		case len(parts) < 2:
			return "", "", fmt.Errorf("%w: %s has no colon (write ${section:option})", ErrBadReference, ref)
		case len(parts) > 2:
			return "", "", fmt.Errorf("%w: %s has too many colons", ErrBadReference, ref)
		case !refSimple.MatchString(parts[0]):
			return "", "", fmt.Errorf("%w: the section name in %s has invalid characters", ErrBadReference, ref)
		case !refSimple.MatchString(parts[1]):
			return "", "", fmt.Errorf("%w: the option name in %s has invalid characters", ErrBadReference, ref)
		}
	}
	return parts[0], parts[1], nil
}

func (s *secState) sub(template string, seen []refKey) (string, error) {
	locs := refSplit.FindAllStringIndex(template, -1)
	if len(locs) == 0 {
		return template, nil
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		b.WriteString(template[last:loc[0]])
		last = loc[1]
		ref := template[loc[0]:loc[1]]
		section, option, err := CheckRef(ref)
		if err != nil {
			return "", err
		}
		if section == "" {
			section = s.name
		}
		target, err := s.r.section(section)
		if err != nil {
			return "", err
		}
		v, ok, err := target.get(option, seen)
		if err != nil {
			return "", err
		}
		if !ok {
			if option != "_buildout_section_name_" {
				return "", fmt.Errorf("%w: ${%s:%s}", ErrMissingOption, section, option)
			}
			v = s.name
		}
		b.WriteString(v)
	}
	b.WriteString(template[last:])
	return b.String(), nil
}

// WriteAnnotated prints every section's resolved options, sorted, in the
// shape of `buildout annotate` (key = value, continuation lines below), or
// the error of a section that cannot be resolved.
func WriteAnnotated(w io.Writer, res map[string]*ResolvedSection) error {
	for _, name := range sortedKeys(res) {
		if _, err := fmt.Fprintf(w, "\n[%s]\n", name); err != nil {
			return err
		}
		rs := res[name]
		if rs.Err != nil {
			if _, err := fmt.Fprintf(w, "# error: %s\n", strings.ReplaceAll(rs.Err.Error(), "\n", " ")); err != nil {
				return err
			}
			continue
		}
		for _, k := range sortedKeys(rs.Options) {
			v := rs.Options[k]
			lines := strings.Split(v, "\n")
			var err error
			if v == "" {
				_, err = fmt.Fprintf(w, "%s =\n", k)
			} else {
				_, err = fmt.Fprintf(w, "%s = %s\n", k, strings.Join(lines, "\n    "))
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
