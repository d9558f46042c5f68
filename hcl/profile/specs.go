package profile

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// SoftwareInfo is the `software` block.
type SoftwareInfo struct {
	Name, Version, Description, Title string
}

// ModuleSpec is a `module` block: where a WASM module comes from and what it
// is granted.
type ModuleSpec struct {
	Name        string
	Source      string // builtin:NAME, absolute path, or URL
	SHA256      string
	MemoryBytes uint64
	Timeout     time.Duration
	AllowExec   []string
	AllowEnv    []string // variables exec may pass besides the default ones (docs/wasm-abi.md §6)
	AllowNet    []string
	Range       hcl.Range
}

// InstanceType is an `instance "TYPE"` block of a software profile.
type InstanceType struct {
	Name       string
	Profile    string // absolute path of the instance profile
	Parameters string // absolute path of the parameter schema, "" if none
	Connection string // absolute path of the connection schema, "" if none
	// SharedParameters, when set, is the schema of the shared (slave)
	// instances this type hosts: requests with shared set are validated
	// against it.
	SharedParameters string
	Description      string
	Title            string
	Serialisation    string
	Shared           bool
	Index            int
	Range            hcl.Range
}

// Software decodes the `software` block (zero value when absent).
func (p *Profile) Software(e *Evaluator) (SoftwareInfo, hcl.Diagnostics) {
	var info SoftwareInfo
	var diags hcl.Diagnostics
	for _, b := range p.BlocksOf("software") {
		info.Name = b.Name()
		d := decodeInto(e, b, map[string]any{"version": &info.Version, "description": &info.Description, "title": &info.Title})
		diags = append(diags, d...)
	}
	return info, diags
}

// Modules decodes every `module` block. Relative sources are resolved against
// the file that declares them.
func (p *Profile) Modules(e *Evaluator) (map[string]*ModuleSpec, hcl.Diagnostics) {
	out := map[string]*ModuleSpec{}
	var diags hcl.Diagnostics
	for _, b := range p.BlocksOf("module") {
		m := &ModuleSpec{Name: b.Name(), Range: b.DefRange}
		var memory, timeout string
		d := decodeInto(e, b, map[string]any{
			"source": &m.Source, "sha256": &m.SHA256, "memory": &memory, "timeout": &timeout,
			"allow_exec": &m.AllowExec, "allow_env": &m.AllowEnv, "allow_net": &m.AllowNet, "description": new(string),
		})
		diags = append(diags, d...)
		if m.Source == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing module source",
				Detail: `A module needs source = "builtin:NAME", a path to a .wasm file, or an https URL with sha256.`, Subject: b.DefRange.Ptr()})
		} else if !strings.HasPrefix(m.Source, "builtin:") && !strings.Contains(m.Source, "://") && !filepath.IsAbs(m.Source) {
			m.Source = filepath.Join(filepath.Dir(b.Attrs["source"].Range.Filename), m.Source)
		}
		if strings.Contains(m.Source, "://") && m.SHA256 == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Module URL without checksum",
				Detail: "A module fetched from a URL must pin its content: add sha256 = \"<hex digest>\".", Subject: b.Attrs["source"].Range.Ptr()})
		}
		if memory != "" {
			n, err := ParseSize(memory)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid memory", Detail: err.Error(), Subject: b.Attrs["memory"].Range.Ptr()})
			}
			m.MemoryBytes = n
		}
		if timeout != "" {
			dur, err := time.ParseDuration(timeout)
			if err != nil || dur <= 0 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid timeout",
					Detail: fmt.Sprintf("%q is not a positive duration such as \"30s\" or \"10m\".", timeout), Subject: b.Attrs["timeout"].Range.Ptr()})
			}
			m.Timeout = dur
		}
		out[m.Name] = m
	}
	return out, diags
}

// InstanceTypes decodes the `instance` blocks of a software profile.
func (p *Profile) InstanceTypes(e *Evaluator) (map[string]*InstanceType, hcl.Diagnostics) {
	out := map[string]*InstanceType{}
	var diags hcl.Diagnostics
	for _, b := range p.BlocksOf("instance") {
		it := &InstanceType{Name: b.Name(), Range: b.DefRange}
		var index int64
		d := decodeInto(e, b, map[string]any{
			"profile": &it.Profile, "parameters": &it.Parameters, "connection": &it.Connection,
			"description": &it.Description, "title": &it.Title, "serialisation": &it.Serialisation,
			"shared": &it.Shared, "index": &index, "shared_parameters": &it.SharedParameters,
		})
		diags = append(diags, d...)
		it.Index = int(index)
		for name, ptr := range map[string]*string{"profile": &it.Profile, "parameters": &it.Parameters, "connection": &it.Connection, "shared_parameters": &it.SharedParameters} {
			if *ptr != "" && !filepath.IsAbs(*ptr) && !strings.Contains(*ptr, "://") {
				*ptr = filepath.Join(filepath.Dir(b.Attrs[name].Range.Filename), *ptr)
			}
		}
		if it.Profile == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing instance profile",
				Detail: `An instance block needs profile = "instance.hcl".`, Subject: b.DefRange.Ptr()})
		}
		switch it.Serialisation {
		case "", "xml", "json-in-xml":
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid serialisation",
				Detail: `serialisation is "xml" or "json-in-xml".`, Subject: b.Attrs["serialisation"].Range.Ptr()})
		}
		out[it.Name] = it
	}
	return out, diags
}

// decodeInto evaluates the block's attributes into Go variables (string,
// bool, int64, []string), reporting type errors at the attribute.
func decodeInto(e *Evaluator, b *Block, into map[string]any) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, name := range b.AttrNames() {
		dst, ok := into[name]
		if !ok {
			continue
		}
		a := b.Attrs[name]
		v, d := e.EvalAttr(a)
		diags = append(diags, d...)
		if d.HasErrors() || v.IsNull() {
			continue
		}
		if err := assign(v, dst); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + name,
				Detail: err.Error(), Subject: a.Expr.Range().Ptr()})
		}
	}
	return diags
}

func assign(v cty.Value, dst any) error {
	if !v.IsWhollyKnown() {
		return fmt.Errorf("the value is not known")
	}
	switch p := dst.(type) {
	case *string:
		s, err := convert.Convert(v, cty.String)
		if err != nil {
			return fmt.Errorf("a string is required: %v", err)
		}
		*p = s.AsString()
	case *bool:
		b, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return fmt.Errorf("true or false is required")
		}
		*p = b.True()
	case *int64:
		n, err := convert.Convert(v, cty.Number)
		if err != nil {
			return fmt.Errorf("a number is required")
		}
		i, acc := n.AsBigFloat().Int64()
		if acc != 0 {
			return fmt.Errorf("a whole number is required")
		}
		*p = i
	case *[]string:
		l, err := convert.Convert(v, cty.List(cty.String))
		if err != nil {
			return fmt.Errorf("a list of strings is required")
		}
		*p = nil
		for _, s := range l.AsValueSlice() {
			*p = append(*p, s.AsString())
		}
	default:
		return fmt.Errorf("internal: cannot decode into %T", dst)
	}
	return nil
}

// ParseSize parses "64MiB", "1GiB", "512KiB", "100MB" or a byte count.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000}, {"B", 1}}
	mult := uint64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a size such as \"64MiB\" or \"1GiB\"", s)
	}
	return n * mult, nil
}
