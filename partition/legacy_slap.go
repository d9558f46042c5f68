package partition

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/buildout"
	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/schema"
)

// slapData is what slapgrid and the master tell a partition's buildout:
// the tail's slap-connection and what slapconfiguration fetches
// (getInstanceParameterDict, the state, the addresses).
type slapData struct {
	conn         buildout.SlapConnection
	softwareType string
	// params is the instance parameter dict as the master sends it: one
	// "_" JSON document (json-in-xml) or strings (xml).
	params        map[string]any
	serialisation string
	ipv4, ipv6    []string
	title, root   string
	guid          string
	shared        []map[string]any // slave_instance_list
	tap           string
	descriptor    *schema.Descriptor
}

// slapData gathers the partition's data for its instance-side recipes.
func (e *Engine) slapData(req *InstanceRequest, it *profile.InstanceType, res *schema.Result) (*slapData, error) {
	s, part := req.Software, req.Partition
	state := req.State
	if state == "" {
		state = "started"
	}
	d := &slapData{
		conn: buildout.SlapConnection{
			ComputerID: e.NodeID, PartitionID: part.ID, ServerURL: req.MasterURL,
			SoftwareReleaseURL: s.URL, KeyFile: req.KeyFile, CertFile: req.CertFile,
			RequestedState: state,
		},
		softwareType:  it.Name,
		serialisation: it.Serialisation,
		title:         req.Title,
		tap:           part.Tap,
		root:          req.RootTitle,
	}
	if s.Legacy != nil {
		d.descriptor = s.Legacy.Descriptor
	}
	if d.serialisation == "" {
		d.serialisation = schema.SerialisationXML
	}
	if d.title == "" {
		d.title = part.ID
	}
	if d.root == "" {
		d.root = d.title
	}
	d.params = wireParameters(asRequested(req.Params, res), d.serialisation)
	for _, ip := range append(append([]string{}, part.IPv4List...), part.IPv4) {
		if ip != "" && !containsString(d.ipv4, ip) {
			d.ipv4 = append(d.ipv4, ip)
		}
	}
	for _, ip := range append(append([]string{}, part.IPv6List...), part.IPv6) {
		if ip != "" && !containsString(d.ipv6, ip) {
			d.ipv6 = append(d.ipv6, ip)
		}
	}
	sort.Strings(d.ipv4)
	sort.Strings(d.ipv6)
	d.guid = "SOFTINST-" + digestOf([]byte(e.NodeID + "/" + part.ID))[:12]
	for _, sh := range req.Shared {
		params := wireParameters(sh.Parameters, d.serialisation)
		entry := map[string]any{"slave_reference": sh.Reference, "slave_title": sh.Title, "slap_software_type": sh.SoftwareType}
		for k, v := range params {
			entry[k] = v
		}
		d.shared = append(d.shared, entry)
	}
	return d, nil
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// slapConfiguration computes the options slapos.cookbook:slapconfiguration
// (variant "", "serialised" or "jsonschema") sets: the partition's ids,
// state, titles and addresses, and one configuration.KEY per parameter,
// with `configuration` the whole dict. opts are the section's own options,
// resolved (jsonschema, set-default… for the jsonschema variant).
func (d *slapData) slapConfiguration(variant string, opts map[string]string) (map[string]cty.Value, error) {
	v := map[string]any{
		"instance-state":             d.conn.RequestedState,
		"slap-software-type":         d.softwareType,
		"slap-computer-partition-id": d.conn.PartitionID,
		"slap-computer-id":           d.conn.ComputerID,
		"slap-software-release-url":  d.conn.SoftwareReleaseURL,
		"slave-instance-list":        anyList(d.shared),
		"timestamp":                  "",
		"instance-title":             d.title,
		"root-instance-title":        d.root,
		"root-instance-short-title":  d.root,
		"instance-guid":              d.guid,
		"ipv4":                       stringsAny(d.ipv4),
		"ipv6":                       stringsAny(d.ipv6),
		"storage-dict":               map[string]any{},
	}
	if d.tap != "" {
		// From the partition's resources (slapformat's .slapos-resource,
		// flattened as the recipe flattens it).
		v["tap-name"] = d.tap
	}
	if len(d.ipv4) > 0 {
		v["ipv4-random"] = d.ipv4[0]
	}
	if len(d.ipv6) > 0 {
		v["ipv6-random"] = d.ipv6[0]
	}
	params := copyMap(d.params)
	var conf any = params
	switch variant {
	case "serialised":
		conf = unwrapAny(params)
	case "jsonschema":
		c, err := d.validateJSONSchema(params, opts, v)
		if err != nil {
			return nil, err
		}
		conf = c
	}
	v["configuration"] = conf
	if m, ok := conf.(map[string]any); ok {
		for k, x := range m {
			if strings.ContainsAny(k, "=:") {
				// configparser could not read such an option name back.
				continue
			}
			v["configuration."+k] = x
		}
	}
	return goToCtyMap(v)
}

// validateJSONSchema is slapconfiguration.jsonschema: the parameters are
// unwrapped when the type is json-in-xml, validated against the type's
// schema in the software.cfg.json the `jsonschema` option names, and the
// schema's defaults applied when set-default says so (main, all).
func (d *slapData) validateJSONSchema(params map[string]any, opts map[string]string, out map[string]any) (any, error) {
	parse := func(key, def string) (main, shared bool, err error) {
		val := strings.TrimSpace(opts[key])
		if val == "" {
			val = def
		}
		switch val {
		case "none":
			return false, false, nil
		case "main":
			return true, false, nil
		case "shared":
			return false, true, nil
		case "all":
			return true, true, nil
		}
		return false, false, fmt.Errorf("%q is not a valid value for option %q: accepted values are none, main, shared, all", val, key)
	}
	validate, validateShared, err := parse("validate-parameters", "all")
	if err != nil {
		return nil, err
	}
	setDefault, _, err := parse("set-default", "none")
	if err != nil {
		return nil, err
	}
	unstringify, _, err := parse("unstringify", "none")
	if err != nil {
		return nil, err
	}
	path := strings.TrimPrefix(strings.TrimSpace(opts["jsonschema"]), "file://")
	if path == "" {
		return nil, errors.New(`option "jsonschema" is required: the path of the software.cfg.json`)
	}
	desc, err := schema.LoadDescriptor(path)
	if err != nil {
		return nil, err
	}
	var conf any = params
	if t, err := desc.Lookup(d.softwareType, false); err == nil && desc.SerialisationOf(t) == schema.SerialisationJSONInXML {
		conf = unwrapAny(params)
	}
	if validateShared {
		var valid []any
		for _, sh := range d.shared {
			valid = append(valid, map[string]any{"reference": sh["slave_reference"], "parameters": unwrapAny(sh)})
		}
		out["valid-shared-instance-list"] = anyOrEmpty(valid)
		out["invalid-shared-instance-list"] = []any{}
	}
	if !validate {
		return conf, nil
	}
	t, err := desc.Lookup(d.softwareType, false)
	if err != nil || t.Request == "" {
		return nil, fmt.Errorf("requested software-type %q seems to have no JSON schema entry in %s", d.softwareType, path)
	}
	val, err := desc.Validator(d.softwareType, false, schema.Options{})
	if err != nil {
		return nil, err
	}
	m, _ := conf.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	var res *schema.Result
	if unstringify {
		res, err = val.ValidateStrings(m)
	} else {
		res, err = val.Validate(m)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid parameters: %w", err)
	}
	switch {
	case setDefault && unstringify:
		return res.Params, nil
	case setDefault:
		// Defaults, but the given values as they were.
		out := copyMap(res.Params)
		for k, x := range m {
			out[k] = x
		}
		return out, nil
	case unstringify:
		out := copyMap(res.Params)
		for _, p := range res.Defaults {
			if k, ok := strings.CutPrefix(p, "/"); ok && !strings.Contains(k, "/") {
				delete(out, strings.ReplaceAll(strings.ReplaceAll(k, "~1", "/"), "~0", "~"))
			}
		}
		return out, nil
	}
	return m, nil
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// unwrapAny is librecipe's unwrap: the JSON document under "_", else the
// value itself.
func unwrapAny(m map[string]any) any {
	raw, ok := m["_"].(string)
	if !ok {
		return m
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return m
	}
	return v
}

func stringsAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func anyList(l []map[string]any) []any {
	out := make([]any, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

func anyOrEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// goToCtyMap turns computed options into cty values (through JSON, as the
// engine does for recipe outputs).
func goToCtyMap(v map[string]any) (map[string]cty.Value, error) {
	out := make(map[string]cty.Value, len(v))
	for k, x := range v {
		c, err := jsonToCty(x)
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", k, err)
		}
		out[k] = c
	}
	return out, nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// asRequested are the parameters as a requester sends them to the master:
// as given, but with the strings that validation converted to the
// schema's types (--param port=8080) converted, without the schema's
// defaults, which the partition's slapconfiguration applies itself. A
// json-in-xml software type then gets the number SlapOS's client would
// have sent, not the text of the command line.
func asRequested(params map[string]any, res *schema.Result) map[string]any {
	if res == nil || len(res.Coerced) == 0 {
		return params
	}
	out, _ := deepCopy(params).(map[string]any)
	for _, ptr := range res.Coerced {
		if v, ok := atPointer(res.Params, ptr); ok {
			setPointer(out, ptr, v)
		}
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// pointerTokens splits a JSON pointer (RFC 6901) into its unescaped tokens.
func pointerTokens(ptr string) []string {
	if ptr == "" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

func atPointer(v any, ptr string) (any, bool) {
	for _, t := range pointerTokens(ptr) {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[t]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// setPointer replaces the value at ptr, which must exist in v.
func setPointer(v any, ptr string, val any) {
	toks := pointerTokens(ptr)
	if len(toks) == 0 {
		return
	}
	parent, ok := atPointer(v, "/"+strings.Join(escapeTokens(toks[:len(toks)-1]), "/"))
	if len(toks) == 1 {
		parent, ok = v, true
	}
	if !ok {
		return
	}
	last := toks[len(toks)-1]
	switch x := parent.(type) {
	case map[string]any:
		if _, there := x[last]; there {
			x[last] = val
		}
	case []any:
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(x) {
			x[i] = val
		}
	}
}

func escapeTokens(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	}
	return out
}
