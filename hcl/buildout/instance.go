package buildout

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// The instance side of a SlapOS release: slapgrid runs the rendered
// instance profile (`instance.cfg`) with buildout in each partition, after
// appending a tail of runtime sections (slap-connection…), and a handful of
// slapos.cookbook recipes there talk to the node or the master rather than
// write files: slapconfiguration reads the partition's parameters,
// switch-softwaretype runs a nested buildout, publish sends connection
// parameters, request asks for other instances. ConvertInstance maps them
// onto the profile language for slapnode's engine (package partition),
// which computes their values host-side at instantiation.

// Kinds of instance-side recipes (InstanceRecipe).
const (
	KindSlapConfiguration  = "slapconfiguration"   // and .serialised, .jsonschema
	KindSwitchSoftwareType = "switch-softwaretype" // the software type picks a nested profile
	KindPublish            = "publish"             // and publish.serialised
	KindRequest            = "request"             // request, requestoptional and .serialised
)

// InstanceRecipe says whether recipe is one of slapos.cookbook's
// instance-side recipes and which kind, with its variant: "serialised",
// "jsonschema", "optional", "optional.serialised" or "".
func InstanceRecipe(recipe string) (kind, variant string) {
	egg, entry, _ := strings.Cut(strings.TrimSpace(recipe), ":")
	if egg != "slapos.cookbook" {
		return "", ""
	}
	switch entry {
	case "slapconfiguration":
		return KindSlapConfiguration, ""
	case "slapconfiguration.serialised":
		return KindSlapConfiguration, "serialised"
	case "slapconfiguration.jsonschema", "slapconfiguration.jsonschema.localdb":
		// The localdb variant also keeps shared instances in a local
		// database, which the node does not need.
		return KindSlapConfiguration, "jsonschema"
	case "switch-softwaretype":
		return KindSwitchSoftwareType, ""
	case "publish", "publish_failsafe":
		return KindPublish, ""
	case "publish.serialised", "publish.serialised_failsafe":
		return KindPublish, "serialised"
	case "request":
		return KindRequest, ""
	case "request.serialised":
		return KindRequest, "serialised"
	case "requestoptional":
		return KindRequest, "optional"
	case "requestoptional.serialised":
		return KindRequest, "optional.serialised"
	}
	return "", ""
}

// SlapConnection is what slapgrid writes in the tail of a partition's
// buildout.cfg (slapos.core's buildout-tail.cfg.in).
type SlapConnection struct {
	ComputerID, PartitionID, ServerURL, SoftwareReleaseURL string
	KeyFile, CertFile                                      string
	SharedParts, BuildTimeParts                            []string
	RequestedState                                         string // started, stopped or destroyed
	StorageHome, GlobalIPv4Network                         string
}

// Tail is the text slapgrid appends to the instance profile.
func (c SlapConnection) Tail() string {
	lines := func(l []string) string { return strings.Join(l, "\n  ") }
	return fmt.Sprintf(`
# This is beginning of zc.buildout profile's tail added by slapgrid
[buildout]
# put buildout generated binaries in specific directory
bin-directory = ${buildout:directory}/sbin

# protect software and run parts offline
offline = true

[slap-connection]
computer-id = %s
partition-id = %s
server-url = %s
software-release-url = %s
key-file = %s
cert-file = %s
shared-part-list =
  %s
build-time-part-list =
  %s
requested-state = %s

[slap_connection]
# Kept for backward compatiblity
computer_id = %[1]s
partition_id = %[2]s
server_url = %[3]s
software_release_url = %[4]s
key_file = %[5]s
cert_file = %[6]s

[storage-configuration]
storage-home = %[10]s

[network-information]
global-ipv4-network = %[11]s
# This is end of zc.buildout profile's tail added by slapgrid
`, c.ComputerID, c.PartitionID, c.ServerURL, c.SoftwareReleaseURL, c.KeyFile, c.CertFile,
		lines(c.SharedParts), lines(c.BuildTimeParts), c.RequestedState, c.StorageHome, c.GlobalIPv4Network)
}

// AppendText merges buildout text into the configuration as if it were
// appended to the root file (slapgrid's tail, a sub-buildout's options):
// its options replace the merged ones of the same name.
func (c *Config) AppendText(name string, text string) error {
	f, err := Parse(name, []byte(text))
	if err != nil {
		return err
	}
	secs, _, err := f.Sections(DefaultCondEnv())
	if err != nil {
		return err
	}
	for sec, opts := range secs {
		s := c.Sections[sec]
		if s == nil {
			s = Section{}
			c.Sections[sec] = s
			if !isURL(c.Root) {
				s[ProfileBaseOption] = &Value{Text: filepath.Dir(c.Root), Source: c.Root}
			}
		}
		for _, o := range opts {
			if o.Op != OpSet {
				return fmt.Errorf("%s: [%s] %s: only plain options can be appended", o.Pos, sec, o.Name)
			}
			s[o.Key] = &Value{Text: o.Value, Source: c.Root}
		}
	}
	return nil
}

// ResolveSection returns the options of one section after `<=` macros and
// substitution, as buildout initialises it (recipes not run: options they
// would add are absent).
func (c *Config) ResolveSection(name string) (map[string]string, error) {
	r := &resolver{cfg: c, data: map[string]*secState{}}
	st, err := r.section(name)
	if err != nil {
		return nil, err
	}
	return st.all()
}

// Recipe is the recipe a section names ("" for none).
func (c *Config) Recipe(section string) string {
	if s := c.Sections[section]; s != nil {
		if v := s["recipe"]; v != nil {
			return strings.TrimSpace(v.Text)
		}
	}
	return ""
}

// InstanceMapping is what the host computed for the instance-side sections
// of an instance profile, for ConvertInstance.
type InstanceMapping struct {
	// Data are sections whose recipe computes options at initialisation
	// from the partition's data (slapconfiguration): each becomes a data part
	// holding its own options overridden by these values (literal values:
	// a computed value is never substituted again, as in buildout).
	Data map[string]map[string]cty.Value
	// Switch maps a switch-softwaretype section to the "SECTION:OPTION" its
	// software type names: the section becomes a data part whose
	// `slapnode-profile` attribute is that option (so that the part
	// rendering the nested profile is installed).
	Switch map[string]string
	// RequestedState is the partition's requested state: a request without
	// a state option asks for it (but never "destroyed").
	RequestedState string
	// Exec are commands the profile's cookbook module must be granted
	// beyond what its recipes need (python3 for promise plugins the node
	// does not run natively).
	Exec []string
}

// SwitchProfileAttr is the attribute of a switch-softwaretype data part
// holding the path of the nested profile.
const SwitchProfileAttr = "slapnode-profile"

// InstanceSection is an instance-side section of a converted instance
// profile, for the engine to act on after the parts are applied.
type InstanceSection struct {
	Section string // buildout section name
	Part    string // its part name (mangled)
	Kind    string // KindPublish, KindSwitchSoftwareType, KindRequest…
	Variant string
}

// InstanceResult is a converted instance profile.
type InstanceResult struct {
	*Result
	Sections []InstanceSection // in section name order
}

// requestInputSuffix names the data part that holds a request section's
// own options (MangleName never produces "__s…", so it cannot collide).
const requestInputSuffix = "__slapnode_request_input"

// ConvertInstance converts a rendered instance profile (a loaded closure,
// its tail appended) into one HCL instance profile, mapping the
// instance-side recipes: computed sections become data parts with the
// values of m.Data, switch-softwaretype a data part naming the nested
// profile, publish a data part the engine reads, request an HCL request
// block with a part exposing connection-NAME options. Other recipes are
// converted as ConvertConfig does.
func ConvertInstance(cfg *Config, m InstanceMapping, opts ConvertOptions) (*InstanceResult, error) {
	opts.Kind = "instance"
	work := &Config{Root: cfg.Root, Files: cfg.Files, Sections: copyData(cfg.Sections)}
	var secs []InstanceSection
	type request struct {
		sec     InstanceSection
		options map[string]string // raw options after <= expansion
	}
	var requests []request
	names := sortedKeys(work.Sections)
	for _, name := range names {
		s := work.Sections[name]
		kind, variant := InstanceRecipe(work.Recipe(name))
		if kind == "" {
			continue
		}
		is := InstanceSection{Section: name, Part: MangleName(name), Kind: kind, Variant: variant}
		switch kind {
		case KindSlapConfiguration:
			if _, ok := m.Data[name]; !ok {
				return nil, fmt.Errorf("[%s]: the values of its recipe %s were not computed", name, work.Recipe(name))
			}
		case KindSwitchSoftwareType:
			target, ok := m.Switch[name]
			if !ok {
				return nil, fmt.Errorf("[%s]: no profile chosen for it", name)
			}
			sec, opt, ok := strings.Cut(target, ":")
			if !ok || sec == "" || opt == "" {
				return nil, fmt.Errorf("[%s]: the software types in this section must be written SECTION:OPTION (usually SECTION:output or SECTION:rendered), not %q", name, target)
			}
			s = copySection(s)
			s[SwitchProfileAttr] = &Value{Text: "${" + sec + ":" + opt + "}", Source: valueSource(s)}
			if _, ok := work.Sections["slap-configuration"]; ok {
				// The nested profile gets [slap-configuration]'s values:
				// it must be evaluated with the switch.
				deps := []string{"slap-configuration"}
				if old, ok := s["<part-dependencies>"]; ok {
					deps = append(strings.Fields(old.Text), deps...)
				}
				s["<part-dependencies>"] = &Value{Text: strings.Join(deps, " "), Source: valueSource(s)}
			}
			work.Sections[name] = s
		case KindPublish:
			if ext, ok := s["-extends"]; ok {
				s = copySection(s)
				deps := strings.Fields(ext.Text)
				if old, ok := s["<part-dependencies>"]; ok {
					deps = append(strings.Fields(old.Text), deps...)
				}
				s["<part-dependencies>"] = &Value{Text: strings.Join(deps, " "), Source: ext.Source}
				work.Sections[name] = s
			}
		case KindRequest:
			r := &resolver{cfg: work, data: map[string]*secState{}}
			raw := map[string]string{}
			for k, v := range s {
				raw[k] = v.Text
			}
			if _, ok := raw["<"]; ok {
				ext, err := r.extendRaw(name, raw, nil)
				if err != nil {
					return nil, fmt.Errorf("[%s]: %w", name, err)
				}
				raw = ext
			}
			for _, obsolete := range []string{"config", "sla"} {
				if _, ok := raw[obsolete]; ok {
					return nil, fmt.Errorf("[%s]: 'config' & 'sla' options are obsolete: use config-NAME and sla-NAME options", name)
				}
			}
			requests = append(requests, request{sec: is, options: raw})
		}
		// The recipe is the host's: the section is data for the parts.
		s = copySection(work.Sections[name])
		delete(s, "recipe")
		work.Sections[name] = s
		secs = append(secs, is)
	}
	res, err := ConvertConfig(work, opts)
	if err != nil {
		return nil, err
	}
	f, diags := hclwrite.ParseConfig(res.HCL, "converted.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("convert %s: %s", cfg.Root, diags.Error())
	}
	blocks := map[string]*hclwrite.Block{}
	for _, b := range f.Body().Blocks() {
		if b.Type() == "part" && len(b.Labels()) == 1 {
			blocks[b.Labels()[0]] = b
		}
	}
	for _, name := range sortedKeys(m.Data) {
		b := blocks[MangleName(name)]
		if b == nil {
			continue
		}
		vals := m.Data[name]
		for _, k := range sortedKeys(vals) {
			b.Body().SetAttributeValue(MangleName(k), vals[k])
		}
	}
	if len(m.Exec) > 0 {
		if err := grantExec(f, m.Exec); err != nil {
			return nil, fmt.Errorf("convert %s: %w", cfg.Root, err)
		}
	}
	var extra strings.Builder
	for _, r := range requests {
		b := blocks[r.sec.Part]
		if b == nil {
			return nil, fmt.Errorf("[%s]: not found in the converted profile", r.sec.Section)
		}
		input := r.sec.Part + requestInputSuffix
		b.SetLabels([]string{input})
		writeRequest(&extra, r.sec, r.options, input, m.RequestedState)
	}
	out := f.Bytes()
	if extra.Len() > 0 {
		// Checked here rather than left to the loader: a converter bug
		// must be reported as one.
		out = hclwrite.Format(append(out, []byte(extra.String())...))
		if _, diags := hclsyntax.ParseConfig(out, "converted.hcl", hcl.InitialPos); diags.HasErrors() {
			return nil, fmt.Errorf("convert %s: generated HCL does not parse (a converter bug; please report it): %s", cfg.Root, diags.Error())
		}
	}
	res.HCL = out
	return &InstanceResult{Result: res, Sections: secs}, nil
}

func valueSource(s Section) string {
	for _, v := range s {
		if v.Source != "" {
			return v.Source
		}
	}
	return ""
}

// writeRequest writes the request block of a request section and the part
// that takes its place: the section's own options (read from the input
// part) plus connection-NAME for each name of `return`, as
// slapos.cookbook:request sets them.
func writeRequest(w *strings.Builder, is InstanceSection, raw map[string]string, input, parentState string) {
	in := func(k string) string { return "part." + input + "." + MangleName(k) }
	serialised := strings.HasSuffix(is.Variant, "serialised")
	optional := strings.HasPrefix(is.Variant, "optional")
	label := is.Section
	if n, ok := raw["name"]; ok && !strings.Contains(n, "${") && strings.TrimSpace(n) != "" {
		label = strings.TrimSpace(n)
	}
	fmt.Fprintf(w, "\n# [%s] (slapos.cookbook:%s): a request for another instance.\n", is.Section, recipeEntry(is))
	fmt.Fprintf(w, "request %s {\n", strconv.Quote(label))
	if _, ok := raw["software-url"]; ok {
		fmt.Fprintf(w, "  software = %s\n", in("software-url"))
	} else {
		fmt.Fprintf(w, "  software = \"\"\n")
	}
	if _, ok := raw["software-type"]; ok {
		fmt.Fprintf(w, "  software_type = %s\n", in("software-type"))
	} else {
		fmt.Fprintf(w, "  software_type = \"default\"\n")
	}
	if _, ok := raw["shared"]; ok {
		fmt.Fprintf(w, "  shared = contains([\"true\", \"yes\", \"on\", \"1\"], lower(trimspace(%s)))\n", in("shared"))
	}
	state := parentState
	if state != "started" && state != "stopped" {
		state = "started"
	}
	if _, ok := raw["state"]; ok {
		fmt.Fprintf(w, "  state = %s\n", in("state"))
	} else {
		fmt.Fprintf(w, "  state = %s\n", strconv.Quote(state))
	}
	if _, ok := raw["sla-computer_guid"]; ok {
		fmt.Fprintf(w, "  node = %s\n", in("sla-computer_guid"))
	}
	var params []string
	for _, k := range sortedKeys(raw) {
		if p, ok := strings.CutPrefix(k, "config-"); ok && p != "" {
			params = append(params, fmt.Sprintf("    %s = %s\n", strconv.Quote(p), in(k)))
		}
	}
	fmt.Fprintf(w, "  parameters = {\n%s  }\n}\n", strings.Join(params, ""))
	fmt.Fprintf(w, "\npart %s {\n", strconv.Quote(is.Part))
	for _, k := range sortedKeys(raw) {
		if k == "recipe" || k == "<" || k == ProfileBaseOption || k == "<part-dependencies>" || strings.HasPrefix(k, "connection-") {
			continue
		}
		fmt.Fprintf(w, "  %s = %s\n", MangleName(k), in(k))
	}
	conn := fmt.Sprintf("request.%s.connection", quoteTraversal(label))
	if serialised {
		conn = fmt.Sprintf("jsondecode(lookup(%s, \"_\", \"{}\"))", conn)
	}
	if _, ok := raw["state"]; ok {
		fmt.Fprintf(w, "  requested-state = %s\n", in("state"))
	} else {
		fmt.Fprintf(w, "  requested-state = %s\n", strconv.Quote(state))
	}
	for _, r := range strings.Fields(raw["return"]) {
		var expr string
		switch {
		case optional:
			expr = fmt.Sprintf("\"${lookup(%s, %s, \"\")}\"", conn, strconv.Quote(r))
		default:
			expr = fmt.Sprintf("\"${%s[%s]}\"", conn, strconv.Quote(r))
		}
		if !optional {
			fmt.Fprintf(w, "  # Fails until %s publishes %s (the instance is processed again).\n", label, r)
		}
		fmt.Fprintf(w, "  %s = %s\n", MangleName("connection-"+r), expr)
	}
	fmt.Fprintf(w, "}\n")
}

func recipeEntry(is InstanceSection) string {
	switch is.Variant {
	case "":
		return is.Kind
	case "optional":
		return "requestoptional"
	case "optional.serialised":
		return "requestoptional.serialised"
	}
	return is.Kind + "." + is.Variant
}

// quoteTraversal writes a request name as an HCL traversal step.
func quoteTraversal(name string) string {
	if hclsyntax.ValidIdentifier(name) {
		return name
	}
	return "[" + strconv.Quote(name) + "]"
}

// SortedSections lists the sections of kind in name order.
func (r *InstanceResult) SortedSections(kind string) []InstanceSection {
	var out []InstanceSection
	for _, s := range r.Sections {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Section < out[j].Section })
	return out
}

// grantExec adds commands to the allow_exec of the profile's module
// "cookbook", declaring the module when the profile does not.
func grantExec(f *hclwrite.File, cmds []string) error {
	var mod *hclwrite.Block
	for _, b := range f.Body().Blocks() {
		if b.Type() == "module" && len(b.Labels()) == 1 && b.Labels()[0] == "cookbook" {
			mod = b
		}
	}
	if mod == nil {
		f.Body().AppendNewline()
		mod = f.Body().AppendNewBlock("module", []string{"cookbook"})
		mod.Body().SetAttributeValue("source", cty.StringVal("builtin:cookbook"))
	}
	have := map[string]bool{}
	var list []cty.Value
	if a := mod.Body().GetAttribute("allow_exec"); a != nil {
		src := a.Expr().BuildTokens(nil).Bytes()
		expr, diags := hclsyntax.ParseExpression(src, "allow_exec", hcl.InitialPos)
		if diags.HasErrors() {
			return fmt.Errorf("module \"cookbook\" allow_exec: %s", diags.Error())
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || !v.CanIterateElements() {
			return fmt.Errorf("module \"cookbook\" allow_exec is not a literal list of commands")
		}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.Type() == cty.String && !have[e.AsString()] {
				have[e.AsString()] = true
				list = append(list, e)
			}
		}
	}
	for _, c := range cmds {
		if !have[c] {
			have[c] = true
			list = append(list, cty.StringVal(c))
		}
	}
	mod.Body().SetAttributeValue("allow_exec", cty.ListVal(list))
	return nil
}
