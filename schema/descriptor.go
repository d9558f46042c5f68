// Package schema loads software descriptors (SlapOS's software.cfg.json, or
// the same information taken from an HCL profile's instance blocks) and
// validates instance parameters against their JSON Schemas, so that a wrong
// parameter is refused before anything is applied and before a request is
// sent.
//
// A Validator is compiled once and is safe for concurrent use. Validation
// applies the schema's defaults, coerces string values when the software
// release uses SlapOS's "xml" serialisation (where every value is a string on
// the wire), and reports every violation at once with the JSON pointer of the
// offending value.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
)

// Serialisation forms of instance parameters on the SLAP wire.
const (
	// SerialisationXML sends every parameter as its own <parameter id="k">,
	// so every value is a string.
	SerialisationXML = "xml"
	// SerialisationJSONInXML sends one parameter "_" holding the parameters
	// as a JSON document, so values keep their JSON types.
	SerialisationJSONInXML = "json-in-xml"
)

// DefaultSoftwareType is the software type used when none is given, as in
// SlapOS.
const DefaultSoftwareType = "default"

// ErrUnknownType is wrapped by Descriptor.Validator and Descriptor.Lookup
// when the descriptor has no such software type.
var ErrUnknownType = errors.New("unknown software type")

// Descriptor is a software release's description of its software types.
//
// Every field is exported and has no hidden invariant: a loader (for example
// the HCL profile loader) may fill the struct directly, or use NewDescriptor
// and AddType, which also check for duplicates.
type Descriptor struct {
	Name        string
	Description string
	// Serialisation is the default for types that do not set their own:
	// SerialisationXML or SerialisationJSONInXML. Empty means json-in-xml,
	// as in SlapOS.
	Serialisation string
	// Dir is the base that relative schema paths of the types are resolved
	// against (the directory of software.cfg.json or of the profile).
	Dir string
	// Path is the file the descriptor was loaded from, if any; only used in
	// messages.
	Path string
	// Types maps the descriptor's key of each software type to it. The key
	// is usually the software type name; shared variants use another key
	// ("cluster-shared") and carry the real name in SoftwareType.Name.
	// List, Lookup and Validator fill an empty SoftwareType.Key from its
	// map key, so a literal {"default": {Request: "in.json"}} is enough;
	// fill the struct before sharing it between goroutines.
	Types map[string]*SoftwareType
	// Order lists the keys of Types in declaration order. It only breaks
	// ties between types with the same Index in List; keys missing from it
	// sort by name.
	Order []string
}

// SoftwareType is one software type of a descriptor.
type SoftwareType struct {
	// Key is the descriptor's key for the type (the JSON object key in
	// software.cfg.json, the block label in HCL).
	Key string
	// Name is the software type requested on the wire; empty means Key.
	Name        string
	Title       string
	Description string
	// Request and Response are the JSON Schemas of the instance parameters
	// and of the published connection parameters: paths relative to
	// Descriptor.Dir, absolute paths or URLs. Empty means no schema.
	Request  string
	Response string
	// Serialisation overrides Descriptor.Serialisation when set.
	Serialisation string
	// Shared marks a shared (slave) instance type.
	Shared bool
	// Index orders the types for display.
	Index int
}

// TypeName returns the software type requested on the wire.
func (t *SoftwareType) TypeName() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Key
}

// NewDescriptor returns an empty descriptor whose schema paths are resolved
// against dir.
func NewDescriptor(name, dir string) *Descriptor {
	return &Descriptor{Name: name, Dir: dir, Types: map[string]*SoftwareType{}}
}

// AddType adds t to d. It refuses a duplicate key and, as SlapOS's own test
// of software.cfg.json does, a duplicate (software type, shared) pair.
func (d *Descriptor) AddType(t *SoftwareType) error {
	if t.Key == "" {
		t.Key = t.Name
	}
	if t.Key == "" {
		return errors.New("schema: software type without a name")
	}
	if d.Types == nil {
		d.Types = map[string]*SoftwareType{}
	}
	if _, dup := d.Types[t.Key]; dup {
		return fmt.Errorf("schema: software type %q declared twice in %s", t.Key, d.where())
	}
	for _, o := range d.Types {
		if o.TypeName() == t.TypeName() && o.Shared == t.Shared {
			return fmt.Errorf("schema: %s: software types %q and %q are both %s; give one of them another software-type or shared value",
				d.where(), o.Key, t.Key, describeType(t.TypeName(), t.Shared))
		}
	}
	d.Types[t.Key] = t
	d.Order = append(d.Order, t.Key)
	return nil
}

func describeType(name string, shared bool) string {
	if shared {
		return fmt.Sprintf("%q (shared)", name)
	}
	return fmt.Sprintf("%q", name)
}

func (d *Descriptor) where() string {
	switch {
	case d.Path != "":
		return d.Path
	case d.Name != "":
		return "software " + d.Name
	default:
		return "descriptor"
	}
}

// List returns the types ordered by Index, then declaration order, then key.
func (d *Descriptor) List() []*SoftwareType {
	pos := make(map[string]int, len(d.Order))
	for i, k := range d.Order {
		if _, seen := pos[k]; !seen {
			pos[k] = i
		}
	}
	out := make([]*SoftwareType, 0, len(d.Types))
	for k, t := range d.Types {
		if t.Key == "" {
			t.Key = k
		}
		out = append(out, t)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		pa, oka := pos[a.Key]
		pb, okb := pos[b.Key]
		if oka && okb && pa != pb {
			return pa < pb
		}
		if oka != okb {
			return oka
		}
		return a.Key < b.Key
	})
	return out
}

// Lookup finds the type requested as softwareType (empty or
// "RootSoftwareInstance" mean "default", as in SlapOS) with the given shared
// flag. A type is matched by its wire name first, then by its key. The error
// wraps ErrUnknownType and lists the known types.
func (d *Descriptor) Lookup(softwareType string, shared bool) (*SoftwareType, error) {
	if softwareType == "" || softwareType == "RootSoftwareInstance" {
		softwareType = DefaultSoftwareType
	}
	list := d.List()
	for _, t := range list {
		if t.TypeName() == softwareType && t.Shared == shared {
			return t, nil
		}
	}
	for _, t := range list {
		if t.Key == softwareType && t.Shared == shared {
			return t, nil
		}
	}
	known := make([]string, 0, len(list))
	for _, t := range list {
		s := t.TypeName()
		if t.Shared {
			s += " (shared)"
		}
		known = append(known, s)
	}
	if len(known) == 0 {
		return nil, fmt.Errorf("%s declares no software type: %w %s", d.where(), ErrUnknownType, describeType(softwareType, shared))
	}
	return nil, fmt.Errorf("%w %s in %s; known types: %s", ErrUnknownType, describeType(softwareType, shared), d.where(), strings.Join(known, ", "))
}

// SerialisationOf returns the serialisation of t: its own, else the
// descriptor's, else json-in-xml (SlapOS's choice for a missing or unknown
// value).
func (d *Descriptor) SerialisationOf(t *SoftwareType) string {
	for _, s := range []string{t.Serialisation, d.Serialisation} {
		if s == SerialisationXML || s == SerialisationJSONInXML {
			return s
		}
	}
	return SerialisationJSONInXML
}

// Resolve turns a schema reference of the descriptor (a path relative to
// Dir, an absolute path or a URL) into an absolute path or URL. Empty stays
// empty.
func (d *Descriptor) Resolve(ref string) string {
	if ref == "" || isURL(ref) || filepath.IsAbs(ref) {
		return ref
	}
	if isURL(d.Dir) {
		base, err := url.Parse(strings.TrimSuffix(d.Dir, "/") + "/")
		if err == nil {
			if r, err := url.Parse(ref); err == nil {
				return base.ResolveReference(r).String()
			}
		}
	}
	return filepath.Join(d.Dir, filepath.FromSlash(ref))
}

// Validator compiles the request (instance parameter) schema of a software
// type. A type without a request schema gets a validator that accepts any
// parameters, as SlapOS skips validation then.
func (d *Descriptor) Validator(softwareType string, shared bool, opts Options) (*Validator, error) {
	t, err := d.Lookup(softwareType, shared)
	if err != nil {
		return nil, err
	}
	if t.Request == "" {
		return acceptAll(), nil
	}
	v, err := Compile(d.Resolve(t.Request), opts)
	if err != nil {
		return nil, fmt.Errorf("request schema of software type %s in %s: %w", describeType(t.TypeName(), t.Shared), d.where(), err)
	}
	return v, nil
}

// ResponseValidator compiles the response (connection parameter) schema of a
// software type, for checking what an instance publishes.
func (d *Descriptor) ResponseValidator(softwareType string, shared bool, opts Options) (*Validator, error) {
	t, err := d.Lookup(softwareType, shared)
	if err != nil {
		return nil, err
	}
	if t.Response == "" {
		return acceptAll(), nil
	}
	v, err := Compile(d.Resolve(t.Response), opts)
	if err != nil {
		return nil, fmt.Errorf("response schema of software type %s in %s: %w", describeType(t.TypeName(), t.Shared), d.where(), err)
	}
	return v, nil
}

// descriptorFile is software.cfg.json as SlapOS writes it.
type descriptorFile struct {
	Name          string          `json:"name"`
	Description   string          `json:"description"`
	Serialisation string          `json:"serialisation"`
	SoftwareType  json.RawMessage `json:"software-type"`
}

type typeFile struct {
	Title         string `json:"title"`
	Description   string `json:"description"`
	SoftwareType  string `json:"software-type"`
	Request       string `json:"request"`
	Response      string `json:"response"`
	Serialisation string `json:"serialisation"`
	Shared        bool   `json:"shared"`
	Index         int    `json:"index"`
}

// LoadDescriptor reads a software.cfg.json file. Its schema paths are
// resolved against the file's directory.
func LoadDescriptor(path string) (*Descriptor, error) {
	data, err := readBounded(path, MaxSchemaSize)
	if err != nil {
		return nil, fmt.Errorf("schema: read software descriptor: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("schema: software descriptor %s: %w", path, err)
	}
	d, err := ParseDescriptor(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Path = path
	return d, nil
}

// ParseDescriptor parses the content of a software.cfg.json whose schema
// paths are relative to dir.
func ParseDescriptor(data []byte, dir string) (*Descriptor, error) {
	if err := checkDepth(data); err != nil {
		return nil, fmt.Errorf("schema: the software descriptor is %w", err)
	}
	var f descriptorFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("schema: not a software.cfg.json descriptor: %w", err)
	}
	switch f.Serialisation {
	case "", SerialisationXML, SerialisationJSONInXML:
	default:
		return nil, fmt.Errorf("schema: serialisation %q is neither %q nor %q", f.Serialisation, SerialisationXML, SerialisationJSONInXML)
	}
	d := NewDescriptor(f.Name, dir)
	d.Description = f.Description
	d.Serialisation = f.Serialisation
	if len(f.SoftwareType) == 0 || string(f.SoftwareType) == "null" {
		return d, nil
	}
	keys, err := objectKeys(f.SoftwareType)
	if err != nil {
		return nil, fmt.Errorf("schema: \"software-type\" must be an object of software types: %w", err)
	}
	var types map[string]typeFile
	if err := json.Unmarshal(f.SoftwareType, &types); err != nil {
		return nil, fmt.Errorf("schema: \"software-type\": %w", err)
	}
	for _, k := range keys {
		tf := types[k]
		switch tf.Serialisation {
		case "", SerialisationXML, SerialisationJSONInXML:
		default:
			return nil, fmt.Errorf("schema: software type %q: serialisation %q is neither %q nor %q", k, tf.Serialisation, SerialisationXML, SerialisationJSONInXML)
		}
		t := &SoftwareType{
			Key: k, Name: tf.SoftwareType, Title: tf.Title, Description: tf.Description,
			Request: tf.Request, Response: tf.Response, Serialisation: tf.Serialisation,
			Shared: tf.Shared, Index: tf.Index,
		}
		if err := d.AddType(t); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// objectKeys returns the keys of a JSON object in document order, which
// encoding/json's maps lose.
func objectKeys(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("found %v", tok)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func isURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for _, c := range s[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
