package partition

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/buildout"
	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/fsuser"
	"github.com/slapnode/slapnode/runtime/wasmhost"
	"github.com/slapnode/slapnode/schema"
)

// A SlapOS software release written in buildout (software.cfg) is applied
// as it is, in two phases, as slapgrid does:
//
//  1. the software profile is converted in memory (package buildout, with
//     --flatten's semantics) and installed like any HCL software profile;
//     its slapos.recipe.template parts render the instance profile into the
//     software directory (instance.cfg, or template.cfg);
//  2. each partition loads that rendered profile, appends slapgrid's tail
//     (slap-connection…), computes the sections of the instance-side
//     recipes host-side (slapconfiguration, userinfo, free_port), converts
//     it in memory (buildout.ConvertInstance) and applies it; a
//     switch-softwaretype section runs the profile its software type names
//     as a nested profile in the same partition, with its own state;
//     publish sections become the connection parameters, request sections
//     request blocks. Services are the executables the recipes write in
//     etc/service and etc/run, promises those of etc/promise and etc/plugin.

// Legacy is what a software release loaded from buildout carries.
type Legacy struct {
	Config     *buildout.Config
	Warnings   []buildout.Warning
	Descriptor *schema.Descriptor // software.cfg.json beside the profile, if any
}

// IsLegacyProfile says whether a software profile path is a buildout file
// (applied as a SlapOS release) rather than HCL.
func IsLegacyProfile(path string) bool {
	base := filepath.Base(path)
	return strings.HasSuffix(base, ".cfg") || strings.HasSuffix(base, ".cfg.in")
}

// loadLegacySoftware converts a buildout software release in memory and
// loads it as a software profile. Its software types are those of the
// software.cfg.json beside it, or "default" (and any other name: the
// instance profile's switch-softwaretype decides) without one.
func (e *Engine) loadLegacySoftware(url string) (*Software, error) {
	s := &Software{URL: url, Path: e.SoftwareDir(url)}
	cfg, err := buildout.Load(url, buildout.LoadOptions{Directory: s.Path})
	if err != nil {
		return nil, fmt.Errorf("software %s: %w", url, err)
	}
	res, err := buildout.ConvertConfig(cfg, buildout.ConvertOptions{Kind: "software"})
	if err != nil {
		return nil, fmt.Errorf("software %s: %w", url, err)
	}
	p, diags := profile.LoadSource(convertedName(url), withLegacyGrants(res.HCL, cfg), profile.Software)
	if err := p.Err(diags); err != nil {
		return nil, fmt.Errorf("software %s, converted from buildout (see it with 'slapnode convert --flatten %s'): %w", url, url, err)
	}
	p.Files = cfg.Files
	s.Profile = p
	s.Legacy = &Legacy{Config: cfg, Warnings: res.Warnings}
	ev := p.Evaluator(e.softwareVars(s))
	s.Info, diags = p.Software(ev)
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	if s.Info.Name == "" {
		s.Info.Name = filepath.Base(filepath.Dir(url))
	}
	s.Types = map[string]*profile.InstanceType{}
	if d, err := schema.LoadDescriptor(url + ".json"); err == nil {
		s.Legacy.Descriptor = d
		for _, t := range d.List() {
			if t.Shared {
				continue
			}
			it := &profile.InstanceType{Name: t.TypeName(), Title: t.Title, Description: t.Description,
				Serialisation: d.SerialisationOf(t), Index: t.Index}
			if t.Request != "" {
				it.Parameters = d.Resolve(t.Request)
			}
			if t.Response != "" {
				it.Connection = d.Resolve(t.Response)
			}
			s.Types[it.Name] = it
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("software %s: %w", url, err)
	}
	if len(s.Types) == 0 {
		s.Types["default"] = &profile.InstanceType{Name: "default", Serialisation: schema.SerialisationXML}
	}
	if e.Out != nil && len(res.Warnings) > 0 && e.Verbose {
		for _, w := range res.Warnings {
			e.progress("convert: %s", w)
		}
	}
	if e.Out != nil {
		// What the release may do outside the sandbox is said by plan and
		// apply with every release's grants; this says where they come
		// from.
		e.progress("buildout release, converted in memory (slapnode convert --flatten shows the result)")
	}
	return s, nil
}

// convertedName is the name diagnostics give an in-memory conversion: in
// the same directory as the buildout file, so relative paths resolve there.
func convertedName(path string) string { return path + " (converted)" }

// legacyType returns the software type of a legacy release: one of its
// descriptor, or, without a descriptor, any name (the instance profile's
// switch-softwaretype decides whether it knows it).
func (s *Software) legacyType(name string) (*profile.InstanceType, bool) {
	if s.Legacy == nil || s.Legacy.Descriptor != nil {
		return nil, false
	}
	return &profile.InstanceType{Name: name, Serialisation: schema.SerialisationXML}, true
}

// LegacyInstanceProfile is the rendered instance profile of an installed
// legacy release, as slapgrid looks for it: instance.cfg, else
// template.cfg; "" when the release has none (a software-only buildout).
func (s *Software) LegacyInstanceProfile() string {
	for _, n := range []string{"instance.cfg", "template.cfg"} {
		p := filepath.Join(s.Path, n)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// instantiateLegacy instantiates a buildout release's software type in a
// partition (see the comment at the top of this file).
func (e *Engine) instantiateLegacy(ctx context.Context, req *InstanceRequest, it *profile.InstanceType, res *schema.Result, plan bool) (*Instance, error) {
	s := req.Software
	part := req.Partition
	path := s.LegacyInstanceProfile()
	if path == "" {
		if plan {
			inst := &Instance{Type: it.Name, Params: res.Params, Report: &Report{Target: part.ID, Counts: map[ActionKind]int{}}}
			inst.Report.add(Action{Part: "instance.cfg", Kind: Install, Recipe: "buildout", Reason: "rendered when the software is installed"})
			return inst, nil
		}
		return nil, fmt.Errorf("software release %s is not correctly installed: neither instance.cfg nor template.cfg in %s", s.URL, s.Path)
	}
	return e.instantiateBuildout(ctx, req, it, res, plan, func(lr *legacyRun, stateDir string) error {
		return lr.apply(ctx, path, stateDir, nil, "", 0)
	})
}

// IsConvertedInstance reports whether a loaded instance profile is a
// buildout instance profile converted to HCL (`slapnode convert`): it
// holds slapgrid's tail or sections the node computes. Such a profile is
// applied with SlapOS's instance-side semantics, as the node applies a
// buildout instance profile it converts in memory.
func IsConvertedInstance(p *profile.Profile) bool {
	if p.Part["slap-connection"] != nil {
		return true
	}
	secs, err := buildout.NodeSections(p)
	return err != nil || len(secs) > 0
}

// instantiateConverted instantiates a converted instance profile (an HCL
// instance profile IsConvertedInstance recognises) in a partition.
func (e *Engine) instantiateConverted(ctx context.Context, req *InstanceRequest, it *profile.InstanceType, res *schema.Result, p *profile.Profile, plan bool) (*Instance, error) {
	return e.instantiateBuildout(ctx, req, it, res, plan, func(lr *legacyRun, stateDir string) error {
		return lr.run(ctx, p, it.Profile, stateDir, nil, "", 0)
	})
}

// instantiateBuildout prepares the partition and the slap data of a
// buildout instance, runs first (the main profile), and gathers the
// services and connection parameters.
func (e *Engine) instantiateBuildout(ctx context.Context, req *InstanceRequest, it *profile.InstanceType, res *schema.Result, plan bool, first func(*legacyRun, string) error) (*Instance, error) {
	part := req.Partition
	if !validID(part.ID) {
		return nil, fmt.Errorf("invalid partition id %q", part.ID)
	}
	if part.StateDir == "" {
		part.StateDir = StateDir(e.Root, part.ID)
		req.Partition.StateDir = part.StateDir
	}
	if !plan {
		if err := preparePartitionDir(part); err != nil {
			return nil, err
		}
	}
	stateDir := part.StateDir
	data, err := e.slapData(req, it, res)
	if err != nil {
		return nil, err
	}
	inst := &Instance{Type: it.Name, Params: res.Params, Report: &Report{Target: part.ID, Counts: map[ActionKind]int{}},
		Connection: map[string]any{}, SharedConnections: map[string]map[string]any{}}
	lp := &legacyRun{e: e, req: req, it: it, params: res.Params, data: data, plan: plan, inst: inst}
	if err := first(lp, stateDir); err != nil {
		return nil, err
	}
	if plan {
		return inst, nil
	}
	if c := part.Credential; c != nil {
		skipped, err := chownTree(part.Path, int(c.Uid), int(c.Gid))
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", part.ID, err)
		}
		for _, s := range skipped {
			e.progress("partition %s: %s", part.ID, s)
		}
	}
	if inst.Services, err = e.services(lp.main, lp.mainEv, &part, nil); err != nil {
		return nil, err
	}
	inst.PythonPlugins = lp.python
	if it.Connection != "" && len(inst.Connection) > 0 {
		v, err := schema.Compile(it.Connection, schema.Options{})
		if err != nil {
			return nil, fmt.Errorf("connection schema of %q: %w", it.Name, err)
		}
		if _, err := v.Validate(unwrapSerialised(inst.Connection)); err != nil {
			return nil, fmt.Errorf("published connection parameters do not match %s: %w", it.Connection, err)
		}
	}
	return inst, nil
}

// legacyRun is one instantiation of a legacy instance: the main profile and
// the nested ones its switch-softwaretype sections run.
type legacyRun struct {
	e      *Engine
	req    *InstanceRequest
	it     *profile.InstanceType
	params map[string]any
	data   *slapData
	plan   bool
	inst   *Instance
	main   *profile.Profile
	mainEv *profile.Evaluator
	// python: a profile of the instance grants python3 (for its plugins).
	python bool
	// slapConfiguration are the values of the main profile's
	// [slap-configuration], which a nested profile receives as its own
	// (switch-softwaretype's SubBuildout does the same).
	slapConfiguration map[string]cty.Value
}

// maxNesting bounds nested profiles (a switch-softwaretype naming a
// profile that switches again…).
const maxNesting = 4

// apply loads, converts and applies one instance profile (a buildout
// file); then its publish sections are read and its switch-softwaretype
// sections' nested profiles applied. parentSlap, for a nested profile, is
// the slap-configuration values it inherits.
func (lr *legacyRun) apply(ctx context.Context, path, stateDir string, parentSlap map[string]cty.Value, prefix string, depth int) error {
	part := lr.req.Partition
	if depth > maxNesting {
		return fmt.Errorf("%s: more than %d nested profiles (switch-softwaretype naming a profile that switches again?)", path, maxNesting)
	}
	// Read with the partition user's rights: a profile rendered in the
	// partition (or what it extends) cannot make the node read a file its
	// partition could not.
	cfg, err := buildout.Load(path, buildout.LoadOptions{Directory: part.Path, ReadFile: func(p string) ([]byte, error) { return readAs(part.Credential, p) },
		Env: condEnvAs(part.Credential)})
	if err != nil {
		return fmt.Errorf("instance profile: %w", err)
	}
	// The directories buildout computes are values of this partition:
	// written as options, templates given the [buildout] section (context
	// `section buildout buildout`) see them as buildout's do.
	for k, v := range map[string]string{"directory": part.Path, "parts-directory": filepath.Join(part.Path, "parts")} {
		if cur := cfg.Sections["buildout"][k]; cur == nil || cur.Source == "DEFAULT_VALUE" || cur.Source == "COMPUTED_VALUE" {
			cfg.Sections["buildout"][k] = &buildout.Value{Text: v, Source: path}
		}
	}
	if parentSlap != nil {
		// As SubBuildout: [slap-configuration] holds the parent's values,
		// whatever the nested profile's own recipe for it.
		if cfg.Sections["slap-configuration"] == nil {
			if err := cfg.AppendText(path, "[slap-configuration]\nrecipe = slapos.cookbook:slapconfiguration\n"); err != nil {
				return err
			}
		} else if k, _ := buildout.InstanceRecipe(cfg.Recipe("slap-configuration")); k != buildout.KindSlapConfiguration {
			cfg.Sections["slap-configuration"]["recipe"] = &buildout.Value{Text: "slapos.cookbook:slapconfiguration", Source: path}
		}
	}
	conv, err := buildout.ConvertInstance(cfg, buildout.ConvertOptions{})
	if err != nil {
		return fmt.Errorf("instance profile: %w", err)
	}
	p, diags := profile.LoadSource(convertedName(path), conv.HCL, profile.Instance)
	if err := p.Err(diags); err != nil {
		return fmt.Errorf("instance profile %s, converted from buildout: %w", path, err)
	}
	p.Files = cfg.Files
	return lr.run(ctx, p, path, stateDir, parentSlap, prefix, depth)
}

// run applies a converted instance profile (converted in memory, or by
// `slapnode convert`): the node binds the sections it computes (bind),
// applies the parts, then reads the publish sections and runs the nested
// profiles of the switch-softwaretype sections.
func (lr *legacyRun) run(ctx context.Context, p *profile.Profile, path, stateDir string, parentSlap map[string]cty.Value, prefix string, depth int) error {
	e := lr.e
	secs, err := buildout.NodeSections(p)
	if err != nil {
		return err
	}
	buildout.Unmark(p)
	t := lr.target(p, stateDir)
	computed, err := lr.bind(p, t, secs, parentSlap)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	applied, err := e.Apply(ctx, p, nil, t, lr.plan)
	if err != nil {
		return err
	}
	for _, a := range applied.Report.Actions {
		a.Part = prefix + a.Part
		lr.inst.Report.add(a)
	}
	ev := applied.Evaluator
	if depth == 0 {
		lr.main, lr.mainEv = p, ev
		lr.slapConfiguration = sectionValues(ev, "slap-configuration", computed)
	}
	if g := grantsPython(p, ev); g && !lr.python && !lr.plan && hasPythonPlugins(p) {
		e.progress("python3 granted to run the promise plugins slapnode has no native check for")
	}
	lr.python = lr.python || grantsPython(p, ev)
	if !lr.plan {
		for _, ps := range secs {
			if ps.Kind != buildout.KindPublish {
				continue
			}
			if _, installed := ev.Part(ps.Part); !installed {
				// Neither in parts nor used: buildout does not install
				// it, so it publishes nothing.
				continue
			}
			if err := lr.publish(p, ev, ps); err != nil {
				return fmt.Errorf("%s: [%s]: %w", path, ps.Section, err)
			}
		}
	}
	for _, sw := range secs {
		if sw.Kind != buildout.KindSwitchSoftwareType {
			continue
		}
		v, ok := ev.Part(sw.Part)
		nested := ""
		if ok && v.Type().IsObjectType() && v.Type().HasAttribute(buildout.SwitchProfileAttr) {
			if pv := v.GetAttr(buildout.SwitchProfileAttr); pv.IsKnown() && !pv.IsNull() && pv.Type() == cty.String {
				nested = pv.AsString()
			}
		}
		if nested != "" && !filepath.IsAbs(nested) {
			// A relative path (rendered = instance-x.cfg) is the
			// buildout directory's, the partition: buildout runs there.
			nested = filepath.Join(lr.req.Partition.Path, nested)
		}
		if nested == "" || (lr.plan && !fileExists(nested)) {
			if lr.plan {
				lr.inst.Report.add(Action{Part: prefix + sw.Section, Kind: Install, Recipe: sw.Recipe, Reason: "its profile is rendered at apply"})
				continue
			}
			return fmt.Errorf("%s: [%s]: the profile of software type %q is not known", path, sw.Section, lr.data.softwareType)
		}
		slap := lr.slapConfiguration
		if parentSlap != nil {
			slap = parentSlap
		}
		if slap == nil {
			return fmt.Errorf("%s: [%s]: the section to retrieve slap partition parameters (with slapos.cookbook:slapconfiguration recipe or a derived one) must be named [slap-configuration]", path, sw.Section)
		}
		if !lr.plan {
			e.progress("%s%s: software type %s runs %s", prefix, sw.Section, lr.data.softwareType, nested)
		}
		sub := filepath.Join(stateDir, "nested", sw.Part)
		if err := lr.apply(ctx, nested, sub, slap, prefix+sw.Section+"/", depth+1); err != nil {
			return err
		}
	}
	return nil
}

// bind gives the sections the node computes their values on the loaded
// profile (buildout.Bind): slapgrid's tail, the slapconfiguration
// sections (the parent's values for a nested profile's
// [slap-configuration], as SubBuildout), and the profile each
// switch-softwaretype section picks. It returns the values of
// [slap-configuration], its own options with the computed ones over them.
func (lr *legacyRun) bind(p *profile.Profile, t *Target, secs []buildout.InstanceSection, parentSlap map[string]cty.Value) (map[string]cty.Value, error) {
	for sec, vals := range lr.data.conn.TailValues() {
		if p.Part[buildout.MangleName(sec)] == nil {
			continue
		}
		m := make(map[string]cty.Value, len(vals))
		for k, v := range vals {
			m[k] = cty.StringVal(v)
		}
		if err := buildout.Bind(p, buildout.MangleName(sec), m); err != nil {
			return nil, err
		}
	}
	var slapConf map[string]cty.Value
	for _, s := range secs {
		if s.Kind != buildout.KindSlapConfiguration {
			continue
		}
		// A fresh evaluator each time: one reads what the previous
		// bindings set, never a value cached before them.
		own, err := buildout.Options(p, p.Evaluator(t.Vars), s.Part)
		if err != nil {
			return nil, fmt.Errorf("[%s]: %w", s.Section, err)
		}
		var vals map[string]cty.Value
		if parentSlap != nil && s.Section == "slap-configuration" {
			vals = parentSlap
		} else if vals, err = lr.data.slapConfiguration(s.Variant, own); err != nil {
			return nil, fmt.Errorf("[%s] (%s): %w", s.Section, s.Recipe, err)
		}
		if err := buildout.Bind(p, s.Part, vals); err != nil {
			return nil, err
		}
		if s.Section == "slap-configuration" {
			slapConf = map[string]cty.Value{}
			for k, v := range own {
				slapConf[k] = cty.StringVal(v)
			}
			for k, v := range vals {
				slapConf[k] = v
			}
		}
	}
	for _, s := range secs {
		if s.Kind != buildout.KindSwitchSoftwareType {
			continue
		}
		own, err := buildout.Options(p, p.Evaluator(t.Vars), s.Part)
		if err != nil {
			return nil, fmt.Errorf("[%s]: %w", s.Section, err)
		}
		target, err := switchTarget(s.Section, own, lr.data.softwareType)
		if err != nil {
			return nil, err
		}
		sec, opt, _ := strings.Cut(target, ":")
		if err := buildout.BindReference(p, s.Part, buildout.SwitchProfileAttr, sec, opt); err != nil {
			return nil, fmt.Errorf("[%s]: software type %s: %w", s.Section, lr.data.softwareType, err)
		}
	}
	return slapConf, nil
}

// target is what a profile of this instance is applied to.
func (lr *legacyRun) target(p *profile.Profile, stateDir string) *Target {
	e, s, part := lr.e, lr.req.Software, lr.req.Partition
	vars := e.softwareVars(s)
	vars["profile"] = cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(p.Dir)})
	vars["partition"] = cty.ObjectVal(map[string]cty.Value{
		"id": cty.StringVal(part.ID), "path": cty.StringVal(part.Path), "user": cty.StringVal(part.User),
		"ipv4": cty.StringVal(part.IPv4), "ipv6": cty.StringVal(part.IPv6),
	})
	pv, err := jsonToCty(lr.params)
	if err != nil {
		pv = cty.EmptyObjectVal
	}
	vars["parameter"] = pv
	vars["software_type"] = cty.StringVal(lr.it.Name)
	vars["shared"] = cty.EmptyTupleVal
	t := &Target{
		Kind: "instance", Name: part.ID, Dir: part.Path, StateDir: stateDir, ProfileDir: p.Dir, Vars: vars,
		Context: map[string]any{
			"kind":          "instance",
			"partition":     map[string]any{"id": part.ID, "path": part.Path, "user": part.User, "ipv4": part.IPv4, "ipv6": part.IPv6},
			"software":      map[string]any{"path": s.Path, "url": s.URL},
			"software_type": lr.it.Name,
			"profile_dir":   p.Dir,
			"cache_dir":     e.cacheDir(),
			"node":          map[string]any{"id": e.NodeID, "root": e.Root},
		},
		Mounts:     e.mounts(wasmhost.Mount{HostPath: part.Path}, p, s.Profile),
		Credential: part.Credential,
		Exec:       part.Exec,
		Force:      lr.req.Force,
		Requester:  lr.req.Requester,
	}
	mounted := false
	for _, m := range t.Mounts {
		mounted = mounted || m.HostPath == s.Path
	}
	if !mounted && !within(part.Path, s.Path) {
		t.Mounts = append(t.Mounts, wasmhost.Mount{HostPath: s.Path, ReadOnly: true})
	}
	return t
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// switchTarget picks the SECTION:OPTION a switch-softwaretype section maps
// the software type to, as the recipe does (RootSoftwareInstance falls back
// to default).
func switchTarget(section string, opts map[string]string, softwareType string) (string, error) {
	t := softwareType
	v, ok := opts[t]
	if !ok && t == "RootSoftwareInstance" {
		t = "default"
		v, ok = opts[t]
	}
	if !ok {
		var known []string
		for k := range opts {
			if k != "recipe" && k != buildout.ProfileBaseOption && !strings.HasPrefix(k, "<") && !strings.HasPrefix(k, "-") && k != "override" {
				known = append(known, k)
			}
		}
		sort.Strings(known)
		return "", fmt.Errorf("[%s]: this software type (%s) isn't mapped ('default' is the default software type); the section maps: %s", section, softwareType, strings.Join(known, ", "))
	}
	v = strings.TrimSpace(v)
	if strings.Count(v, ":") != 1 {
		return "", fmt.Errorf("[%s]: the software types in this section must be separated by a colon such as 'section:key', where key is usually 'output' or 'rendered' (%s = %s); don't use ${section:key}", section, t, v)
	}
	return v, nil
}

// publish reads a publish section's value (and those of its -extends
// sections) and records it as connection parameters, as
// slapos.cookbook:publish sends them: every option but recipe and those
// starting with "-", or those named by -publish; .serialised sends them
// as one JSON document under "_".
func (lr *legacyRun) publish(p *profile.Profile, ev *profile.Evaluator, ps buildout.InstanceSection) error {
	own, err := partOptions(p, ev, ps.Part)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	todo := []string{ps.Section}
	dict := map[string]any{}
	for len(todo) > 0 {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if done[name] {
			continue
		}
		done[name] = true
		opts := own
		if name != ps.Section {
			if opts, err = partOptions(p, ev, buildout.MangleName(name)); err != nil {
				return fmt.Errorf("-extends %s: %w", name, err)
			}
		}
		if ext, ok := opts["-extends"].(string); ok {
			todo = append(todo, strings.Fields(ext)...)
		}
		var keys []string
		if pub, ok := opts["-publish"].(string); ok {
			keys = strings.Fields(pub)
		} else {
			for k := range opts {
				if k != "recipe" && !strings.HasPrefix(k, "-") {
					keys = append(keys, k)
				}
			}
		}
		for _, k := range keys {
			v, ok := opts[k]
			if !ok {
				return fmt.Errorf("[%s] has no option %q to publish", name, k)
			}
			dict[k] = v
		}
	}
	var conn map[string]any
	if strings.HasSuffix(ps.Variant, "serialised") {
		b, err := json.Marshal(dict)
		if err != nil {
			return err
		}
		conn = map[string]any{"_": string(b)}
	} else {
		conn = map[string]any{}
		for k, v := range dict {
			conn[k] = optionText(v)
		}
	}
	target := lr.inst.Connection
	if ref, ok := own["-slave-reference"].(string); ok && ref != "" {
		target = lr.inst.SharedConnections[ref]
		if target == nil {
			target = map[string]any{}
			lr.inst.SharedConnections[ref] = target
		}
	}
	for k, v := range conn {
		target[k] = v
	}
	return nil
}

// partOptions returns a part's value with buildout's option names: its
// value once applied, else its options evaluated now (a section -extends
// names that nothing installs, as buildout initialises it on demand).
func partOptions(p *profile.Profile, ev *profile.Evaluator, part string) (map[string]any, error) {
	v, ok := ev.Part(part)
	if !ok {
		b := p.Part[part]
		if b == nil {
			return nil, fmt.Errorf("[%s] is not defined", part)
		}
		vals, diags := ev.EvalBlock(b, "recipe", "depends_on")
		if err := p.Err(diags); err != nil {
			return nil, err
		}
		v = cty.ObjectVal(vals)
	}
	g, err := ctyToGo(v)
	if err != nil {
		return nil, err
	}
	m, _ := g.(map[string]any)
	out := make(map[string]any, len(m))
	for k, x := range m {
		name, err := buildout.UnmangleName(k)
		if err != nil {
			name = k
		}
		out[name] = x
	}
	return out, nil
}

// optionText is a value as a buildout option holds it: strings as they
// are, anything else as JSON.
func optionText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// unwrapSerialised decodes a connection or parameter dict serialised as
// one JSON document under "_" (SlapOS's json-in-xml); others are returned
// as they are.
func unwrapSerialised(m map[string]any) map[string]any {
	if raw, ok := m["_"].(string); ok && len(m) == 1 {
		var d map[string]any
		if json.Unmarshal([]byte(raw), &d) == nil {
			return d
		}
	}
	return m
}

// UnwrapConnection is unwrapSerialised for callers printing connection
// parameters.
func UnwrapConnection(m map[string]any) map[string]any { return unwrapSerialised(m) }

// wireParameters is the instance parameter dict as slapgrid gets it from
// the master: one JSON document under "_" for a json-in-xml software type,
// else every value a string.
func wireParameters(params map[string]any, serialisation string) map[string]any {
	if params == nil {
		params = map[string]any{}
	}
	if serialisation == schema.SerialisationJSONInXML {
		b, _ := json.Marshal(params)
		return map[string]any{"_": string(b)}
	}
	out := make(map[string]any, len(params))
	for k, v := range params {
		out[k] = optionText(v)
	}
	return out
}

// legacyExec are the commands a buildout release's recipes may run: its
// builds run configure scripts and makefiles with the host's tools, as
// slapgrid runs them (sh runs what a configure script calls).
var legacyExec = []string{"sh", "make", "patch", "tar", "xz", "bzip2", "gzip", "unzip"}

// withLegacyGrants gives a converted buildout profile's cookbook what its
// recipes need when the conversion declared no module "cookbook" itself:
// the build tools of legacyExec and the hosts of the URLs its sections
// name (downloads).
func withLegacyGrants(hcl []byte, cfg *buildout.Config) []byte {
	if bytes.Contains(hcl, []byte("module \"cookbook\"")) {
		return hcl
	}
	hosts := map[string]bool{}
	for _, sec := range cfg.Sections {
		for _, v := range sec {
			for _, m := range urlPattern.FindAllString(v.Text, -1) {
				u, err := neturl.Parse(m)
				if err != nil || u.Hostname() == "" {
					continue
				}
				port := u.Port()
				if port == "" {
					port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
				}
				hosts[u.Scheme+"://"+net.JoinHostPort(u.Hostname(), port)] = true
			}
		}
	}
	var b strings.Builder
	b.Write(hcl)
	b.WriteString("\n# Granted by slapnode to a buildout release (converted in memory).\nmodule \"cookbook\" {\n  source     = \"builtin:cookbook\"\n")
	fmt.Fprintf(&b, "  allow_exec = %s\n", hclStrings(legacyExec))
	if len(hosts) > 0 {
		list := make([]string, 0, len(hosts))
		for h := range hosts {
			list = append(list, h)
		}
		sort.Strings(list)
		fmt.Fprintf(&b, "  allow_net  = %s\n", hclStrings(list))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

var urlPattern = regexp.MustCompile(`https?://[^\s"'${}]+`)

func hclStrings(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// sectionValues is a section's evaluated options, by buildout name (what
// SubBuildout hands a nested profile as its [slap-configuration]): the
// part's value, or computed when it is unknown (a plan).
func sectionValues(ev *profile.Evaluator, section string, computed map[string]cty.Value) map[string]cty.Value {
	v, ok := ev.Part(buildout.MangleName(section))
	if !ok || !v.IsWhollyKnown() || !v.Type().IsObjectType() {
		return computed
	}
	out := map[string]cty.Value{}
	for k, x := range v.AsValueMap() {
		name, err := buildout.UnmangleName(k)
		if err != nil {
			name = k
		}
		out[name] = x
	}
	return out
}

// NativePromisePlugins are the slapos.toolbox promise plugins the node
// runs natively (partition/promise/plugin.go); others need python3.
var NativePromisePlugins = buildout.NativePromisePlugins

// hasPythonPlugins reports whether a converted instance profile writes
// promise plugins only Python can run: a module the node has no native
// check for, a plugin file, or a class of its own.
func hasPythonPlugins(p *profile.Profile) bool {
	lit := func(b *profile.Block, k string) (string, bool) {
		a := b.Attrs[k]
		if a == nil {
			return "", true
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
			return "", false
		}
		return strings.TrimSpace(v.AsString()), true
	}
	for _, b := range p.BlocksOf("part") {
		if r, ok := lit(b, "recipe"); !ok || r != "cookbook:promise-plugin" {
			continue
		}
		mod, ok1 := lit(b, "module")
		file, ok2 := lit(b, "file")
		class, ok3 := lit(b, "class")
		name, native := strings.CutPrefix(mod, "slapos.promise.plugin.")
		if !ok1 || !ok2 || !ok3 || file != "" || (class != "" && class != "RunPromise") || !native || !slices.Contains(NativePromisePlugins, name) {
			return true
		}
	}
	return false
}

// condEnvAs is the environment of an instance profile's `[name:expr]`
// conditions: their open(p).read(), os.path.exists/isdir/isfile and
// os.access answer as for the partition user (cred), not as the node —
// else a profile's conditions would be an oracle, one section per guessed
// byte, on every file only root may read.
func condEnvAs(cred *syscall.Credential) *buildout.CondEnv {
	env := buildout.DefaultCondEnv()
	env.ReadFile = func(p string) (string, error) {
		b, err := readAs(cred, p)
		return string(b), err
	}
	env.IsDir = func(p string) bool {
		uid, gid, groups := -1, -1, []int(nil)
		if cred != nil {
			uid, gid, groups = fsuser.Ids(cred.Uid, cred.Gid, cred.Groups)
		}
		dir := false
		fsuser.Do(uid, gid, groups, func() error {
			st, err := os.Stat(p)
			dir = err == nil && st.IsDir()
			return nil
		})
		return dir
	}
	return env
}

// readAs reads a buildout file with the file system identity of cred
// (nil: the node's own), groups included (internal/fsuser), and within
// buildout's bounds (a regular file of at most 1 MiB, opened
// non-blocking): the partition user may make `extends` name /dev/zero or
// a FIFO.
func readAs(cred *syscall.Credential, path string) ([]byte, error) {
	uid, gid, groups := -1, -1, []int(nil)
	if cred != nil {
		uid, gid, groups = fsuser.Ids(cred.Uid, cred.Gid, cred.Groups)
	}
	var b []byte
	err := fsuser.Do(uid, gid, groups, func() error {
		var err error
		b, err = buildout.ReadBounded(path)
		return err
	})
	return b, err
}
