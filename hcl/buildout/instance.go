package buildout

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
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

// TailValues are the options of the runtime sections of slapgrid's tail,
// by section: what the node fills in the sections InstanceTail declares.
func (c SlapConnection) TailValues() map[string]map[string]string {
	return map[string]map[string]string{
		"slap-connection": {
			"computer-id": c.ComputerID, "partition-id": c.PartitionID, "server-url": c.ServerURL,
			"software-release-url": c.SoftwareReleaseURL, "key-file": c.KeyFile, "cert-file": c.CertFile,
			"shared-part-list": strings.Join(c.SharedParts, "\n"), "build-time-part-list": strings.Join(c.BuildTimeParts, "\n"),
			"requested-state": c.RequestedState,
		},
		// Kept for backward compatibility, as slapgrid keeps it.
		"slap_connection": {
			"computer_id": c.ComputerID, "partition_id": c.PartitionID, "server_url": c.ServerURL,
			"software_release_url": c.SoftwareReleaseURL, "key_file": c.KeyFile, "cert_file": c.CertFile,
		},
		"storage-configuration": {"storage-home": c.StorageHome},
		"network-information":   {"global-ipv4-network": c.GlobalIPv4Network},
	}
}

// Tail is the text slapgrid appends to the instance profile, with these
// values.
func (c SlapConnection) Tail() string {
	var b strings.Builder
	b.WriteString(`
# This is beginning of zc.buildout profile's tail added by slapgrid
[buildout]
# put buildout generated binaries in specific directory
bin-directory = ${buildout:directory}/sbin

# protect software and run parts offline
offline = true
`)
	vals := c.TailValues()
	for _, sec := range TailSections {
		fmt.Fprintf(&b, "\n[%s]\n", sec)
		for _, k := range tailOptions[sec] {
			v := vals[sec][k]
			if strings.Contains(v, "\n") {
				v = "\n  " + strings.ReplaceAll(v, "\n", "\n  ")
			}
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	}
	b.WriteString("# This is end of zc.buildout profile's tail added by slapgrid\n")
	return b.String()
}

// TailSections are the runtime sections of slapgrid's tail, in its order.
var TailSections = []string{"slap-connection", "slap_connection", "storage-configuration", "network-information"}

var tailOptions = map[string][]string{
	"slap-connection": {"computer-id", "partition-id", "server-url", "software-release-url", "key-file", "cert-file",
		"shared-part-list", "build-time-part-list", "requested-state"},
	"slap_connection":       {"computer_id", "partition_id", "server_url", "software_release_url", "key_file", "cert_file"},
	"storage-configuration": {"storage-home"},
	"network-information":   {"global-ipv4-network"},
}

// InstanceTail is slapgrid's tail as a converted instance profile holds it
// (ConvertInstance, and `slapnode convert` of an instance profile): the
// [buildout] options it sets, and its runtime sections with empty options
// (the requested state "started"), which the node fills with the
// partition's values (TailValues) when it applies the profile.
func InstanceTail() string {
	t := SlapConnection{RequestedState: "started"}.Tail()
	return strings.Replace(t, "# This is beginning of zc.buildout profile's tail added by slapgrid\n",
		"# This is beginning of zc.buildout profile's tail added by slapgrid\n# (the node fills its runtime sections when it applies the profile: docs/porting.md)\n", 1)
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

// NodeRecipeAttr is the attribute that marks, in a converted instance
// profile, a data part the node computes or acts on: its value is the
// buildout recipe the section named (slapconfiguration, switch-softwaretype,
// publish…). The node reads the mark when it applies the profile (package
// partition) and removes it from the part's value.
const NodeRecipeAttr = "slapnode-recipe"

// SwitchProfileAttr is the attribute the node gives a switch-softwaretype
// data part: a reference to the SECTION:OPTION its software type names,
// the path of the nested profile (so that the part rendering it is
// installed first).
const SwitchProfileAttr = "slapnode-profile"

// InstanceSection is an instance-side section of a converted instance
// profile, for the engine to act on after the parts are applied.
type InstanceSection struct {
	Section string // buildout section name
	Part    string // its part name (mangled)
	Kind    string // KindPublish, KindSwitchSoftwareType, KindRequest…
	Variant string
	Recipe  string // the buildout recipe
}

// InstanceResult is a converted instance profile.
type InstanceResult struct {
	*Result
}

// requestInputSuffix names the data part that holds a request section's
// own options (MangleName never produces "__s…", so it cannot collide).
const requestInputSuffix = "__slapnode_request_input"

// ConvertInstance converts a rendered instance profile (a loaded closure)
// into one HCL instance profile, as slapgrid runs it: slapgrid's tail
// (InstanceTail) is appended when the configuration has not got it yet,
// then the closure is converted as ConvertConfig does, the instance-side
// recipes in the forms `slapnode convert` gives them (emitNodeSection):
// slapconfiguration and switch-softwaretype sections become data parts
// the node computes, publish a data part the node reads, request an HCL
// request block with a part exposing connection-NAME options.
func ConvertInstance(cfg *Config, opts ConvertOptions) (*InstanceResult, error) {
	opts.Kind = "instance"
	work := &Config{Root: cfg.Root, Files: cfg.Files, Sections: copyData(cfg.Sections)}
	if work.Sections["slap-connection"] == nil {
		if err := work.AppendText(cfg.Root, InstanceTail()); err != nil {
			return nil, err
		}
	}
	res, err := ConvertConfig(work, opts)
	if err != nil {
		return nil, err
	}
	return &InstanceResult{Result: res}, nil
}

// nodeRecipe is the NodeRecipeAttr comment and mark of a node section.
func nodeComment(section, recipe, kind string) string {
	switch kind {
	case KindSlapConfiguration:
		return fmt.Sprintf("[%s] (%s): the node sets the options this recipe computes (the partition's parameters, addresses, ids) when it applies the profile.", section, recipe)
	case KindSwitchSoftwareType:
		return fmt.Sprintf("[%s] (%s): the node runs the profile its software type names, as a nested profile.", section, recipe)
	case KindPublish:
		return fmt.Sprintf("[%s] (%s): the node publishes these options as the instance's connection parameters.", section, recipe)
	}
	return fmt.Sprintf("[%s] (%s)", section, recipe)
}

// emitNodeSection writes a section whose recipe is one of slapos.cookbook's
// instance-side recipes (InstanceRecipe): a data part marked with
// NodeRecipeAttr, or, for a request, the request block and its parts
// (writeRequest). It is the one mapping of these recipes, used by
// `slapnode convert` and by the node converting an instance profile in
// memory alike.
func (c *converter) emitNodeSection(body *hclwrite.Body, s *cvSection, orig, kind, variant string, opts []*cvOption) {
	var rest []*cvOption
	deps := []string{}
	for _, o := range opts {
		switch {
		case o.op == OpSet && o.name == "recipe":
		case o.op == OpSet && o.name == "<part-dependencies>":
			deps = append(deps, strings.Fields(o.value)...)
		default:
			rest = append(rest, o)
		}
	}
	plain := func(k string) *cvOption { return plainOption(opts, k) }
	switch kind {
	case KindRequest:
		raw := map[string]string{}
		for _, o := range opts {
			if o.op == OpSet {
				raw[o.name] = o.value
			}
		}
		if _, ok := raw["<"]; ok && !c.flatten {
			if cfg := c.closure(); cfg != nil {
				r := &resolver{cfg: cfg, data: map[string]*secState{}}
				if ext, err := r.extendRaw(s.name, raw, nil); err == nil {
					raw = ext
				}
			}
		}
		for _, obsolete := range []string{"config", "sla"} {
			if _, ok := raw[obsolete]; ok {
				c.warn(s.pos, WarnUnmappedRecipe, "[%s] 'config' & 'sla' options are obsolete (slapos.cookbook:request refuses them): use config-NAME and sla-NAME options; the request is not converted", s.name)
				c.emitPartAs(body, s, MangleName(s.name), opts)
				return
			}
		}
		is := InstanceSection{Section: s.name, Part: MangleName(s.name), Kind: kind, Variant: variant, Recipe: orig}
		input := is.Part + requestInputSuffix
		c.emitPartAs(body, s, input, rest)
		var w strings.Builder
		writeRequest(&w, is, raw, input)
		f, diags := hclwrite.ParseConfig([]byte(w.String()), "request.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			c.warn(s.pos, WarnUnmappedRecipe, "[%s] the request could not be converted (a converter bug; please report it): %s", s.name, diags.Error())
			return
		}
		body.AppendUnstructuredTokens(f.BuildTokens(nil))
		return
	case KindPublish:
		if ext := plain("-extends"); ext != nil {
			deps = append(deps, strings.Fields(ext.value)...)
		}
	case KindSwitchSoftwareType:
		if c.hasSection("slap-configuration") && s.name != "slap-configuration" {
			// The nested profile gets [slap-configuration]'s values: it
			// must be evaluated with the switch.
			deps = append(deps, "slap-configuration")
		}
	}
	if len(deps) > 0 {
		rest = append(rest, &cvOption{name: "<part-dependencies>", op: OpSet, value: strings.Join(deps, " "), pos: s.pos})
	}
	s.comment = append(s.comment, nodeComment(s.name, orig, kind))
	rest = append([]*cvOption{{name: NodeRecipeAttr, op: OpSet, value: orig, pos: s.pos}}, rest...)
	c.emitPartAs(body, s, MangleName(s.name), rest)
}

// writeRequest writes the request block of a request section and the part
// that takes its place: the section's own options (read from the input
// part) plus connection-NAME for each name of `return`, as
// slapos.cookbook:request sets them. The state a request asks for, unless
// it says, is the requesting instance's own (slap-connection's
// requested-state), but never destroyed.
func writeRequest(w *strings.Builder, is InstanceSection, raw map[string]string, input string) {
	in := func(k string) string { return "part." + input + "." + MangleName(k) }
	serialised := strings.HasSuffix(is.Variant, "serialised")
	optional := strings.HasPrefix(is.Variant, "optional")
	label := is.Section
	if n, ok := raw["name"]; ok && !strings.Contains(n, "${") && strings.TrimSpace(n) != "" {
		label = strings.TrimSpace(n)
	}
	fmt.Fprintf(w, "\n# [%s] (%s): a request for another instance.\n", is.Section, is.Recipe)
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
	state := `contains(["started", "stopped"], part.slap-connection.requested-state) ? part.slap-connection.requested-state : "started"`
	if _, ok := raw["state"]; ok {
		state = in("state")
	}
	fmt.Fprintf(w, "  state = %s\n", state)
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
		if k == "recipe" || k == "<" || k == ProfileBaseOption || k == "<part-dependencies>" || k == "requested-state" || strings.HasPrefix(k, "connection-") {
			// requested-state and connection-* are the recipe's (below),
			// whatever a macro copied (<= slap-connection has a
			// requested-state).
			continue
		}
		fmt.Fprintf(w, "  %s = %s\n", MangleName(k), in(k))
	}
	conn := "request" + traversalStep(label) + ".connection"
	if serialised {
		conn = fmt.Sprintf("jsondecode(lookup(%s, \"_\", \"{}\"))", conn)
	}
	fmt.Fprintf(w, "  requested-state = %s\n", state)
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

// traversalStep writes a request name as an HCL traversal step: .NAME,
// or ["NAME"] for a name that is not an identifier ("Hugo frontend").
func traversalStep(name string) string {
	if hclsyntax.ValidIdentifier(name) {
		return "." + name
	}
	return "[" + strconv.Quote(name) + "]"
}

// emitPublishEarly writes a slapos.cookbook:publish-early section: a data
// part holding, for each `-init` line `NAME SECTION:OPTION` whose NAME the
// section does not set, NAME = ${SECTION:OPTION}, and `-publish` listing
// its own options and those names, as the recipe sets them; the publish
// section that -extends it publishes them. The recipe also publishes them
// at once and gives the init sections the values published before, so
// that generated values (passwords) survive; slapnode's recipes keep what
// they generate across applies themselves, so nothing is read back.
func (c *converter) emitPublishEarly(body *hclwrite.Body, s *cvSection, opts []*cvOption) {
	own := map[string]bool{}
	var rest []*cvOption
	var initText string
	for _, o := range opts {
		if o.op == OpSet && o.name == "recipe" {
			continue
		}
		if o.op == OpSet && o.name == "-init" {
			initText = o.value
		}
		if o.op == OpSet {
			own[o.name] = true
		}
		rest = append(rest, o)
	}
	var publish []string
	for _, k := range sortedKeys(own) {
		if !strings.HasPrefix(k, "-") {
			publish = append(publish, k)
		}
	}
	for _, line := range strings.Split(initText, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 || strings.Count(f[1], ":") != 1 {
			c.warn(s.pos, WarnBadReference, "[%s] -init line %q is not NAME SECTION:OPTION (the recipe fails on it)", s.name, strings.TrimSpace(line))
			continue
		}
		if own[f[0]] {
			continue // forced by the section (rendered conditionally, usually)
		}
		own[f[0]] = true
		publish = append(publish, f[0])
		rest = append(rest, &cvOption{name: f[0], op: OpSet, value: "${" + f[1] + "}", pos: s.pos})
	}
	if !own["-publish"] {
		rest = append(rest, &cvOption{name: "-publish", op: OpSet, value: strings.Join(publish, " "), pos: s.pos})
	}
	s.comment = append(s.comment, fmt.Sprintf("[%s] (slapos.cookbook:publish-early): the values the publish section extending it sends.", s.name))
	c.emitPartAs(body, s, MangleName(s.name), rest)
}
