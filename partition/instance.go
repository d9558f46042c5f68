package partition

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/fsuser"
	"github.com/slapnode/slapnode/partition/service"
	"github.com/slapnode/slapnode/runtime/wasmhost"
	"github.com/slapnode/slapnode/schema"
)

// Partition is one partition of the node, as the instance sees it.
type Partition struct {
	ID, Path, User string
	IPv4, IPv6     string
	Credential     *syscall.Credential // nil: the current user (rootless)
	Cgroup         string              // "" without cgroups
	ExtraCgroups   []string
	NetNS          string // network namespace of its addresses ("" = the node's own)
	// Exec confines the commands the node starts for the partition (the
	// recipes' and promises' exec, check_command, etc/promise) to its
	// cgroups, network namespace and user from their first instruction:
	// node/format's CgroupExec. nil: they run as the caller, with
	// Credential and NetNS applied by the starter.
	Exec Confiner
	// StateDir is where the node keeps its state about the partition
	// (parts journal, saved promises…), out of its user's reach:
	// StateDir(root, ID) when empty.
	StateDir string
	// IPv4List and IPv6List are further addresses of the partition, beyond
	// IPv4 and IPv6 (SlapOS's ip_list; slapconfiguration's ipv4/ipv6 sets).
	IPv4List, IPv6List []string
	// Tap is the partition's tap device, "" without one.
	Tap string
}

// Confiner starts commands inside a partition (node/format.CgroupExec):
// Hook rewrites a command before its Start (clone into the cgroup, the
// exec shim that joins the others, enters the namespace and drops to the
// user), Started waits after the Start until the command runs where it
// belongs.
type Confiner interface {
	Hook(cmd *exec.Cmd) error
	Started(pid int) error
}

// InstanceRequest is what to instantiate in a partition.
type InstanceRequest struct {
	Software *Software
	Type     string         // software type; "" = "default"
	Params   map[string]any // as given by the requester
	// Strings says every parameter arrived as a string (--param k=v, or
	// SlapOS's xml serialisation): values are coerced to the schema's types.
	Strings   bool
	Partition Partition
	Force     bool
	// Validated, when set, is the result of validating Params already
	// (ValidateParameters): they are not validated twice.
	Validated *schema.Result
	// Requester makes the profile's request blocks' requests.
	Requester Requester
	// Shared are the shared (slave) instances this instance hosts, as the
	// master lists them; the profile sees them as `shared` and answers each
	// through a publish_shared block.
	Shared []SharedInstance
	// What a buildout instance profile reads from slap-connection and
	// slap-configuration (legacy releases, legacy.go): the requested
	// state (default started), the instance's title and its root
	// instance's (default: the partition id), the master's URL and the
	// partition's certificate files when it has them.
	State, Title, RootTitle      string
	MasterURL, KeyFile, CertFile string
}

// SharedInstance is a shared instance hosted by a partition.
type SharedInstance struct {
	Reference    string         `json:"reference"`
	Title        string         `json:"title"`
	SoftwareType string         `json:"software_type"`
	Parameters   map[string]any `json:"parameters"`
}

// PromiseSpec is an evaluated promise block.
type PromiseSpec struct {
	Name          string
	Check         string // MODULE:NAME
	Module        *wasmhost.Module
	Source        string // where the module comes from (builtin:NAME, a path, a URL), to load it again later
	Options       json.RawMessage
	Every         time.Duration
	Timeout       time.Duration
	Test, Anomaly bool
	FailureAmount int
	Range         hcl.Range
}

// Instance is an instantiated partition: what to run and what to publish.
type Instance struct {
	Type       string
	Params     map[string]any
	Defaults   []string // JSON pointers of parameters filled from the schema
	Report     *Report
	Services   []service.Spec
	Promises   []PromiseSpec
	Connection map[string]any
	// SharedConnections are the connection parameters published for each
	// hosted shared instance, by reference.
	SharedConnections map[string]map[string]any
	// PythonPlugins: the instance profile grants python3 to its cookbook
	// module, so the promise plugins (etc/plugin/*.py) slapnode does not
	// run natively run with the host's python3.
	PythonPlugins bool
	// Unknown names what a plan cannot know before apply: "service.NAME",
	// "promise.NAME" and "connection.KEY" whose values read parts that the
	// apply installs or reinstalls first.
	Unknown map[string]bool
	// Secrets masks the secrets of the instance (parameters marked secret,
	// generated passwords…) in what a plan shows.
	Secrets *Masker
	// ProfileDigest is the digest of the instance profile's files.
	ProfileDigest string
	profile       *profile.Profile
}

// InstanceType resolves a software type, listing the known ones on error.
func (s *Software) InstanceType(name string) (*profile.InstanceType, error) {
	if name == "" {
		name = "default"
	}
	if it := s.Types[name]; it != nil {
		return it, nil
	}
	if it, ok := s.legacyType(name); ok {
		return it, nil
	}
	var known []string
	for k := range s.Types {
		known = append(known, k)
	}
	sort.Strings(known)
	if len(known) == 0 {
		return nil, fmt.Errorf("software %s declares no instance type: add an instance \"default\" { profile = \"instance.hcl\" } block", s.URL)
	}
	return nil, fmt.Errorf("software %s has no software type %q (it has: %s)", s.URL, name, strings.Join(known, ", "))
}

// ValidateParameters checks parameters against the type's schema and applies
// its defaults. Nothing is applied when they are wrong.
func ValidateParameters(it *profile.InstanceType, params map[string]any, strings bool) (*schema.Result, error) {
	if params == nil {
		params = map[string]any{}
	}
	if it.Parameters == "" {
		return &schema.Result{Params: params}, nil
	}
	v, err := schema.Compile(it.Parameters, schema.Options{})
	if err != nil {
		return nil, fmt.Errorf("parameter schema of software type %q: %w", it.Name, err)
	}
	if strings {
		return v.ValidateStrings(params)
	}
	return v.Validate(params)
}

// Instantiate applies the instance profile of the requested software type in
// the partition: parameters validated first, then parts, then services,
// promises and connection parameters evaluated.
func (e *Engine) Instantiate(ctx context.Context, req *InstanceRequest, plan bool) (*Instance, error) {
	it, err := req.Software.InstanceType(req.Type)
	if err != nil {
		return nil, err
	}
	res := req.Validated
	if res == nil {
		if res, err = ValidateParameters(it, req.Params, req.Strings); err != nil {
			return nil, fmt.Errorf("parameters of %s: %w", it.Name, err)
		}
	}
	if req.Software.Legacy != nil {
		return e.instantiateLegacy(ctx, req, it, res, plan)
	}
	p, diags := profile.Load(it.Profile, profile.Instance)
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	if IsConvertedInstance(p) {
		// A buildout instance profile converted to HCL (legacy.go).
		return e.instantiateConverted(ctx, req, it, res, p, plan)
	}
	part := req.Partition
	if !validID(part.ID) {
		return nil, fmt.Errorf("invalid partition id %q", part.ID)
	}
	if part.StateDir == "" {
		part.StateDir = StateDir(e.Root, part.ID)
	}
	if !plan {
		if err := preparePartitionDir(part); err != nil {
			return nil, err
		}
	}
	paramVal, err := jsonToCty(res.Params)
	if err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	s := req.Software
	vars := e.softwareVars(s)
	vars["profile"] = cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(p.Dir)})
	vars["partition"] = cty.ObjectVal(map[string]cty.Value{
		"id": cty.StringVal(part.ID), "path": cty.StringVal(part.Path), "user": cty.StringVal(part.User),
		"ipv4": cty.StringVal(part.IPv4), "ipv6": cty.StringVal(part.IPv6),
	})
	vars["parameter"] = paramVal
	vars["software_type"] = cty.StringVal(it.Name)
	shared := make([]cty.Value, 0, len(req.Shared))
	for _, sh := range req.Shared {
		params := sh.Parameters
		if params == nil {
			params = map[string]any{}
		}
		pv, err := jsonToCty(params)
		if err != nil {
			return nil, fmt.Errorf("shared instance %s: %w", sh.Reference, err)
		}
		shared = append(shared, cty.ObjectVal(map[string]cty.Value{
			"reference": cty.StringVal(sh.Reference), "title": cty.StringVal(sh.Title),
			"software_type": cty.StringVal(sh.SoftwareType), "parameters": pv,
		}))
	}
	vars["shared"] = cty.TupleVal(shared)
	t := &Target{
		Kind: "instance", Name: part.ID, Dir: part.Path, ProfileDir: p.Dir, Vars: vars,
		Context: map[string]any{
			"kind":          "instance",
			"partition":     map[string]any{"id": part.ID, "path": part.Path, "user": part.User, "ipv4": part.IPv4, "ipv6": part.IPv6},
			"software":      map[string]any{"path": s.Path, "url": s.URL},
			"software_type": it.Name,
			"profile_dir":   p.Dir,
			"cache_dir":     e.cacheDir(),
			"node":          map[string]any{"id": e.NodeID, "root": e.Root},
		},
		StateDir:   part.StateDir,
		Mounts:     e.mounts(wasmhost.Mount{HostPath: part.Path}, p, s.Profile),
		Credential: part.Credential,
		Exec:       part.Exec,
		Force:      req.Force,
		Requester:  req.Requester,
	}
	t.Mounts = append(t.Mounts, wasmhost.Mount{HostPath: s.Path, ReadOnly: true})
	t.PlanPaths = true
	t.Masker = NewMasker()
	t.Masker.AddSchemaFile(it.Parameters)
	t.Masker.AddNamed(res.Params, false)
	var extra []*profile.Block
	for _, typ := range []string{"service", "schedule", "promise", "publish", "publish_shared"} {
		extra = append(extra, p.BlocksOf(typ)...)
	}
	applied, err := e.Apply(ctx, p, extra, t, plan)
	if err != nil {
		return nil, err
	}
	inst := &Instance{Type: it.Name, Params: res.Params, Defaults: res.Defaults, Report: applied.Report, profile: p,
		Unknown: map[string]bool{}, Secrets: t.Masker, ProfileDigest: p.Digest}
	if plan {
		// What apply would hand to the supervisor, schedule and publish,
		// as far as it is known before apply.
		ev := applied.Evaluator
		if inst.Services, err = e.services(p, ev, &part, inst.Unknown); err != nil {
			return nil, err
		}
		if inst.Promises, err = e.promises(ctx, p, ev, inst.Unknown); err != nil {
			return nil, err
		}
		if inst.Connection, err = e.publish(p, ev, it, inst.Unknown); err != nil {
			return nil, err
		}
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
	ev := applied.Evaluator
	if inst.Services, err = e.services(p, ev, &part, nil); err != nil {
		return nil, err
	}
	if inst.Promises, err = e.promises(ctx, p, ev, nil); err != nil {
		return nil, err
	}
	if inst.Connection, err = e.publish(p, ev, it, nil); err != nil {
		return nil, err
	}
	if inst.SharedConnections, err = publishShared(p, ev, req.Shared); err != nil {
		return nil, err
	}
	inst.PythonPlugins = grantsPython(p, ev)
	return inst, nil
}

func jsonToCty(v any) (cty.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return cty.NilVal, err
	}
	ty, err := ctyjson.ImpliedType(b)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(b, ty)
}

func ctyToGo(v cty.Value) (any, error) {
	b, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

// services evaluates service and schedule blocks, and adds the executables
// recipes placed in etc/service (watched) and etc/run (run once), as SlapOS
// does. With unknown set (a plan), a service whose values are known only
// after apply is listed there ("service.NAME") instead of failing.
func (e *Engine) services(p *profile.Profile, ev *profile.Evaluator, part *Partition, unknown map[string]bool) ([]service.Spec, error) {
	var out []service.Spec
	var diags hcl.Diagnostics
	var cred *service.Credential
	if part.Credential != nil {
		cred = &service.Credential{Uid: part.Credential.Uid, Gid: part.Credential.Gid}
		for _, g := range part.Credential.Groups {
			cred.Groups = append(cred.Groups, g)
		}
	}
	base := func(name string) service.Spec {
		return service.Spec{Partition: part.ID, Name: name, Dir: part.Path, Credential: cred,
			Cgroup: part.Cgroup, ExtraCgroups: part.ExtraCgroups, NetNS: part.NetNS}
	}
	seen := map[string]hcl.Range{}
	for _, typ := range []string{"service", "schedule"} {
		for _, b := range p.BlocksOf(typ) {
			sp := base(b.Name())
			sp.Watch = typ == "service"
			if prev, dup := seen[sp.Name]; dup {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate service name",
					Detail: fmt.Sprintf("%q is also defined at %s; services and schedules share one namespace.", sp.Name, prev), Subject: b.DefRange.Ptr()})
				continue
			}
			seen[sp.Name] = b.DefRange
			var dur, dir string
			d, unk := decode(ev, b, map[string]any{
				"command": &sp.Command, "env": &sp.Env, "watch": &sp.Watch, "stop_grace": &dur,
				"dir": &dir, "cron": &sp.Schedule,
			})
			diags = append(diags, d...)
			if len(unk) > 0 {
				if unknown == nil {
					diags = append(diags, unknownDiag(b, unk))
					continue
				}
				unknown[typ+"."+sp.Name] = true
				if len(sp.Command) == 0 {
					sp.Command = []string{"(known after apply)"}
				}
			}
			if dir != "" {
				sp.Dir = dir
			}
			if dur != "" {
				g, err := time.ParseDuration(dur)
				if err != nil {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid stop_grace",
						Detail: fmt.Sprintf("%q is not a duration such as \"60s\".", dur), Subject: b.Attrs["stop_grace"].Range.Ptr()})
				}
				sp.StopGrace = g
			}
			if len(sp.Command) == 0 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing command",
					Detail: `A ` + typ + ` needs command = ["program", "arg", ...].`, Subject: b.DefRange.Ptr()})
			}
			if typ == "schedule" && sp.Schedule == "" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing cron",
					Detail: `A schedule needs cron = "MIN HOUR DOM MON DOW", e.g. "0 * * * *".`, Subject: b.DefRange.Ptr()})
			}
			out = append(out, sp)
		}
	}
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	legacy, err := scanRunDirs(part, seen)
	if err != nil {
		return nil, err
	}
	for _, l := range legacy {
		sp := base(l.name)
		sp.Command = []string{filepath.Join(part.Path, l.rel)}
		sp.Watch = l.watch
		sp.Digest = l.digest
		out = append(out, sp)
	}
	return out, nil
}

// promises evaluates promise blocks. Options other than the promise's own
// settings are passed to the check, validated against its schema. With
// unknown set (a plan), modules are not loaded, and a promise whose values
// are known only after apply is listed there ("promise.NAME").
func (e *Engine) promises(ctx context.Context, p *profile.Profile, ev *profile.Evaluator, unknown map[string]bool) ([]PromiseSpec, error) {
	mods, diags := p.Modules(ev)
	var out []PromiseSpec
	for _, b := range p.BlocksOf("promise") {
		ps := PromiseSpec{Name: b.Name(), Every: 2 * time.Minute, Timeout: 20 * time.Second, Test: true, Anomaly: true, FailureAmount: 1, Range: b.DefRange}
		var every, timeout string
		var fa int64 = 1
		d, unk := decode(ev, b, map[string]any{"check": &ps.Check, "every": &every, "timeout": &timeout,
			"test": &ps.Test, "anomaly": &ps.Anomaly, "failure_amount": &fa})
		diags = append(diags, d...)
		if fa < 1 && b.Attrs["failure_amount"] != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid failure_amount",
				Detail: "failure_amount is the number of failures in a row that make an anomaly: 1 or more.", Subject: b.Attrs["failure_amount"].Expr.Range().Ptr()})
		}
		ps.FailureAmount = int(fa)
		for _, x := range []struct {
			s   string
			dst *time.Duration
			at  string
		}{{every, &ps.Every, "every"}, {timeout, &ps.Timeout, "timeout"}} {
			if x.s == "" {
				continue
			}
			dur, err := time.ParseDuration(x.s)
			if err != nil || dur <= 0 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid " + x.at,
					Detail: fmt.Sprintf("%q is not a positive duration such as \"2m\".", x.s), Subject: b.Attrs[x.at].Range.Ptr()})
				continue
			}
			*x.dst = dur
		}
		opts, d := ev.EvalBlock(b, "check", "every", "timeout", "test", "anomaly", "failure_amount", "depends_on")
		diags = append(diags, d...)
		if diags.HasErrors() {
			continue
		}
		for _, v := range opts {
			if !v.IsWhollyKnown() {
				unk = append(unk, "options")
				break
			}
		}
		if len(unk) > 0 {
			if unknown == nil {
				diags = append(diags, unknownDiag(b, unk))
				continue
			}
			unknown["promise."+ps.Name] = true
			raw, _ := toJSON(knownOnly(opts))
			ps.Options = raw
			out = append(out, ps)
			continue
		}
		modName, checkName, ok := strings.Cut(ps.Check, ":")
		if !ok {
			at := b.DefRange
			if a := b.Attrs["check"]; a != nil {
				at = a.Range
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid check",
				Detail: `check is "MODULE:NAME", e.g. "cookbook:check_port_listening".`, Subject: at.Ptr()})
			continue
		}
		mod, err := e.module(ctx, mods, modName, b.Attrs["check"])
		if err != nil {
			return nil, err
		}
		entry, known := mod.Description.Promises[checkName]
		if !known && mod.Described {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown check",
				Detail: fmt.Sprintf("Module %q has no promise check %q.", modName, checkName), Subject: b.Attrs["check"].Range.Ptr()})
			continue
		}
		raw, err := toJSON(opts)
		if err != nil {
			return nil, err
		}
		if entry.Options != nil {
			// latest_minute is the runner's setting (as GenericPromise's),
			// not the check's option: checked without it.
			lm, hasLM := opts["latest_minute"]
			if hasLM {
				delete(opts, "latest_minute")
				if raw, err = toJSON(opts); err != nil {
					return nil, err
				}
			}
			if raw, err = e.validate(mod, checkName, entry.Options, opts, raw, b, p); err != nil {
				return nil, err
			}
			if hasLM {
				var m map[string]json.RawMessage
				json.Unmarshal(raw, &m)
				m["latest_minute"], _ = ctyjson.SimpleJSONValue{Value: lm}.MarshalJSON()
				raw, _ = json.Marshal(m)
			}
		}
		ps.Options = raw
		if unknown == nil {
			loaded, err := mod.load(ctx)
			if err != nil {
				return nil, err
			}
			ps.Module = loaded
		}
		ps.Source = "builtin:cookbook"
		if spec := mods[modName]; spec != nil {
			ps.Source = spec.Source
		}
		out = append(out, ps)
	}
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	return out, nil
}

// publish evaluates the publish blocks into connection parameters, checked
// against the type's connection schema when it has one. With unknown set
// (a plan), a value known only after apply is listed there
// ("connection.KEY") and left out.
func (e *Engine) publish(p *profile.Profile, ev *profile.Evaluator, it *profile.InstanceType, unknown map[string]bool) (map[string]any, error) {
	conn := map[string]any{}
	var diags hcl.Diagnostics
	partial := false
	for _, b := range p.BlocksOf("publish") {
		vals, d := ev.EvalBlock(b)
		diags = append(diags, d...)
		for k, v := range vals {
			if d.HasErrors() {
				break
			}
			if !v.IsWhollyKnown() && unknown != nil {
				unknown["connection."+k] = true
				partial = true
				continue
			}
			g, err := ctyToGo(v)
			if err != nil {
				return nil, fmt.Errorf("publish %s: %w", k, err)
			}
			conn[k] = g
		}
	}
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	if it.Connection != "" && !partial {
		v, err := schema.Compile(it.Connection, schema.Options{})
		if err != nil {
			return nil, fmt.Errorf("connection schema of %q: %w", it.Name, err)
		}
		if _, err := v.Validate(conn); err != nil {
			return nil, fmt.Errorf("published connection parameters do not match %s: %w", it.Connection, err)
		}
	}
	return conn, nil
}

// decode evaluates attributes into Go values: string, bool, int64,
// []string, map[string]string (numbers and bools are written as strings
// where strings are wanted, as in a command line). A value known only
// after apply (a plan) is left alone and its attribute returned in unknown.
func decode(ev *profile.Evaluator, b *profile.Block, into map[string]any) (diags hcl.Diagnostics, unknown []string) {
	names := make([]string, 0, len(into))
	for name := range into {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		dst := into[name]
		a := b.Attrs[name]
		if a == nil {
			continue
		}
		v, d := ev.EvalAttr(a)
		diags = append(diags, d...)
		if d.HasErrors() || v.IsNull() {
			continue
		}
		if !v.IsWhollyKnown() {
			// The type may be known already: a wrong one is an error now.
			if msg := typeMismatch(v.Type(), dst); msg != "" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + name,
					Detail: msg, Subject: a.Expr.Range().Ptr()})
				continue
			}
			unknown = append(unknown, name)
			continue
		}
		if err := assignValue(v, dst); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + name,
				Detail: err.Error(), Subject: a.Expr.Range().Ptr()})
		}
	}
	return diags, unknown
}

// wants names the type a decode destination needs, with an example.
func wants(dst any) (cty.Type, string) {
	switch dst.(type) {
	case *string:
		return cty.String, `a string`
	case *bool:
		return cty.Bool, `true or false`
	case *int64:
		return cty.Number, `a whole number`
	case *[]string:
		return cty.List(cty.String), `a list of strings, e.g. ["program", "arg"]`
	case *map[string]string:
		return cty.Map(cty.String), `an object of strings, e.g. { NAME = "value" }`
	}
	return cty.DynamicPseudoType, "a value"
}

// typeMismatch says why a value of type ty cannot become dst ("" when it
// can, or when the type is not known yet).
func typeMismatch(ty cty.Type, dst any) string {
	if ty == cty.DynamicPseudoType {
		return ""
	}
	want, what := wants(dst)
	if _, err := convert.Convert(cty.UnknownVal(ty), want); err != nil {
		return fmt.Sprintf("%s is required, not %s.", upperFirst(what), ty.FriendlyName())
	}
	return ""
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// assignValue converts a known value into dst.
func assignValue(v cty.Value, dst any) error {
	want, what := wants(dst)
	c, err := convert.Convert(v, want)
	if err != nil || c.IsNull() {
		return fmt.Errorf("%s is required, not %s.", upperFirst(what), v.Type().FriendlyName())
	}
	switch p := dst.(type) {
	case *string:
		*p = c.AsString()
	case *bool:
		*p = c.True()
	case *int64:
		i, acc := c.AsBigFloat().Int64()
		if acc != 0 {
			return fmt.Errorf("A whole number is required, not %s.", c.AsBigFloat().String())
		}
		*p = i
	case *[]string:
		*p = nil
		for _, s := range c.AsValueSlice() {
			if s.IsNull() {
				return fmt.Errorf("%s is required: an element is null.", upperFirst(what))
			}
			*p = append(*p, s.AsString())
		}
	case *map[string]string:
		*p = map[string]string{}
		for k, s := range c.AsValueMap() {
			if s.IsNull() {
				return fmt.Errorf("%s is required: %s is null.", upperFirst(what), k)
			}
			(*p)[k] = s.AsString()
		}
	default:
		return fmt.Errorf("internal: cannot decode into %T", dst)
	}
	return nil
}

// publishShared evaluates publish_shared { connections = { REF = {…} } }:
// the connection parameters of each hosted shared instance. A reference the
// node does not host is an error at the attribute.
func publishShared(p *profile.Profile, ev *profile.Evaluator, hosted []SharedInstance) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	known := map[string]bool{}
	for _, sh := range hosted {
		known[sh.Reference] = true
	}
	for _, b := range p.BlocksOf("publish_shared") {
		a := b.Attrs["connections"]
		if a == nil {
			continue
		}
		v, diags := ev.EvalAttr(a)
		if err := p.Err(diags); err != nil {
			return nil, err
		}
		g, err := ctyToGo(v)
		if err != nil {
			return nil, err
		}
		m, ok := g.(map[string]any)
		if !ok && g != nil {
			return nil, p.Err(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid connections",
				Detail: "connections is a map from shared instance reference to its connection parameters.", Subject: a.Expr.Range().Ptr()}})
		}
		for ref, conn := range m {
			cm, ok := conn.(map[string]any)
			if !ok || !known[ref] {
				return nil, p.Err(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid shared connection",
					Detail: fmt.Sprintf("%q must be the reference of a hosted shared instance, mapped to an object of connection parameters.", ref), Subject: a.Expr.Range().Ptr()}})
			}
			out[ref] = cm
		}
	}
	return out, nil
}

// unknownDiag is the error of a block evaluated by apply whose values are
// still unknown (a part it reads failed to produce them).
func unknownDiag(b *profile.Block, attrs []string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value not known",
		Detail: fmt.Sprintf("%s %q reads values no part produced: %s.", b.Type, b.Name(), strings.Join(attrs, ", ")), Subject: b.DefRange.Ptr()}
}

// knownOnly keeps the wholly known values of a set of options.
func knownOnly(opts map[string]cty.Value) map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range opts {
		if v.IsWhollyKnown() {
			out[k] = v
		}
	}
	return out
}

// runDirProgram is an executable a recipe placed in etc/service or etc/run.
type runDirProgram struct {
	name, rel string
	watch     bool
	digest    string
}

// maxDigested bounds what is read to digest a program: a larger one gets
// no digest (rewriting it does not restart its service).
const maxDigested = 64 << 20

// scanRunDirs lists the executables of the partition's etc/service
// (watched) and etc/run (run once), as SlapOS does, skipping names in
// seen (declared by the profile) and hidden ones. It reads as the
// partition user (internal/fsuser), as the supervisor's ScanRunDirs does:
// the user owns those directories and may make them, or what is in them,
// links to places only root can read. Only regular files count, opened
// non-blocking: a FIFO planted there (mode 0755) used to hang the apply
// when it was read for its digest.
func scanRunDirs(part *Partition, seen map[string]hcl.Range) ([]runDirProgram, error) {
	uid, gid, groups := -1, -1, []int(nil)
	if c := part.Credential; c != nil {
		uid, gid, groups = fsuser.Ids(c.Uid, c.Gid, c.Groups)
	}
	var out []runDirProgram
	err := fsuser.Do(uid, gid, groups, func() error {
		for _, d := range []struct {
			dir   string
			watch bool
		}{{"etc/service", true}, {"etc/run", false}} {
			entries, err := os.ReadDir(filepath.Join(part.Path, d.dir))
			if err != nil {
				continue
			}
			for _, ent := range entries {
				name := ent.Name()
				if _, dup := seen[name]; dup || strings.HasPrefix(name, ".") {
					continue
				}
				rel := filepath.Join(d.dir, name)
				full := filepath.Join(part.Path, rel)
				if st, err := os.Stat(full); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
					continue
				}
				seen[name] = hcl.Range{}
				out = append(out, runDirProgram{name: name, rel: rel, watch: d.watch, digest: programDigest(full)})
			}
		}
		return nil
	})
	return out, err
}

// programDigest is the sha256 of an executable of the partition, called
// with the partition user's identity (scanRunDirs); "" when it cannot be
// read so, is not a regular file (a FIFO swapped in since the scan), or is
// larger than maxDigested.
func programDigest(path string) string {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > maxDigested {
		return ""
	}
	h := sha256.New()
	if n, err := io.Copy(h, io.LimitReader(f, maxDigested+1)); err != nil || n > maxDigested {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// grantsPython reports whether a profile grants python3 to its cookbook.
func grantsPython(p *profile.Profile, ev *profile.Evaluator) bool {
	mods, _ := p.Modules(ev)
	if m := mods["cookbook"]; m != nil {
		for _, c := range m.AllowExec {
			if c == "python3" {
				return true
			}
		}
	}
	return false
}
