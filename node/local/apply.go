package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/partition/promise"
	"github.com/slapnode/slapnode/partition/release"
	"github.com/slapnode/slapnode/partition/service"
	"github.com/slapnode/slapnode/schema"
)

// Requested states of an instance, as SlapOS names them.
const (
	StateStarted   = "started"
	StateStopped   = "stopped"
	StateDestroyed = "destroyed"
)

// ApplyOptions say what to apply.
type ApplyOptions struct {
	Name    string         // instance name; default: the software's name
	Type    string         // software type; default "default"
	Params  map[string]any // instance parameters
	Strings bool           // parameters are strings to coerce (--param k=v)
	State   string         // started (default), stopped or destroyed
	Force   bool           // reinstall every part
	Recheck bool           // compare every part of a complete release too
	// Release refuses a profile that is not a frozen release (any
	// unpinned download, module, extends, version or command).
	Release bool
	// Checked: the caller checked the profiles already (CheckProfiles).
	Checked bool
	Plan    bool // say what would change, change nothing
	// PromiseWait is how long promises may take to pass after services
	// start (a service needs a moment to listen). 0 checks once.
	PromiseWait time.Duration
	// Settle is how long the services an apply starts or restarts must
	// stay up for the apply to succeed; 0 does not wait.
	Settle   time.Duration
	Services Services
	// Requester makes the instance profile's request blocks' requests;
	// default: children instantiated on this node.
	Requester partition.Requester
	// MasterURL, KeyFile and CertFile are what a buildout instance reads
	// from slap-connection (server-url, key-file, cert-file): the master
	// the node converges with and the partition's certificate it fetched
	// from it (converge.go); empty with slapnode apply alone.
	MasterURL, KeyFile, CertFile string
	depth                        int            // nesting of child requests, bounded
	validated                    *schema.Result // Params, already validated by Apply
}

// ApplyResult is what an apply did.
type ApplyResult struct {
	Software       *partition.Software
	Instance       *partition.Instance
	Record         *InstanceRecord
	Partition      partition.Partition
	Changes        supervisor.Changes
	Promises       []promise.Result
	PromisesFailed bool
	// Plan, for a plan, is what the apply would do to the instance beyond
	// its parts: its state, services, promises, connection parameters.
	Plan *Plan
	// Basis, for a plan, is what it was computed from, each a digest by
	// name: the profiles, the journals, the instance's record, the
	// supervisor's and the promises' saved state. A saved plan whose basis
	// differs from the node's now is stale.
	Basis map[string]string
}

// ErrPromise is returned (wrapped) when the instance was applied but a
// promise failed: SlapOS's exit code 2.
var ErrPromise = errors.New("promise failed")

// ErrServiceDown is returned (wrapped) when the instance was applied but
// a service it started did not stay up for the settle time.
var ErrServiceDown = errors.New("service did not stay up")

// Apply installs the software of profilePath, instantiates it in the
// instance's partition, hands its services to the supervisor, runs its
// promises and records its connection parameters.
func (n *Node) Apply(ctx context.Context, profilePath string, o ApplyOptions) (*ApplyResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.apply(ctx, profilePath, o)
}

// apply is Apply with the node's lock held (child requests re-enter it).
func (n *Node) apply(ctx context.Context, profilePath string, o ApplyOptions) (*ApplyResult, error) {
	e := n.Engine
	if complete, types := e.Completed(profilePath); complete && types == 0 && o.Type == "" && !o.Force && !o.Plan && !o.Release && o.State != StateDestroyed {
		if !o.Recheck {
			// A software-only release, installed, its profile
			// unchanged: nothing to parse, nothing to do.
			url, _ := partition.SoftwareURL(profilePath)
			if n.Out != nil {
				fmt.Fprintf(n.Out, "software %s: complete and unchanged\n", n.Engine.SoftwareDir(url))
			}
			return &ApplyResult{Software: &partition.Software{URL: url, Path: n.Engine.SoftwareDir(url)}}, nil
		}
		// A recheck of such a release: every part compared with its
		// journal from the recheck cache, without parsing the profile,
		// when nothing changed (otherwise the profile is applied below).
		start := time.Now()
		if sw := e.RecheckUnchanged(profilePath); sw != nil {
			if n.Out != nil {
				fmt.Fprintf(n.Out, "software %s (%s)\n", sw.Info.Name, sw.Path)
			}
			n.recordBuild(ctx, sw, o, start, nil)
			return &ApplyResult{Software: sw}, nil
		}
	}
	sw := n.takeChecked(profilePath, o)
	var err error
	if sw == nil {
		sw, err = e.LoadSoftware(profilePath)
	}
	if err != nil {
		return nil, err
	}
	if o.State == "" {
		o.State = StateStarted
	}
	switch o.State {
	case StateStarted, StateStopped, StateDestroyed:
	default:
		return nil, fmt.Errorf("unknown state %q: use started, stopped or destroyed", o.State)
	}
	name := o.Name
	if name == "" {
		name = sw.Info.Name
	}
	sw.Recheck = o.Recheck
	if o.Release {
		if err := release.Err(release.Check(sw.Profile, release.Options{})); err != nil {
			return nil, err
		}
	}
	// Every mistake of the profiles is found now, all at once, before
	// anything is installed.
	if o.depth == 0 && !o.Checked && o.State != StateDestroyed {
		done := e.BeginStep("checking the profiles of " + sw.Info.Name)
		err := e.Check(ctx, sw)
		done()
		if err != nil {
			return nil, err
		}
	}
	res := &ApplyResult{Software: sw}
	reg, err := n.load()
	if err != nil {
		return nil, err
	}
	if o.State == StateDestroyed {
		if o.Plan {
			res.Plan, err = n.planDestroy(reg, name)
			if err == nil {
				res.Basis = n.basis(sw, nil, reg.Instances[name], res.Plan.Partition)
			}
			return res, err
		}
		return res, n.destroy(ctx, reg, name, o)
	}
	if len(sw.Types) == 0 && o.Type == "" {
		// A release without software types (a converted buildout, a
		// shared component) is only installed, as `slapos node software`
		// does.
		if n.Out != nil && !o.Plan {
			fmt.Fprintf(n.Out, "software %s (%s)\n", sw.Info.Name, sw.Path)
		}
		err := n.installSoftware(ctx, sw, o)
		if o.Plan {
			res.Basis = n.basis(sw, nil, nil, "")
		}
		return res, err
	}
	it, err := sw.InstanceType(o.Type)
	if err != nil {
		return nil, err
	}
	// Parameters are checked before anything is installed.
	validated, err := partition.ValidateParameters(it, o.Params, o.Strings)
	if err != nil {
		return nil, fmt.Errorf("parameters of software type %q: %w", it.Name, err)
	}
	o.validated = validated
	if n.Out != nil && !o.Plan {
		fmt.Fprintf(n.Out, "software %s (%s)\n", sw.Info.Name, sw.Path)
	}
	if err := n.installSoftware(ctx, sw, o); err != nil {
		return nil, err
	}
	if sw.Legacy != nil && o.Type == "" && !o.Plan && sw.LegacyInstanceProfile() == "" {
		// A buildout that renders no instance profile (a component, a
		// software-only release) is only installed, as `slapos node
		// software` does.
		if n.Out != nil {
			fmt.Fprintf(n.Out, "software %s has no instance profile (instance.cfg or template.cfg): nothing to instantiate\n", sw.Info.Name)
		}
		return res, nil
	}
	pid := allocate(reg, name)
	if reg.Instances[name] == nil && !o.Plan {
		// Reserve the partition now: children this instance requests are
		// allocated while it is being applied.
		reg.Instances[name] = &InstanceRecord{Name: name, Partition: pid, Software: sw.URL, Type: it.Name, State: o.State, Updated: time.Now().UTC()}
		if err := n.save(reg); err != nil {
			return nil, err
		}
	}
	if o.Requester == nil {
		o.Requester = &localRequester{n: n, parent: name, o: o}
	}
	if n.Out != nil && !o.Plan {
		fmt.Fprintf(n.Out, "instance %s in %s\n", name, pid)
	}
	o.Name = name
	dres, err := n.deploy(ctx, sw, it, pid, o, nil)
	if dres != nil {
		res.Partition, res.Instance, res.Changes = dres.Partition, dres.Instance, dres.Changes
		res.Promises, res.PromisesFailed = dres.Promises, dres.PromisesFailed
	}
	if dres != nil && o.Plan && err == nil {
		res.Plan, err = n.planInstance(ctx, sw, reg.Instances[name], name, dres, o)
		res.Basis = n.basis(sw, dres.Instance, reg.Instances[name], pid)
	}
	if dres == nil || o.Plan {
		return res, err
	}
	rec := &InstanceRecord{Name: name, Partition: pid, Software: sw.URL, Type: it.Name, State: o.State,
		Params: res.Instance.Params, Connection: res.Instance.Connection, Updated: time.Now().UTC()}
	// Children saved their own records meanwhile: reload before writing.
	reg, lerr := n.load()
	if lerr != nil {
		return nil, lerr
	}
	reg.Instances[name] = rec
	if serr := n.save(reg); serr != nil {
		return nil, serr
	}
	res.Record = rec
	return res, err
}

// deploy instantiates software type it of sw in partition pid, hands its
// services to the supervisor in the requested state, runs its promises and
// records its connection parameters in the partition. The result is
// returned with ErrPromise when a promise failed.
func (n *Node) deploy(ctx context.Context, sw *partition.Software, it *profile.InstanceType, pid string, o ApplyOptions, shared []partition.SharedInstance) (*ApplyResult, error) {
	e := n.Engine
	part, err := n.Partition(pid)
	if err != nil {
		return nil, err
	}
	res := &ApplyResult{Software: sw, Partition: part}
	root, _, _ := strings.Cut(o.Name, "/")
	inst, err := e.Instantiate(ctx, &partition.InstanceRequest{
		Software: sw, Type: it.Name, Params: o.Params, Strings: o.Strings, Partition: part, Force: o.Force, Shared: shared,
		Requester: o.Requester, Validated: o.validated, State: o.State, Title: o.Name, RootTitle: root,
		MasterURL: o.MasterURL, KeyFile: o.KeyFile, CertFile: o.CertFile,
	}, o.Plan)
	if err != nil {
		return nil, err
	}
	res.Instance = inst
	if o.Plan {
		return res, nil
	}
	// In the node's state directory of the partition: the partition's
	// user owns the partition directory and could plant links there.
	if err := atomicfile.WriteJSON(filepath.Join(part.StateDir, "connection.json"), inst.Connection, 0o600); err != nil {
		return nil, err
	}
	if o.Services == nil {
		return nil, fmt.Errorf("no supervisor to hand the services of %s to", pid)
	}
	// The daemon and `slapnode promise run` read the promises from here.
	specs := promise.FromPartition(inst.Promises)
	if err := promise.SaveSpecs(part, specs); err != nil {
		return nil, err
	}
	if err := promise.SavePluginGrant(part, inst.PythonPlugins); err != nil {
		return nil, err
	}
	if o.State == StateStopped {
		res.Changes, err = o.Services.ApplyState(ctx, pid, inst.Services, supervisor.PartitionStopped)
		if err != nil {
			return nil, fmt.Errorf("services of %s: %w", pid, err)
		}
		return res, nil
	}
	res.Changes, err = o.Services.Apply(ctx, pid, inst.Services)
	if err != nil {
		return nil, fmt.Errorf("services of %s: %w", pid, err)
	}
	runner := &promise.Runner{Host: e.Host}
	if st, ok := o.Services.(promise.Services); ok {
		runner.Services = st
		started := append(append([]string{}, res.Changes.Started...), res.Changes.Restarted...)
		if o.Settle > 0 && len(started) > 0 {
			done := e.BeginStep(fmt.Sprintf("checking that the services of %s stay up (%s)", pid, o.Settle))
			err := settle(ctx, st, pid, o.Name, started, inst.Services, o.Settle)
			done()
			if err != nil {
				return res, err
			}
		}
	}
	done := e.BeginStep("checking the promises of " + pid)
	res.Promises, err = runner.RunPartition(ctx, promise.PartitionRef{Partition: part, SoftwarePath: sw.Path, SoftwareURL: sw.URL},
		promise.RunOptions{Force: true, Settle: o.PromiseWait, Specs: specs, PythonPlugins: inst.PythonPlugins})
	done()
	if err != nil {
		return nil, fmt.Errorf("promises of %s: %w", pid, err)
	}
	if st, ok := o.Services.(promise.Services); ok {
		n.checkAddresses(ctx, st, part, inst.Promises, res.Promises)
	}
	for _, p := range res.Promises {
		if p.Failed() {
			res.PromisesFailed = true
			return res, fmt.Errorf("%w: %s: %s", ErrPromise, p.Name, p.Message)
		}
	}
	return res, nil
}

// settle watches the services an apply started for d: each watched service
// must stay RUNNING without a restart, else the apply fails saying which
// service, in what state, why it last exited, and where its log is.
func settle(ctx context.Context, st promise.Services, pid, name string, started []string, specs []service.Spec, d time.Duration) error {
	watched := map[string]bool{}
	for _, sp := range specs {
		if sp.Watch && sp.Schedule == "" && slices.Contains(started, sp.Name) {
			watched[sp.Name] = true
		}
	}
	if len(watched) == 0 {
		return nil
	}
	deadline := time.Now().Add(d)
	// Restarts counts from the unit's creation: one started again after
	// FATAL keeps its count, so only new restarts count.
	base := map[string]int{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		all, err := st.Status(ctx)
		if err != nil {
			return fmt.Errorf("services of %s: %w", pid, err)
		}
		var bad []string
		for _, s := range all {
			if s.Partition != pid || !watched[s.Name] {
				continue
			}
			if _, seen := base[s.Name]; !seen {
				base[s.Name] = s.Restarts
			}
			restarts := s.Restarts - base[s.Name]
			down := s.State == service.StateBackoff || s.State == service.StateFatal || s.State == service.StateExited || s.State == service.StateStopped
			if down || restarts > 0 {
				why := s.State
				if s.LastExit != "" {
					why += ", last exit: " + s.LastExit
				}
				if restarts > 0 {
					why += fmt.Sprintf(", restarted %d time(s)", restarts)
				}
				bad = append(bad, fmt.Sprintf("service %s exited within %s of its start (%s); its log: slapnode logs %s %s", s.Name, d, why, name, s.Name))
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return fmt.Errorf("%w: %s", ErrServiceDown, strings.Join(bad, "; "))
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// checkAddresses fails the passing promises that checked an address their
// partition does not own (foreignAddress).
func (n *Node) checkAddresses(ctx context.Context, st promise.Services, part partition.Partition, specs []partition.PromiseSpec, results []promise.Result) {
	byName := map[string]partition.PromiseSpec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	var statuses []service.Status
	loaded := false
	var nodeAddrs map[netip.Addr]string
	var block int
	for i := range results {
		r := &results[i]
		spec, ok := byName[r.Name]
		if !r.OK || !ok {
			continue
		}
		ap, ok := checkedAddr(spec.Options)
		if !ok {
			continue
		}
		if !loaded {
			all, err := st.Status(ctx)
			if err != nil {
				return
			}
			for _, s := range all {
				if s.Partition == part.ID {
					statuses = append(statuses, s)
				}
			}
			nodeAddrs, block = n.partitionAddrs()
			loaded = true
		}
		if why := foreignAddress(part, ap, nodeAddrs, block, statuses); why != "" {
			r.OK = false
			r.Message = fmt.Sprintf("passed, but not for %s: %s", part.ID, why)
		}
	}
}

// CheckProfiles finds every mistake of a release's profiles (the software
// profile and its types' instance profiles) at once, before anything is
// started: apply's first step, for a caller that wants it before it starts
// the node daemon.
func (n *Node) CheckProfiles(ctx context.Context, profilePath string) error {
	if complete, types := n.Engine.Completed(profilePath); complete && types == 0 {
		return nil
	}
	// Something is to be installed or compared: the cookbook is loaded on
	// one core while the profiles are parsed on the others and checked
	// (the first part would otherwise wait for it: wazero decodes and
	// validates its megabytes even when its machine code is cached).
	n.Engine.Preload(ctx, "cookbook")
	sw, err := n.Engine.LoadSoftware(profilePath)
	if err != nil {
		return err
	}
	done := n.Engine.BeginStep("checking the profiles of " + sw.Info.Name)
	defer done()
	if err := n.Engine.Check(ctx, sw); err != nil {
		return err
	}
	if n.Engine.Preloading() {
		// This core would wait for the load: it collects the garbage of
		// parsing and checking meanwhile, so that the heap does not grow
		// to hold it beside the module's decoding (peak RSS ~7 MiB
		// lower, docs/benchmarks.md).
		runtime.GC()
	}
	n.mu.Lock()
	n.checked, n.checkedPath = sw, profilePath
	n.mu.Unlock()
	return nil
}

// takeChecked hands the apply of a checked release (ApplyOptions.Checked)
// the release CheckProfiles loaded, once: the 1000-part profile of the
// benchmarks costs a sixth of a first apply's CPU to parse (docs/benchmarks.md).
// Any other apply (a child request, another profile) loads its own.
func (n *Node) takeChecked(profilePath string, o ApplyOptions) *partition.Software {
	sw := n.checked
	if sw == nil || !o.Checked || o.depth != 0 || n.checkedPath != profilePath {
		return nil
	}
	n.checked, n.checkedPath = nil, ""
	return sw
}

// planInstance says what an apply would do to the instance beyond parts.
func (n *Node) planInstance(ctx context.Context, sw *partition.Software, rec *InstanceRecord, name string, dres *ApplyResult, o ApplyOptions) (*Plan, error) {
	inst, part := dres.Instance, dres.Partition
	pl := &Plan{Instance: name, Partition: part.ID}
	switch {
	case rec == nil:
		pl.Action = PlanCreate
	case o.State == StateStopped && rec.State != StateStopped:
		pl.Action = PlanStop
	case o.State == StateStarted && rec.State == StateStopped:
		pl.Action = PlanStart
	}
	if sw.Legacy != nil {
		// A buildout instance's services and promises are what its
		// rendered profile writes at apply: not known before.
		return pl, nil
	}
	m := inst.Secrets
	var err error
	if pl.Services, err = n.planServices(ctx, part.ID, inst.Services, inst.Unknown, o.State, o, m); err != nil {
		return nil, err
	}
	if pl.Promises, err = planPromises(part, inst.Promises, inst.Unknown, m); err != nil {
		return nil, err
	}
	var old map[string]any
	if rec != nil {
		old = rec.Connection
	}
	pl.Connection = planConnection(old, inst.Connection, inst.Unknown, m)
	return pl, nil
}

// basis digests what a plan was computed from (ApplyResult.Basis).
func (n *Node) basis(sw *partition.Software, inst *partition.Instance, rec *InstanceRecord, pid string) map[string]string {
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	b := map[string]string{"software profile": sw.Profile.Digest, "software parts": "complete"}
	if sw.Report != nil {
		b["software parts"] = sw.Report.Basis
	}
	if inst != nil {
		b["instance profile"] = inst.ProfileDigest
		b["instance parts"] = inst.Report.Basis
	}
	if pid == "" {
		return b
	}
	r, _ := json.Marshal(rec)
	b["instance record"] = sum(r)
	read := func(p string) string {
		c, err := os.ReadFile(p)
		if err != nil {
			return "none"
		}
		return sum(c)
	}
	b["services"] = read(filepath.Join(daemon.StateDir(n.Root), "partitions", pid+".json"))
	if part, err := n.Partition(pid); err == nil {
		b["promises"] = read(promise.SpecsPath(part))
	}
	return b
}

// planDestroy says what destroying an instance would do.
func (n *Node) planDestroy(reg *registry, name string) (*Plan, error) {
	rec := reg.Instances[name]
	if rec == nil {
		return nil, fmt.Errorf("no instance named %q on this node", name)
	}
	pl := &Plan{Instance: name, Partition: rec.Partition, Action: PlanDestroy}
	for child := range reg.Instances {
		if strings.HasPrefix(child, name+"/") {
			pl.Children = append(pl.Children, child)
		}
	}
	sort.Strings(pl.Children)
	_, specs, _, err := supervisor.Persisted(daemon.StateDir(n.Root), rec.Partition)
	if err != nil {
		return nil, err
	}
	m := partition.NewMasker()
	for _, sp := range specs {
		pl.Services = append(pl.Services, ServicePlan{Name: sp.Name, Action: ServiceStop, Reason: "the instance is destroyed"})
	}
	pl.Connection = planConnection(rec.Connection, nil, nil, m)
	return pl, nil
}

// destroy stops an instance's services, empties its partition and forgets it.
func (n *Node) destroy(ctx context.Context, reg *registry, name string, o ApplyOptions) error {
	rec := reg.Instances[name]
	if rec == nil {
		return fmt.Errorf("no instance named %q on this node", name)
	}
	if o.Plan {
		return nil
	}
	// Children first (they are named PARENT/CHILD), as SlapOS destroys a
	// tree.
	for child := range reg.Instances {
		if rest, ok := strings.CutPrefix(child, name+"/"); ok && !strings.Contains(rest, "/") {
			if err := n.destroy(ctx, reg, child, o); err != nil {
				return err
			}
		}
	}
	if err := n.destroyPartition(ctx, rec.Partition, o.Services); err != nil {
		return err
	}
	delete(reg.Instances, name)
	return n.save(reg)
}

// destroyPartition stops a partition's services, forgets them, and empties
// the partition so that it can be allocated again.
func (n *Node) destroyPartition(ctx context.Context, pid string, services Services) error {
	if services != nil {
		if err := services.Remove(ctx, pid); err != nil {
			return fmt.Errorf("stop services of %s: %w", pid, err)
		}
	}
	part, err := n.Partition(pid)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(part.Path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, ent := range entries {
		if err := os.RemoveAll(filepath.Join(part.Path, ent.Name())); err != nil {
			return fmt.Errorf("empty %s: %w", part.Path, err)
		}
	}
	// Its parts are gone: the next instance there installs all of its own.
	return n.Engine.ForgetInstance(pid)
}

// localRequester instantiates the children an instance requests on this
// node, each in a partition of its own, named PARENT/CHILD.
type localRequester struct {
	n      *Node
	parent string
	o      ApplyOptions
}

func (lr *localRequester) Request(ctx context.Context, _ string, cr partition.ChildRequest) (map[string]any, error) {
	if cr.Shared {
		return nil, fmt.Errorf("request %s: shared instances need a master to find their host (slapnode master, node run --master)", cr.Name)
	}
	if lr.o.depth >= 8 {
		return nil, fmt.Errorf("request %s: more than 8 levels of instances requesting instances (a request loop?)", cr.Name)
	}
	o := ApplyOptions{Name: lr.parent + "/" + cr.Name, Type: cr.SoftwareType, Params: cr.Parameters, State: cr.State,
		PromiseWait: lr.o.PromiseWait, Settle: lr.o.Settle, Services: lr.o.Services, depth: lr.o.depth + 1}
	res, err := lr.n.apply(ctx, cr.Software, o)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", cr.Name, err)
	}
	if res.Instance == nil {
		return map[string]any{}, nil
	}
	return res.Instance.Connection, nil
}
