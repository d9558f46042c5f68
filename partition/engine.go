package partition

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nofollow"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
	"github.com/slapnode/slapnode/schema"
)

// Engine applies profiles. One Engine serves a node: it loads and compiles
// each module once and caches recipe option schemas.
type Engine struct {
	Root string
	// SoftwareRoot is where releases are installed (node.hcl's
	// software_root on a formatted node); "" means ROOT/software.
	SoftwareRoot string
	NodeID       string
	Host         *wasmhost.Host
	Out          io.Writer // progress, one line per part that changes; nil: silent
	Verbose      bool      // also print recipe messages
	// Step, when set, is told that a step that can take seconds begins
	// (compiling a module, installing or removing a part, the binary
	// cache); the function it returns is called when the step ends. The
	// CLI shows elapsed time with it; the engine itself prints nothing.
	Step func(what string) (done func())
	// BinaryCache, when set, is asked for a built release before building
	// it, and given the release after a build (package bincache).
	BinaryCache BinaryCache

	mu      sync.Mutex
	modules map[string]*modRef
	schemas map[string]*schema.Validator
	key     []byte    // the journal key (stateKey)
	cleaned sync.Once // stale temporary files of the module cache removed
	// preloading counts the loads Preload started that have not ended:
	// LoadSoftware leaves each its core.
	preloading atomic.Int32
}

// BinaryCache is where built software releases are shared between nodes.
type BinaryCache interface {
	Fetch(ctx context.Context, releaseURL, profileDigest, softwareDir string) (hit bool, reason string, err error)
	Push(ctx context.Context, releaseURL, profileDigest, softwareDir string) (pushed bool, reason string, err error)
	CanPush() bool
}

// ActionKind says what an apply does (or a plan would do) to a part.
type ActionKind string

// The kinds of action.
const (
	Install   ActionKind = "install"
	Reinstall ActionKind = "reinstall"
	Uninstall ActionKind = "uninstall"
	Unchanged ActionKind = "unchanged"
)

// Action is one part's fate in an apply or a plan.
type Action struct {
	Part    string     `json:"part"`
	Kind    ActionKind `json:"action"`
	Recipe  string     `json:"recipe,omitempty"`
	Changed []string   `json:"changed,omitempty"` // options that differ, on reinstall
	// Changes are the options that differ, old → new (secrets masked).
	Changes []ValueChange `json:"changes,omitempty"`
	Reason  string        `json:"reason,omitempty"`
}

// Report sums up an apply or a plan of one target.
type Report struct {
	Target  string   `json:"target"`
	Actions []Action `json:"actions"`
	Counts  map[ActionKind]int
	// Basis is the digest of the journal the report was computed from
	// (every part's name and signature): a saved plan whose basis changed
	// is stale.
	Basis string `json:"-"`
}

func (r *Report) add(a Action) {
	r.Actions = append(r.Actions, a)
	if r.Counts == nil {
		r.Counts = map[ActionKind]int{}
	}
	r.Counts[a.Kind]++
}

// Summary is "2 installed, 1 reinstalled, 0 uninstalled, 5 unchanged".
func (r *Report) Summary() string {
	return fmt.Sprintf("%d installed, %d reinstalled, %d uninstalled, %d unchanged",
		r.Counts[Install], r.Counts[Reinstall], r.Counts[Uninstall], r.Counts[Unchanged])
}

// Target is what a profile is applied to: a software directory or a
// partition directory, with the grants its recipes get.
type Target struct {
	Kind string // "software" or "instance"
	Name string // shown in messages: software name or partition id
	Dir  string // writable directory of the target
	// StateDir is where the journal lives; its parent is trusted (only the
	// node's user writes it). Default Dir/.slapnode, for targets only the
	// node's user writes (software); instances keep theirs under
	// <root>/state (StateDir), and an older version's journal in
	// Dir/.slapnode is migrated from there.
	StateDir   string
	ProfileDir string
	Vars       map[string]cty.Value // HCL context variables
	Context    map[string]any       // recipe input "context"
	Mounts     []wasmhost.Mount
	Credential *syscall.Credential
	Exec       Confiner  // confines the recipes' commands (nil: run as Credential)
	Force      bool      // reinstall every part
	Requester  Requester // makes `request` blocks' requests (instances)
	// Masker hides the secrets a plan would show (parameters marked
	// secret…); the engine adds those it finds in the journal.
	Masker *Masker
	// PlanPaths: in a plan, a part to reinstall keeps the outputs that
	// echo an option (a template's output path), so that what reads only
	// its path (a service's command) is known. Not for targets that read
	// the content behind such a path at plan time (a rendered buildout
	// profile).
	PlanPaths bool
}

// Result is an applied (or planned) target: the report, and an evaluator
// holding every part's value so the caller can evaluate services, promises
// and publish blocks.
type Result struct {
	Report    *Report
	Evaluator *profile.Evaluator
	Profile   *profile.Profile
	recheck   *recheckData
}

// PartError is a recipe failure, with the part and where it is defined.
type PartError struct {
	Part   string
	Recipe string
	Range  hcl.Range
	Err    error
}

func (e *PartError) Error() string {
	return fmt.Sprintf("%s:%d: part %q (%s) failed: %v", e.Range.Filename, e.Range.Start.Line, e.Part, e.Recipe, e.Err)
}
func (e *PartError) Unwrap() error { return e.Err }

// Apply installs the parts of p into t. extra are blocks evaluated later by
// the caller (services, promises, publish): the parts they reference are
// installed too. With plan set nothing is changed and the report says what an
// apply would do.
func (e *Engine) Apply(ctx context.Context, p *profile.Profile, extra []*profile.Block, t *Target, plan bool) (*Result, error) {
	g, diags := p.Graph(extra)
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	spec, err := e.journalSpec(t, plan)
	if err != nil {
		return nil, err
	}
	j, err := openJournal(spec)
	if err != nil {
		return nil, err
	}
	defer j.close()

	ev := p.Evaluator(t.Vars)
	mods, diags := p.Modules(ev)
	if err := p.Err(diags); err != nil {
		return nil, err
	}
	if t.Masker == nil {
		t.Masker = NewMasker()
	}
	for _, rec := range j.parts {
		t.Masker.AddNamedJSON(rec.Options, false)
		t.Masker.AddNamedJSON(rec.Outputs, secretRecipe(rec.Recipe))
	}
	r := &run{e: e, p: p, t: t, j: j, ev: ev, plan: plan, specs: mods, report: &Report{Target: t.Name, Counts: map[ActionKind]int{}, Basis: j.basis()},
		recheck: &recheckData{modules: map[string]recheckModule{}}}
	defer r.closeTargetDir()
	if !plan {
		cfg := wasmhost.SessionConfig{
			Mounts: t.Mounts, Credential: t.Credential,
			ProfileDir: t.ProfileDir, Home: t.Dir, Log: e.logWriter(),
		}
		if t.Exec != nil {
			cfg.ExecStarted = t.Exec.Started
		}
		cfg.ExecHook = execHooks(giveBeforeExec(t), t.Exec)
		r.session = e.Host.NewSession(cfg)
		defer r.session.Close(context.WithoutCancel(ctx))
	}

	// Parts that left the profile go first, most recent first, so that a
	// new part never finds an old one's files in its way.
	var gone []string
	for name := range j.parts {
		if n := g.Nodes["part."+name]; n == nil || n.Block.Attrs["recipe"] == nil {
			gone = append(gone, name)
		}
	}
	for _, name := range j.byReverseSeq(gone) {
		rec := j.parts[name]
		r.report.add(Action{Part: name, Kind: Uninstall, Recipe: rec.Recipe, Reason: "no longer in the profile"})
		if plan {
			continue
		}
		e.progress("- %s (%s)", name, rec.Recipe)
		if err := r.uninstall(ctx, name, rec, nil); err != nil {
			return nil, err
		}
	}

	for _, n := range g.Order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n.Kind == "local" {
			v, diags := ev.EvalAttr(n.Attr)
			if err := p.Err(diags); err != nil && !plan {
				return nil, err
			}
			ev.SetLocal(n.Name, v)
			continue
		}
		if n.Kind == "request" {
			// What a request returns is not the profile's: not cached.
			r.recheck.uncacheable = true
			if err := r.request(ctx, n); err != nil {
				return nil, err
			}
			continue
		}
		if err := r.part(ctx, n); err != nil {
			// A plan reports every part's mistakes at once: the part's
			// value is unknown to the parts after it.
			var perr *profile.Error
			if plan && errors.As(err, &perr) {
				r.diags = append(r.diags, perr.Diags...)
				ev.SetPart(n.Name, cty.DynamicVal)
				continue
			}
			return nil, err
		}
	}
	if err := p.Err(r.diags); err != nil {
		return nil, err
	}
	if !plan {
		if err := j.close(); err != nil {
			return nil, err
		}
		r.recheck.finish(j)
	}
	return &Result{Report: r.report, Evaluator: ev, Profile: p, recheck: r.recheck}, nil
}

type run struct {
	e       *Engine
	p       *profile.Profile
	t       *Target
	j       *journal
	ev      *profile.Evaluator
	plan    bool
	session *wasmhost.Session
	specs   map[string]*profile.ModuleSpec
	report  *Report
	diags   hcl.Diagnostics // a plan's errors, reported together
	// recheck is what a recheck of the same profile needs to compare
	// the parts without evaluating it (recheck.go).
	recheck *recheckData
	// dir is the target directory, opened once to check that the paths
	// the parts installed are there (installed.go).
	dir       *nofollow.Dir
	dirOpened bool
	dirErr    error
	// ctxJSON is the target's context as JSON (callInput).
	ctxJSON json.RawMessage
	// inBuf is the last call's input, whose array the next one reuses:
	// a session does not keep an input once the call returned.
	inBuf []byte
	// mods are the modules the run's parts named, by name: the run's
	// specs do not change, and the engine keeps a module it returned.
	mods map[string]*modRef
}

// module is Engine.module for the run's specs, looked up once per name.
func (r *run) module(ctx context.Context, name string, at *profile.Attr) (*modRef, error) {
	if m := r.mods[name]; m != nil {
		return m, nil
	}
	m, err := r.e.module(ctx, r.specs, name, at)
	if err != nil {
		return nil, err
	}
	if r.mods == nil {
		r.mods = map[string]*modRef{}
	}
	r.mods[name] = m
	return m, nil
}

// basis is the digest of the journal's parts: names, signatures, order.
func (j *journal) basis() string {
	names := make([]string, 0, len(j.parts))
	for n := range j.parts {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%s\x00%d\n", n, j.parts[n].Signature, j.parts[n].Seq)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secretRecipe reports whether every output of a recipe is a secret (a
// generated password).
func secretRecipe(recipe string) bool {
	_, name, _ := strings.Cut(recipe, ":")
	return name == "password" || name == "generate-random"
}

// part installs one part, or skips it when its signature is unchanged.
func (r *run) part(ctx context.Context, n *profile.Node) error {
	b := n.Block
	name := n.Name
	recipeAttr := b.Attrs["recipe"]
	opts, diags := r.ev.EvalBlock(b, "recipe", "depends_on")
	if recipeAttr == nil {
		// A data part: its options are its value; nothing to install.
		if err := r.p.Err(diags); err != nil && !r.plan {
			return err
		}
		r.ev.SetPart(name, cty.ObjectVal(opts))
		return nil
	}
	rv, d := r.ev.EvalAttr(recipeAttr)
	diags = append(diags, d...)
	if err := r.p.Err(diags); err != nil {
		if r.plan && allUnknownErrors(diags) {
			return r.pending(name, "", "depends on values known after apply")
		}
		return err
	}
	if rv.Type() != cty.String || rv.IsNull() || !rv.IsKnown() {
		return r.p.Err(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid recipe",
			Detail: `recipe must be a string "MODULE:RECIPE", e.g. "cookbook:mkdirectory".`, Subject: recipeAttr.Expr.Range().Ptr()}})
	}
	recipe := rv.AsString()
	modName, recipeName, ok := strings.Cut(recipe, ":")
	if !ok || modName == "" || recipeName == "" {
		return r.p.Err(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid recipe",
			Detail: fmt.Sprintf("%q is not MODULE:RECIPE, e.g. \"cookbook:mkdirectory\".", recipe), Subject: recipeAttr.Expr.Range().Ptr()}})
	}
	mod, err := r.module(ctx, modName, recipeAttr)
	if err != nil {
		return err
	}
	entry, ok := mod.Description.Recipes[recipeName]
	if !ok && mod.Described {
		var known []string
		for k := range mod.Description.Recipes {
			known = append(known, k)
		}
		sort.Strings(known)
		return r.p.Err(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown recipe",
			Detail: fmt.Sprintf("Module %q has no recipe %q; it has: %s.", modName, recipeName, strings.Join(known, ", ")), Subject: recipeAttr.Expr.Range().Ptr()}})
	}
	// The part's extra values are its own, for other parts to read: the
	// recipe does not get them.
	// So are the options a recipe that takes a fixed set does not name
	// but other parts read (buildout's helper options): written in a
	// buildout section among the recipe's own, they were never the
	// recipe's. Any other option it does not name is a mistake, refused
	// by its schema.
	var closed *wasmhost.OptionSet
	if set, ok := mod.optionSet(false, recipeName); ok && !set.Open {
		closed = &set
	}
	reads := r.p.HelperReads()[name]
	recipeOpts := make(map[string]cty.Value, len(opts))
	for k, v := range opts {
		if a := b.Attrs[k]; a != nil && a.Helper {
			continue
		}
		if closed != nil {
			if _, named := closed.Known[k]; !named && (b.Buildout || reads[k] || reads["*"]) {
				continue
			}
		}
		recipeOpts[k] = v
	}
	for _, v := range recipeOpts {
		if !v.IsWhollyKnown() {
			return r.pending(name, recipe, "depends on values known after apply")
		}
	}
	optJSON, err := toJSON(recipeOpts)
	if err != nil {
		return r.p.Err(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid option value", Detail: err.Error(), Subject: b.DefRange.Ptr()}})
	}
	// The signature covers the options as written: the validated form
	// (defaults applied) follows from them and from the module, whose
	// digest is in the signature too, so an unchanged part is not even
	// validated again.
	sig := signature(recipe, mod.Digest, optJSON)
	rp := recheckPart{Name: name, Recipe: recipe}
	var contentSet wasmhost.OptionSet
	if set, ok := mod.optionSet(false, recipeName); ok && len(set.Content) > 0 {
		contentSet = set
		rp.Base, rp.Content = sig, contentPathsOf(recipeOpts, set.Content)
		sig = contentSignature(sig, r.t.Dir, rp.Content)
	}
	rp.Sig = sig
	r.cacheModule(mod)
	prev := r.j.parts[name]
	var missing string
	if prev != nil && prev.Signature == sig && !r.t.Force {
		// As a buildout run, an unchanged part whose installed files
		// are not all there any more is installed again.
		if missing = r.missingInstalled(prev); missing == "" {
			r.report.add(Action{Part: name, Kind: Unchanged, Recipe: recipe})
			r.recheck.parts = append(r.recheck.parts, rp)
			return r.setValue(name, opts, prev.Outputs)
		}
	}
	if entry.Options != nil {
		if optJSON, err = r.e.validate(mod, recipeName, entry.Options, recipeOpts, optJSON, b, r.p); err != nil {
			return err
		}
	}
	act := Action{Part: name, Kind: Install, Recipe: recipe}
	if prev != nil {
		act.Kind = Reinstall
		act.Changed = changedOptions(prev.Options, optJSON)
		if len(act.Changed) == 0 && len(contentSet.Content) > 0 && prev.Module == mod.Digest && !r.t.Force {
			act.Changed = []string{"(content of " + strings.Join(contentSet.Content, ", ") + ")"}
		}
		act.Changes = r.t.Masker.DiffObjects("", prev.Options, optJSON)
		if prev.Module != mod.Digest {
			act.Changed = append(act.Changed, "(recipe module)")
		}
		if r.t.Force && len(act.Changed) == 0 {
			act.Reason = "forced"
		}
		if missing != "" {
			act.Reason = missingReason(missing)
		}
	}
	r.report.add(act)
	if r.plan {
		if missing != "" {
			// Installed again with the options it has (its signature
			// is the same): the plan takes the outputs it gave them, so
			// that the parts reading them are compared as apply will
			// (a recipe given the same options gives the same outputs).
			return r.setValue(name, opts, prev.Outputs)
		}
		if r.t.PlanPaths {
			r.ev.SetPart(name, planValue(opts, prev))
		} else {
			r.ev.SetPart(name, cty.DynamicVal)
		}
		return nil
	}
	if prev != nil {
		suffix := changedSuffix(act.Changed)
		if missing != "" {
			suffix += " — " + act.Reason
		}
		r.e.progress("~ %s (%s)%s", name, recipe, suffix)
		if err := r.uninstall(ctx, name, prev, mod); err != nil {
			return err
		}
	} else {
		r.e.progress("+ %s (%s)", name, recipe)
	}
	done := r.e.BeginStep(fmt.Sprintf("installing part %s (%s)", name, recipe))
	out, err := r.call(ctx, mod, "recipe_install", name, recipeName, optJSON, prev)
	done()
	if err != nil {
		return &PartError{Part: name, Recipe: recipe, Range: b.DefRange, Err: err}
	}
	for _, pth := range out.Installed {
		if !within(r.t.Dir, pth) {
			return &PartError{Part: name, Recipe: recipe, Range: b.DefRange,
				Err: fmt.Errorf("reported installed path %s outside its directory %s", pth, r.t.Dir)}
		}
	}
	deps := make([]string, 0, len(n.Deps))
	deps = append(deps, n.Deps...)
	rec := &PartRecord{Recipe: recipe, Module: mod.Digest, Signature: sig, Options: optJSON, Outputs: out.Outputs, Installed: out.Installed, Deps: deps}
	if err := r.j.set(name, rec); err != nil {
		return err
	}
	r.recheck.parts = append(r.recheck.parts, rp)
	if c := r.t.Credential; c != nil && r.t.Kind == "instance" {
		// What the part made is the partition user's at once: the
		// commands later parts run as that user write there (chown.go).
		skipped, err := chownPaths(r.t.Dir, partPaths(r.t.Dir, opts, out.Outputs, out.Installed), int(c.Uid), int(c.Gid))
		if err != nil {
			return &PartError{Part: name, Recipe: recipe, Range: b.DefRange, Err: err}
		}
		for _, s := range skipped {
			r.e.progress("partition %s: %s", r.t.Name, s)
		}
	}
	return r.setValue(name, opts, out.Outputs)
}

// planValue is what a plan knows of a part that an apply would install or
// reinstall: its options, and for a reinstall the outputs it had — those
// that echoed an option (template's output, a build's location) take the
// option's new value, the others are known after apply. A part installed
// for the first time is wholly unknown.
func planValue(opts map[string]cty.Value, prev *PartRecord) cty.Value {
	if prev == nil {
		return cty.DynamicVal
	}
	var outs, prevOpts map[string]json.RawMessage
	if json.Unmarshal(prev.Outputs, &outs) != nil {
		return cty.DynamicVal
	}
	json.Unmarshal(prev.Options, &prevOpts)
	val := make(map[string]cty.Value, len(opts)+len(outs))
	for k, v := range opts {
		val[k] = v
	}
	for k, ov := range outs {
		if nv, ok := opts[k]; ok && jsonEqual(prevOpts[k], ov) {
			val[k] = nv
			continue
		}
		val[k] = cty.DynamicVal
	}
	return cty.ObjectVal(val)
}

func (r *run) pending(name, recipe, reason string) error {
	r.recheck.uncacheable = true
	kind := Install
	if r.j.parts[name] != nil {
		kind = Reinstall
	}
	r.report.add(Action{Part: name, Kind: kind, Recipe: recipe, Reason: reason})
	r.ev.SetPart(name, cty.DynamicVal)
	return nil
}

// allUnknownErrors reports whether every error comes from an unknown value
// (a plan evaluating past a part that will change).
func allUnknownErrors(diags hcl.Diagnostics) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && !strings.Contains(d.Detail, "unknown") {
			return false
		}
	}
	return true
}

// setValue publishes a part's value: its options, overridden by its outputs
// (buildout's ${part:option} reads either).
func (r *run) setValue(name string, opts map[string]cty.Value, outputs json.RawMessage) error {
	val := make(map[string]cty.Value, len(opts)+4)
	for k, v := range opts {
		val[k] = v
	}
	if flatStrings(outputs, val) {
		// The outputs are in val.
	} else if len(outputs) > 0 && string(outputs) != "null" {
		ty, err := ctyjson.ImpliedType(outputs)
		if err != nil {
			return fmt.Errorf("part %q: outputs: %w", name, err)
		}
		ov, err := ctyjson.Unmarshal(outputs, ty)
		if err != nil {
			return fmt.Errorf("part %q: outputs: %w", name, err)
		}
		if ov.Type().IsObjectType() {
			for k, v := range ov.AsValueMap() {
				val[k] = v
			}
		}
	}
	r.ev.SetPart(name, cty.ObjectVal(val))
	return nil
}

type recipeOutput struct {
	Outputs   json.RawMessage `json:"outputs"`
	Installed []string        `json:"installed"`
	Messages  []string        `json:"messages"`
	Error     string          `json:"error"`
}

func (r *run) call(ctx context.Context, ref *modRef, entry, part, recipe string, opts json.RawMessage, prev *PartRecord) (*recipeOutput, error) {
	mod, err := ref.load(ctx)
	if err != nil {
		return nil, err
	}
	input, err := r.callInput(entry, part, recipe, opts, prev)
	if err != nil {
		return nil, err
	}
	var out recipeOutput
	if utf8.ValidString(part) {
		// The input's part field, as JSON decodes it; the output
		// decoded where the guest wrote it.
		if err := r.session.CallPartInto(ctx, mod, entry, part, input, &out); err != nil {
			if rerr, ok := err.(*wasmhost.ResultError); ok {
				return nil, fmt.Errorf("module %s returned malformed output: %w", mod.Name, rerr.Err)
			}
			return nil, err
		}
	} else {
		raw, err := r.session.Call(ctx, mod, entry, input)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("module %s returned malformed output: %w", mod.Name, err)
		}
	}
	if r.e.Verbose {
		for _, m := range out.Messages {
			r.e.progress("  %s: %s", part, m)
		}
	}
	if out.Error != "" {
		return nil, errors.New(out.Error)
	}
	return &out, nil
}

// callInput is a recipe's input, the JSON of
//
//	{"recipe": …, "part": …, "phase": …, "options": …, "context": …,
//	 "previous": {"options": …, "outputs": …, "installed": …}}
//
// (previous only for a part installed before), keys sorted as the map the
// first versions marshalled wrote them. The target's context, the same for
// every part, is marshalled once per apply; the input is written into one
// buffer sized for it.
func (r *run) callInput(entry, part, recipe string, opts json.RawMessage, prev *PartRecord) ([]byte, error) {
	if r.ctxJSON == nil {
		b, err := json.Marshal(r.t.Context)
		if err != nil {
			return nil, err
		}
		r.ctxJSON = b
	}
	in := callInput{Context: r.ctxJSON, Options: opts, Part: part, Phase: strings.TrimPrefix(entry, "recipe_"), Recipe: recipe}
	size := len(r.ctxJSON) + len(opts) + len(part) + len(recipe) + 96
	if prev != nil {
		in.Previous = &callPrevious{Installed: prev.Installed, Options: prev.Options, Outputs: rawOrEmpty(prev.Outputs)}
		size += len(prev.Options) + len(prev.Outputs)
		for _, p := range prev.Installed {
			size += len(p) + 3
		}
	}
	buf := bytes.NewBuffer(slices.Grow(r.inBuf[:0], size))
	if err := json.NewEncoder(buf).Encode(&in); err != nil {
		return nil, err
	}
	r.inBuf = buf.Bytes()
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// callInput and callPrevious have their fields in the order of their
// names, as the maps they replace were written.
type callInput struct {
	Context  json.RawMessage `json:"context"`
	Options  json.RawMessage `json:"options"`
	Part     string          `json:"part"`
	Phase    string          `json:"phase"`
	Previous *callPrevious   `json:"previous,omitempty"`
	Recipe   string          `json:"recipe"`
}

type callPrevious struct {
	Installed []string        `json:"installed"`
	Options   json.RawMessage `json:"options"`
	Outputs   json.RawMessage `json:"outputs"`
}

func rawOrEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return b
}

// uninstall removes what a part installed: the recipe's own uninstall when it
// has one, then the paths it reported. The record is dropped last, so an
// interrupted uninstall is retried.
func (r *run) uninstall(ctx context.Context, name string, rec *PartRecord, mod *modRef) error {
	if mod == nil {
		modName, _, _ := strings.Cut(rec.Recipe, ":")
		if m, err := r.e.module(ctx, r.specs, modName, nil); err == nil {
			mod = m
		}
	}
	_, recipeName, _ := strings.Cut(rec.Recipe, ":")
	var loaded *wasmhost.Module
	if mod != nil {
		// A module that cannot load any more cannot clean up: its paths
		// are still removed below.
		loaded, _ = mod.load(ctx)
	}
	if loaded != nil && loaded.Has("recipe_uninstall") {
		defer r.e.BeginStep(fmt.Sprintf("uninstalling part %s (%s)", name, rec.Recipe))()
		if _, err := r.call(ctx, mod, "recipe_uninstall", name, recipeName, rec.Options, rec); err != nil {
			return fmt.Errorf("uninstall part %q (%s): %w", name, rec.Recipe, err)
		}
	}
	if len(rec.Installed) > 0 {
		// The target directory may be a partition user's: its paths are
		// removed beneath it without following any link (a link on the
		// way means the path is not inside any more: it is left alone).
		d, err := nofollow.Open(r.t.Dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("uninstall part %q: %w", name, err)
		}
		for i := len(rec.Installed) - 1; d != nil && i >= 0; i-- {
			p := filepath.Clean(rec.Installed[i])
			rel, err := filepath.Rel(r.t.Dir, p)
			if err != nil || !filepath.IsLocal(rel) || rel == "." {
				continue // the target directory itself stays
			}
			if err := d.RemoveAll(rel); err != nil {
				if errors.Is(err, nofollow.ErrSymlink) {
					r.e.progress("  %s: %s left alone: %v", name, p, err)
					continue
				}
				d.Close()
				return fmt.Errorf("uninstall part %q: %w", name, err)
			}
		}
		if d != nil {
			d.Close()
		}
	}
	return r.j.del(name)
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	return err == nil && filepath.IsLocal(rel)
}

// journalSpec says where the journal of t is and how it is keyed.
func (e *Engine) journalSpec(t *Target, plan bool) (journalSpec, error) {
	key, err := e.stateKey(!plan)
	if err != nil {
		return journalSpec{}, err
	}
	s := journalSpec{stateDir: t.StateDir, key: key, plan: plan, dirID: dirIdentity(t.Dir), note: e.progress}
	if s.stateDir == "" {
		s.stateDir = filepath.Join(t.Dir, ".slapnode")
		s.trusted = true
		s.bind = t.Kind + ":" + filepath.Base(t.Dir)
	} else {
		s.legacy = t.Dir
		s.bind = t.Kind + ":" + filepath.Base(s.stateDir)
	}
	return s, nil
}

func signature(recipe, digest string, opts json.RawMessage) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", recipe, digest)
	h.Write(opts)
	return hex.EncodeToString(h.Sum(nil))
}

func changedOptions(old, new json.RawMessage) []string {
	var a, b map[string]json.RawMessage
	json.Unmarshal(old, &a)
	json.Unmarshal(new, &b)
	var out []string
	for k, v := range b {
		if ov, ok := a[k]; !ok || !bytes.Equal(ov, v) {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func changedSuffix(c []string) string {
	if len(c) == 0 {
		return ""
	}
	return " changed: " + strings.Join(c, ", ")
}

// BeginStep calls e.Step when set; the function returned is never nil.
func (e *Engine) BeginStep(what string) (done func()) {
	if e.Step != nil {
		if done := e.Step(what); done != nil {
			return done
		}
	}
	return func() {}
}

func (e *Engine) progress(format string, args ...any) {
	if e.Out != nil {
		fmt.Fprintf(e.Out, "  "+format+"\n", args...)
	}
}

func (e *Engine) logWriter() io.Writer {
	if e.Verbose && e.Out != nil {
		return e.Out
	}
	return nil
}

// modRef is a module known by its bytes' digest and its description. It is
// compiled and instantiated (Host.Load) only when one of its functions is
// called, so an apply whose parts are all unchanged never starts wazero:
// the description comes from a cache keyed by the digest.
type modRef struct {
	Name        string
	Digest      string
	Description wasmhost.Description
	Described   bool

	e      *Engine
	wasm   []byte // nil for a built-in module named by its build-time digest
	source string
	grants wasmhost.Grants
	mu     sync.Mutex
	loaded *wasmhost.Module
	// known: Description and Described are set (from a cache, or by
	// the load). Set before the modRef is shared, or under mu.
	known bool

	setsMu sync.Mutex
	sets   map[string]optionSetMemo // "recipe:NAME" or "promise:NAME"
}

type optionSetMemo struct {
	set wasmhost.OptionSet
	ok  bool
}

// optionSet is the option set of one recipe (or promise check) of the
// module's description, decoded from its JSON schema once per module rather
// than once per part (a sixth of a 1000-part --recheck's CPU). The set is
// shared: callers only read it.
func (m *modRef) optionSet(promise bool, name string) (wasmhost.OptionSet, bool) {
	key, entries := "recipe:"+name, m.Description.Recipes
	if promise {
		key, entries = "promise:"+name, m.Description.Promises
	}
	m.setsMu.Lock()
	defer m.setsMu.Unlock()
	if memo, ok := m.sets[key]; ok {
		return memo.set, memo.ok
	}
	en, found := entries[name]
	var memo optionSetMemo
	if found {
		memo.set, memo.ok = en.OptionSet()
	}
	if m.sets == nil {
		m.sets = map[string]optionSetMemo{}
	}
	m.sets[key] = memo
	return memo.set, memo.ok
}

// describe loads the module unless its description is known.
func (m *modRef) describe(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known {
		return nil
	}
	_, err := m.loadLocked(ctx)
	return err
}

// load compiles and checks the module (once).
func (m *modRef) load(ctx context.Context) (*wasmhost.Module, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadLocked(ctx)
}

func (m *modRef) loadLocked(ctx context.Context) (*wasmhost.Module, error) {
	if m.loaded != nil {
		return m.loaded, nil
	}
	wasm := m.wasm
	if wasm == nil {
		// In place in the binary (read-only, no copy); its pages are
		// given back once it is compiled.
		b, err := builtin.ModuleInPlace(strings.TrimPrefix(m.source, "builtin:"))
		if err != nil {
			return nil, fmt.Errorf("module %q: %w", m.Name, err)
		}
		wasm = b
		defer builtin.Release(strings.TrimPrefix(m.source, "builtin:"))
	}
	done := m.e.BeginStep("compiling module " + m.Name + " (once per machine)")
	lm, err := m.e.Host.Load(ctx, m.Name, wasm, m.grants)
	done()
	if err != nil {
		return nil, err
	}
	if lm.Digest != m.Digest {
		return nil, fmt.Errorf("module %q: %s hashes to sha256 %s, not the %s recorded when it was built: rebuild slapnode with make", m.Name, m.source, lm.Digest, m.Digest)
	}
	// The compiled module holds what it needs; the bytes can go.
	m.wasm = nil
	m.loaded = lm
	if !m.known {
		// Readers of a known description do not lock: it is written once.
		m.Description, m.Described, m.known = lm.Description, lm.Described, true
	}
	m.e.saveDescription(m.Digest, lm, strings.HasPrefix(m.source, "builtin:"))
	return lm, nil
}

func (e *Engine) descriptionPath(digest string) string {
	if e.Root == "" {
		return ""
	}
	return filepath.Join(e.Root, "cache", "modules", digest+".json")
}

func (e *Engine) saveDescription(digest string, m *wasmhost.Module, builtin bool) {
	e.cleanModuleCache()
	if builtin && e.Host != nil {
		// Beside its machine code, for the machine's other node roots.
		e.Host.SaveDescription(m)
	}
	p := e.descriptionPath(digest)
	if p == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	// A cache: losing it only costs a module load.
	_ = wasmhost.WriteDescription(p, m, 0o644)
}

// cleanModuleCache removes, once per engine, the temporary files of
// writes killed before their rename in the node's own directories: the
// module cache, the node root (instances.json, node-state.json) and the
// state directory.
func (e *Engine) cleanModuleCache() {
	if p := e.descriptionPath("x"); p != "" {
		e.cleaned.Do(func() {
			for _, d := range []string{filepath.Dir(p), e.Root, filepath.Join(e.Root, "state"), filepath.Join(e.Root, "state", "recheck")} {
				atomicfile.CleanTemp(d)
			}
		})
	}
}

// Preload starts loading the built-in module name (its machine code read
// from the compilation cache, decoded and checked: a tenth of a second for
// the cookbook) in the background, so that the first part needing it finds
// it ready; a part asking for it meanwhile waits for that load rather than
// starting another. A profile that declares the module with grants of its
// own shares the compiled code. Errors are left for the part that needs
// the module to meet and report.
//
// A profile parsed meanwhile (LoadSoftware) is parsed on the other cores.
func (e *Engine) Preload(ctx context.Context, name string) {
	e.preloading.Add(1)
	go func() {
		defer e.preloading.Add(-1)
		if m, err := e.module(ctx, nil, name, nil); err == nil {
			_, _ = m.load(ctx)
		}
	}()
}

// Preloading says whether a load Preload started is still running.
func (e *Engine) Preloading() bool { return e.preloading.Load() > 0 }

// parseCores is how many cores a profile may be parsed on now: those the
// loads Preload started leave free (profile.LoadOptions.Cores).
func (e *Engine) parseCores() int {
	return max(1, runtime.GOMAXPROCS(0)-int(e.preloading.Load()))
}

// module returns the module named by a part's recipe: a `module` block of
// the profile, or the built-in cookbook.
func (e *Engine) module(ctx context.Context, specs map[string]*profile.ModuleSpec, name string, at *profile.Attr) (*modRef, error) {
	spec := specs[name]
	if spec == nil {
		if name != "cookbook" && name != "promises" {
			var rng *hcl.Range
			if at != nil {
				rng = at.Expr.Range().Ptr()
			}
			return nil, &profile.Error{Diags: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown module",
				Detail: fmt.Sprintf("No module %q: declare it with a module \"%s\" { source = ... } block, or use the built-in cookbook.", name, name), Subject: rng}}}
		}
		spec = &profile.ModuleSpec{Name: name, Source: "builtin:cookbook"}
	}
	g := wasmhost.Grants{Exec: spec.AllowExec, Env: spec.AllowEnv, Net: spec.AllowNet, MemoryBytes: spec.MemoryBytes, Timeout: spec.Timeout}
	key := fmt.Sprintf("%s|%s|%v|%v|%v|%d|%s", spec.Source, spec.SHA256, g.Exec, g.Env, g.Net, g.MemoryBytes, g.Timeout)
	e.mu.Lock()
	defer e.mu.Unlock()
	if m := e.modules[key]; m != nil {
		if !m.known {
			// Registered by a caller still loading it (Preload): its
			// description comes with the load.
			e.mu.Unlock()
			err := m.describe(ctx)
			e.mu.Lock()
			if err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	var wasm []byte
	var err error
	var digest string
	switch {
	case strings.HasPrefix(spec.Source, "builtin:"):
		// The digest recorded at build time names the module without
		// reading its megabytes; the bytes are read when it is loaded
		// (modRef.load), which checks that they hash to it.
		var ok bool
		if digest, ok = builtin.Digest(strings.TrimPrefix(spec.Source, "builtin:")); !ok {
			wasm, err = builtin.Module(strings.TrimPrefix(spec.Source, "builtin:"))
		}
		g.Trusted = true
	case strings.Contains(spec.Source, "://"):
		// Through the node's download cache, verified against sha256
		// (which the profile loader requires for URLs).
		var path string
		if path, err = e.Host.Download(ctx, spec.Source, spec.SHA256); err == nil {
			wasm, err = readModule(path)
		}
	default:
		wasm, err = readModule(spec.Source)
	}
	if digest == "" {
		sum := sha256.Sum256(wasm)
		digest = hex.EncodeToString(sum[:])
	}
	if err == nil && spec.SHA256 != "" && !strings.EqualFold(digest, spec.SHA256) {
		err = fmt.Errorf("module %q: %s has sha256 %s but the profile requires %s", name, spec.Source, digest, spec.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", name, err)
	}
	m := &modRef{Name: name, Digest: digest, e: e, wasm: wasm, grants: g, source: spec.Source}
	e.cleanModuleCache()
	if p := e.descriptionPath(digest); p != "" {
		m.Description, m.Described, m.known = wasmhost.ReadDescription(p)
	}
	if !m.known && strings.HasPrefix(spec.Source, "builtin:") && e.Host != nil {
		// A fresh node root on a machine that has compiled it (or
		// where slapnode was installed with it compiled).
		m.Description, m.Described, m.known = e.Host.CachedDescription(digest)
	}
	if e.modules == nil {
		e.modules = map[string]*modRef{}
	}
	// Registered before it is loaded, so that a second caller waits for
	// this load (modRef.load) instead of starting another.
	e.modules[key] = m
	if !m.known {
		// Not seen on this node yet: load it now (this also checks its
		// imports against the grants).
		e.mu.Unlock()
		err := m.describe(ctx)
		e.mu.Lock()
		if err != nil {
			if e.modules[key] == m {
				delete(e.modules, key)
			}
			return nil, err
		}
	}
	return m, nil
}

// validate checks options against the recipe's schema, applies its
// defaults, and turns violations into diagnostics at the attributes.
func (e *Engine) validate(mod *modRef, recipe string, sch json.RawMessage, opts map[string]cty.Value, optJSON json.RawMessage, b *profile.Block, p *profile.Profile) (json.RawMessage, error) {
	key := mod.Digest + ":" + recipe
	e.mu.Lock()
	v := e.schemas[key]
	e.mu.Unlock()
	if v == nil {
		var err error
		v, err = schema.CompileJSON(mod.Name+"/"+recipe+".options.json", sch, schema.Options{})
		if err != nil {
			return nil, fmt.Errorf("module %s: the options schema of recipe %s does not compile: %w", mod.Name, recipe, err)
		}
		e.mu.Lock()
		if e.schemas == nil {
			e.schemas = map[string]*schema.Validator{}
		}
		e.schemas[key] = v
		e.mu.Unlock()
	}
	params, direct, err := decodeOptions(opts, optJSON)
	if err != nil {
		return nil, err
	}
	res, err := v.Validate(params)
	if err != nil {
		var ve *schema.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		var diags hcl.Diagnostics
		for _, viol := range ve.Violations {
			subject := b.DefRange
			top := strings.SplitN(strings.TrimPrefix(viol.Pointer, "/"), "/", 2)[0]
			if a := b.Attrs[top]; a != nil && top != "" {
				subject = a.Range
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid options for %s:%s", mod.Name, recipe),
				Detail: viol.Message, Subject: subject.Ptr()})
		}
		return nil, p.Err(diags)
	}
	if unchangedByValidation(direct, opts, res) {
		return optJSON, nil
	}
	return json.Marshal(res.Params)
}

// MaxModuleSize bounds a module file (the cookbook is 9.5 MB).
const MaxModuleSize = 128 << 20

// readModule reads a module's file: a profile names it by any path, and
// root reads it, so it must be a regular file of at most MaxModuleSize
// bytes, opened without blocking — a profile naming /dev/zero made root's
// apply grow until the OOM killer took it (or another process of the
// machine), and a FIFO hung it.
func readModule(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v): a module is a .wasm file", path, st.Mode().Type())
	}
	if st.Size() > MaxModuleSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d MiB a module may have", path, st.Size(), MaxModuleSize>>20)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxModuleSize+1))
	if err == nil && len(b) > MaxModuleSize {
		err = fmt.Errorf("%s grew past %d MiB while read", path, MaxModuleSize>>20)
	}
	return b, err
}
