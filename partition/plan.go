package partition

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ValueChange is one value that an apply would change: an option of a
// part, a field of a service, an option of a promise, a connection
// parameter. Old is nil when the value is new, New nil when it goes away;
// both are JSON. A value that holds a secret is shown masked.
type ValueChange struct {
	Path string          `json:"path"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
	// Unknown: the new value is known only after apply (it reads a part
	// that the apply installs or reinstalls first).
	Unknown bool `json:"known_after_apply,omitempty"`
	// Sensitive: the value holds a secret and is masked.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Masked stands for a secret in a plan.
const Masked = "(sensitive)"

// secretName matches the names whose values are secrets unless a schema
// says otherwise: a password, a secret, a key.
var secretName = regexp.MustCompile(`(?i)(passw(or)?d|secret|key|token)`)

// indexes are the list indexes of a value's path (command[4]).
var indexes = regexp.MustCompile(`\[[0-9]+\]`)

// Masker hides secrets in what a plan shows: values whose name says they
// are secrets (unless a schema says otherwise), values a schema marks
// secret, and every occurrence of a secret value inside another value (a
// password written into a configuration file).
type Masker struct {
	values map[string]bool
	// public are names a schema declares not secret ("secret": false).
	public map[string]bool
	// secret are names a schema declares secret.
	secret map[string]bool
}

// NewMasker returns an empty masker.
func NewMasker() *Masker {
	return &Masker{values: map[string]bool{}, public: map[string]bool{}, secret: map[string]bool{}}
}

// SecretName reports whether a value named name is a secret.
func (m *Masker) SecretName(name string) bool {
	leaf := name
	leaf = indexes.ReplaceAllString(leaf, "")
	if i := strings.LastIndexAny(leaf, "./"); i >= 0 {
		leaf = leaf[i+1:]
	}
	if m == nil {
		return secretName.MatchString(leaf)
	}
	if m.public[leaf] || m.public[name] {
		return false
	}
	return m.secret[leaf] || m.secret[name] || secretName.MatchString(leaf)
}

// AddValue records a secret value: its occurrences are masked everywhere.
// Values shorter than 4 characters are masked only where they are a whole
// value (masking "1" inside every number would hide everything).
func (m *Masker) AddValue(v any) {
	switch x := v.(type) {
	case string:
		if x != "" {
			m.values[x] = true
		}
	case json.Number:
		m.values[x.String()] = true
	case float64, bool:
		b, _ := json.Marshal(x)
		m.values[string(b)] = true
	case map[string]any:
		for _, e := range x {
			m.AddValue(e)
		}
	case []any:
		for _, e := range x {
			m.AddValue(e)
		}
	}
}

// AddNamed records the secrets of a set of named values (options, outputs,
// parameters): those whose name says they are secrets, or all of them.
func (m *Masker) AddNamed(values map[string]any, all bool) {
	for k, v := range values {
		if all || m.SecretName(k) {
			m.AddValue(v)
		}
	}
}

// AddNamedJSON is AddNamed on a JSON object.
func (m *Masker) AddNamedJSON(raw json.RawMessage, all bool) {
	var values map[string]any
	if json.Unmarshal(raw, &values) == nil {
		m.AddNamed(values, all)
	}
}

// AddSchema reads a JSON Schema's top-level properties: those marked
// secret ("secret": true, "writeOnly": true or "format": "password") are
// secret names, those marked "secret": false are not, whatever their name.
func (m *Masker) AddSchema(raw []byte) {
	var s struct {
		Properties map[string]struct {
			Secret    *bool  `json:"secret"`
			WriteOnly bool   `json:"writeOnly"`
			Format    string `json:"format"`
		} `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return
	}
	for name, p := range s.Properties {
		switch {
		case p.Secret != nil && !*p.Secret:
			m.public[name] = true
		case p.Secret != nil && *p.Secret, p.WriteOnly, p.Format == "password":
			m.secret[name] = true
		}
	}
}

// AddSchemaFile is AddSchema on a file; an unreadable file adds nothing.
func (m *Masker) AddSchemaFile(path string) {
	if path == "" {
		return
	}
	if b, err := os.ReadFile(path); err == nil {
		m.AddSchema(b)
	}
}

// Mask returns v (JSON) with its secrets hidden, and whether it held any.
// A value named as a secret is masked whole.
func (m *Masker) Mask(name string, v json.RawMessage) (json.RawMessage, bool) {
	if v == nil {
		return nil, false
	}
	if m.SecretName(name) {
		return json.RawMessage(`"` + Masked + `"`), true
	}
	if m == nil || len(m.values) == 0 {
		return v, false
	}
	var x any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&x) != nil {
		return v, false
	}
	secrets := make([]string, 0, len(m.values))
	for s := range m.values {
		secrets = append(secrets, s)
	}
	// Longest first, so that a secret holding a shorter one is masked whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	masked := false
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			if m.values[t] {
				masked = true
				return Masked
			}
			for _, s := range secrets {
				if len(s) >= 4 && strings.Contains(t, s) {
					t = strings.ReplaceAll(t, s, Masked)
					masked = true
				}
			}
			return t
		case json.Number:
			if m.values[t.String()] {
				masked = true
				return Masked
			}
		case map[string]any:
			for k, e := range t {
				if m.SecretName(k) {
					t[k] = Masked
					masked = true
					continue
				}
				t[k] = walk(e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return x
	}
	out := walk(x)
	if !masked {
		return v, false
	}
	b, err := json.Marshal(out)
	if err != nil {
		return json.RawMessage(`"` + Masked + `"`), true
	}
	return b, true
}

// Change returns the change from old to new of the value at path, masked,
// or nil when they are equal. Either may be nil (added, removed).
func (m *Masker) Change(path string, old, new json.RawMessage) *ValueChange {
	if jsonEqual(old, new) {
		return nil
	}
	c := &ValueChange{Path: path}
	var s1, s2 bool
	c.Old, s1 = m.Mask(path, old)
	c.New, s2 = m.Mask(path, new)
	c.Sensitive = s1 || s2
	return c
}

// DiffObjects compares two JSON objects key by key: the changes, sorted by
// key, each path prefixed with prefix.
func (m *Masker) DiffObjects(prefix string, old, new json.RawMessage) []ValueChange {
	var a, b map[string]json.RawMessage
	json.Unmarshal(old, &a)
	json.Unmarshal(new, &b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []ValueChange
	for _, k := range names {
		out = append(out, m.diffValue(prefix+k, a[k], b[k])...)
	}
	return out
}

// diffValue compares two values, going into objects key by key and into
// lists of the same length item by item, so that a change shows where it
// is (command[4], context.greeting) rather than the whole value again.
func (m *Masker) diffValue(path string, a, b json.RawMessage) []ValueChange {
	if jsonEqual(a, b) {
		return nil
	}
	if a != nil && b != nil && !m.SecretName(path) {
		var oa, ob map[string]json.RawMessage
		if json.Unmarshal(a, &oa) == nil && json.Unmarshal(b, &ob) == nil && oa != nil && ob != nil {
			return m.DiffObjects(path+".", a, b)
		}
		var la, lb []json.RawMessage
		if json.Unmarshal(a, &la) == nil && json.Unmarshal(b, &lb) == nil && len(la) == len(lb) && len(la) > 0 {
			var out []ValueChange
			for i := range la {
				out = append(out, m.diffValue(path+"["+strconv.Itoa(i)+"]", la[i], lb[i])...)
			}
			return out
		}
	}
	if c := m.Change(path, a, b); c != nil {
		return []ValueChange{*c}
	}
	return nil
}

// jsonEqual compares two JSON documents by value (key order and spacing
// do not matter); nil equals only nil.
func jsonEqual(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

// JSONEqual is jsonEqual for the node layer.
func JSONEqual(a, b json.RawMessage) bool { return jsonEqual(a, b) }
