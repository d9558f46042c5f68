package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/format"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/schema"
	"github.com/zclconf/go-cty/cty"
)

func init() {
	register(&command{
		name:    "apply",
		summary: "install a software profile, instantiate it, start its services, print its connection parameters",
		usage: `Usage: slapnode apply PROFILE [flags]
       slapnode apply PLAN

Installs the software release PROFILE (a software.hcl) into the node, instantiates
one of its software types in a partition, starts its services, runs its promises
and prints its connection parameters. Applying again changes only what changed.

PROFILE may also be a SlapOS release written in buildout (software.cfg): it is
converted in memory and applied the SlapOS way — the software is built, then each
partition runs the instance profile it rendered (docs/porting.md).

Flags:
  --root DIR          node root (default $SLAPNODE_ROOT, $XDG_STATE_HOME/slapnode or ~/.local/state/slapnode)
  --name NAME         instance name (default: the software's name); one partition per name
  --type TYPE         software type (default "default")
  --param KEY=VALUE   an instance parameter (repeatable); KEY:=JSON for a JSON value
  --params FILE       instance parameters as a JSON object ("-" for stdin)
  --state STATE       started (default), stopped or destroyed; destroying asks for
                      confirmation on a terminal (and refuses without one)
  -auto-approve       destroy without asking
  --force             reinstall every part, even unchanged ones
  --recheck           compare every part of an already complete software release
                      with its state, and reinstall a part whose installed files
                      are missing (a complete release is skipped otherwise)
  --release           refuse a profile that can change under a user's feet (see
                      'slapnode release check'): unpinned downloads, modules, extends,
                      versions or commands
  --wait DURATION     how long promises may take to pass after services start (default 30s)
  --settle DURATION   how long the services apply starts must stay up (default 3s; 0:
                      do not wait): one that exits in that time fails the apply
  --download-cache DIR  look for downloads (url + md5sum or sha256) in DIR first: a
                      SlapOS download cache (files named by the md5 of their URL) or
                      a directory of files named by their URL's basename or checksum
  --offline           never use the network: every download must be in the node's
                      cache or the --download-cache directory (a missing one is named
                      with its URL and checksum)
  --json              print the result as JSON (docs/json.md)
  -v                  print details: every recipe's messages
  -q                  print only the result: no progress, no notes

PLAN may be a plan saved by 'slapnode plan -out PLAN': apply does what it says,
and refuses it when anything it was computed from changed since.

Exit codes: 0 success, 1 failure (a service that did not stay up, too), 4 a promise
failed, 64 usage error.

Examples:
  slapnode apply examples/helloweb/software.hcl
  slapnode apply examples/slapos-hello/software.cfg --param name=Alice
  slapnode apply software/foo/software.cfg --offline --download-cache /srv/download-cache
  slapnode apply examples/helloweb/software.hcl --param greeting=Bonjour --param port:=8481
  slapnode apply examples/helloweb/software.hcl --state destroyed
`,
		run: runApply,
	})
	register(&command{
		name:    "plan",
		summary: "show what apply would install, reinstall or uninstall, without changing anything",
		usage: `Usage: slapnode plan PROFILE [flags]

Shows what 'slapnode apply PROFILE' would do, without doing it: parts to install,
reinstall (each changed option old → new) or uninstall; services to start,
restart or stop; promises added, changed or removed; connection parameters that
change; the instance created, stopped, started or destroyed. Secrets are masked.
Every mistake of the profiles (software and instance) is reported at once, each
with file:line:col. Takes the same flags as apply (--root, --name, --type, --param,
--params, --state, --json, --download-cache, --offline). PROFILE may be a
buildout software.cfg, converted in memory.

  -detailed-exitcode  exit 0 when apply would change nothing, 2 when it would change
                      something, 1 on error
  -out FILE           save the plan to FILE: 'slapnode apply FILE' does what it says,
                      and refuses it when anything it was computed from changed

Examples:
  slapnode plan examples/helloweb/software.hcl --param greeting=Hi
  slapnode plan examples/helloweb/software.hcl --param port:=8491 -detailed-exitcode
  slapnode plan examples/helloweb/software.hcl --state destroyed -out destroy.plan
  slapnode apply destroy.plan
`,
		run: runPlan,
	})
}

type applyFlags struct {
	root, name, typ, paramsFile, state string
	params                             stringList
	force, recheck, release, asJSON    bool
	wait                               time.Duration
	downloadCache                      string
	offline                            bool
	detailedExitcode, autoApprove      bool
	settle                             time.Duration
	out                                string
}

func (a *applyFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&a.root, "root", defaultRoot(), "node root")
	fs.StringVar(&a.name, "name", "", "instance name")
	fs.StringVar(&a.typ, "type", "", "software type")
	fs.Var(&a.params, "param", "KEY=VALUE parameter")
	fs.StringVar(&a.paramsFile, "params", "", "JSON parameters file")
	fs.StringVar(&a.state, "state", local.StateStarted, "requested state")
	fs.BoolVar(&a.force, "force", false, "reinstall every part")
	fs.BoolVar(&a.recheck, "recheck", false, "compare every part of a complete software release")
	fs.BoolVar(&a.release, "release", false, "refuse a profile that is not a frozen release")
	fs.BoolVar(&a.asJSON, "json", false, "JSON output")
	fs.DurationVar(&a.wait, "wait", 30*time.Second, "promise wait")
	fs.StringVar(&a.downloadCache, "download-cache", "", "local directory searched for downloads first")
	fs.BoolVar(&a.offline, "offline", false, "never download from the network")
	fs.BoolVar(&a.autoApprove, "auto-approve", false, "destroy without asking")
	fs.DurationVar(&a.settle, "settle", 3*time.Second, "how long started services must stay up")
}

// parameters merges --params FILE and --param pairs; pairs are strings to be
// coerced to the schema's types.
func (a *applyFlags) parameters(env *cliEnv) (map[string]any, bool, error) {
	params := map[string]any{}
	strs := false
	if a.paramsFile != "" {
		var r = env.stdin
		if a.paramsFile != "-" {
			f, err := os.Open(a.paramsFile)
			if err != nil {
				return nil, false, err
			}
			defer f.Close()
			r = f
		}
		p, err := schema.DecodeJSON(r)
		if err != nil {
			return nil, false, fmt.Errorf("--params %s: %w", a.paramsFile, err)
		}
		params = p
	}
	if len(a.params) > 0 {
		kv, err := schema.ParseKeyValues(a.params)
		if err != nil {
			return nil, false, err
		}
		for k, v := range kv {
			params[k] = v
			if _, isString := v.(string); isString {
				strs = true
			}
		}
	}
	return params, strs, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runApply(env *cliEnv, args []string) error { return applyOrPlan(env, args, false) }
func runPlan(env *cliEnv, args []string) error  { return applyOrPlan(env, args, true) }

func applyOrPlan(env *cliEnv, args []string, plan bool) error {
	var a applyFlags
	name := "apply"
	if plan {
		name = "plan"
	}
	fs := newFlags(name)
	a.define(fs)
	if plan {
		fs.BoolVar(&a.detailedExitcode, "detailed-exitcode", false, "exit 2 when there are changes")
		fs.StringVar(&a.out, "out", "", "save the plan to FILE")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, fmt.Errorf("give one software profile, e.g. slapnode %s examples/helloweb/software.hcl", name))
	}
	profilePath := pos[0]
	var saved *savedPlan
	if !plan {
		if saved, err = readSavedPlan(profilePath); err != nil {
			return err
		}
	}
	var params map[string]any
	var strs bool
	if saved != nil {
		set := setFlags(fs)
		for _, f := range []string{"name", "type", "param", "params", "state", "force", "recheck", "release", "download-cache", "offline"} {
			if set[f] {
				return withCode(exitUsage, errPlanFlags)
			}
		}
		if set["root"] {
			if abs, _ := filepath.Abs(a.root); abs != saved.Root {
				return fmt.Errorf("the plan in %s was made for node root %s, not %s", profilePath, saved.Root, abs)
			}
		}
		saved.flags(&a)
		params, strs = saved.Options.Params, saved.Options.Strings
		profilePath = saved.Profile
		// Applying a saved plan is the approval: it was made to be applied.
		a.autoApprove = true
	} else if params, strs, err = a.parameters(env); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	out := env.out()
	if a.asJSON {
		out = nil
	}
	n, err := local.Open(ctx, a.root, out)
	if err != nil {
		return err
	}
	defer n.Close(context.Background())
	n.Engine.Verbose = env.verbose
	if a.downloadCache != "" || a.offline {
		var dirs []string
		if a.downloadCache != "" {
			dir, err := filepath.Abs(a.downloadCache)
			if err != nil {
				return err
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return fmt.Errorf("--download-cache %s: not a directory", a.downloadCache)
			}
			dirs = append(dirs, dir)
		}
		n.Engine.Host.SetDownloadSources(dirs, a.offline)
	}
	n.Engine.Step = env.step
	if !a.asJSON && !plan {
		rootlessNote(env, n)
	}
	opts := local.ApplyOptions{
		Name: a.name, Type: a.typ, Params: params, Strings: strs, State: a.state,
		Force: a.force, Recheck: a.recheck, Release: a.release, Plan: plan, PromiseWait: a.wait, Settle: a.settle,
	}
	if !plan && a.state == local.StateDestroyed && !a.autoApprove {
		name := a.name
		if name == "" {
			name = "the instance of " + profilePath
		}
		if err := confirmDestroy(env, name, "'slapnode plan ... --state destroyed'"); err != nil {
			return err
		}
	}
	if !plan && saved == nil && a.state != local.StateDestroyed {
		// The profiles' mistakes are found before a daemon is started.
		if err := n.CheckProfiles(ctx, profilePath); err != nil {
			return err
		}
		opts.Checked = true
	}
	var daemonStart *daemon.Starting
	if !plan {
		// The daemon starts while the software installs: the engine waits
		// for it where it needs it (an instance's services), and the apply
		// is a success only once it answers (below).
		if daemonStart, err = startNodeServices(ctx, n.Root); err != nil {
			return err
		}
		defer daemonStart.Close()
		opts.Services = daemonStart
	} else if c, err := daemon.Dial(n.Root); err == nil {
		// A plan only asks the daemon what runs; it never starts one.
		defer c.Close()
		opts.Services = c
	}
	if saved != nil {
		// The node must be as the plan saw it: plan again, compare.
		check := opts
		check.Plan, check.Services = true, nil
		done := env.step("checking the saved plan against the node")
		now, err := n.Apply(ctx, profilePath, check)
		done()
		if err != nil {
			return fmt.Errorf("the plan in %s cannot be checked: %w", pos[0], err)
		}
		if err := saved.stale(pos[0], now.Basis); err != nil {
			return err
		}
	}
	res, err := n.Apply(ctx, profilePath, opts)
	if err == nil && daemonStart != nil {
		if !daemonStart.Ready() {
			done := env.step("starting the node daemon")
			_, err = daemonStart.Wait()
			done()
		} else {
			_, err = daemonStart.Wait()
		}
	}
	if plan {
		if err != nil {
			return err
		}
		if err := printPlan(env, res, a.asJSON); err != nil {
			return err
		}
		if a.out != "" {
			abs, _ := filepath.Abs(a.root)
			if err := writeSavedPlan(a.out, abs, profilePath, &a, params, strs, res); err != nil {
				return fmt.Errorf("saving the plan: %w", err)
			}
			if !a.asJSON {
				env.note("plan saved to %s: 'slapnode apply %s' does what it says", a.out, a.out)
			}
		}
		if a.detailedExitcode && planHasChanges(res) {
			return withCode(exitChanges, errors.New(""))
		}
		return nil
	}
	if err != nil && !errors.Is(err, local.ErrPromise) && !errors.Is(err, local.ErrServiceDown) {
		return err
	}
	if perr := printApply(env, res, a.asJSON, a.state); perr != nil {
		return perr
	}
	if errors.Is(err, local.ErrServiceDown) {
		return err
	}
	if err != nil {
		return withCode(exitPromiseFailed, err)
	}
	return nil
}

// confirmDestroy asks on a terminal before an instance is destroyed; with
// no terminal to ask on, it refuses and says which flag destroys anyway,
// and which command (preview) shows what would be destroyed.
func confirmDestroy(env *cliEnv, what, preview string) error {
	f, ok := env.stdin.(*os.File)
	if !ok || !isatty.IsTerminal(f.Fd()) {
		return fmt.Errorf("refusing to destroy %s without confirmation: standard input is not a terminal to ask on; pass -auto-approve to destroy it (its services stop and its partition's files and data are deleted), or see what would be destroyed with %s", what, preview)
	}
	fmt.Fprintf(env.stderr, "Destroy %s? Its services stop and its partition is emptied: its files and data are deleted.\nOnly 'yes' confirms: ", what)
	line, _ := bufio.NewReader(env.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("destroy cancelled: nothing was changed")
	}
	return nil
}

// rootlessNote says, once per node root, what a node that was never
// formatted does not isolate. A node formatted rootless (node format
// --rootless) chose it and was told then: nothing is said.
func rootlessNote(env *cliEnv, n *local.Node) {
	if !n.Rootless || env.quiet {
		return
	}
	if _, err := format.LoadState(n.Root); !errors.Is(err, format.ErrNotFormatted) {
		return
	}
	marker := filepath.Join(n.Root, "var", "notes", "unformatted")
	if _, err := os.Stat(marker); err == nil {
		return
	}
	const isolation = "no user of their own, no cgroup limits (CPU, memory, processes) and no network of their own (only a loopback address each)"
	if os.Geteuid() == 0 {
		env.note("node %s is not formatted: its partitions all run as root (their services, and the commands their recipes and promises run), with %s; 'slapnode node format --root %s' isolates them (said once per node)", n.Root, isolation, n.Root)
	} else {
		env.note("rootless mode (not running as root): every partition runs as you, with %s (said once per node)", isolation)
	}
	if os.MkdirAll(filepath.Dir(marker), 0o755) == nil {
		os.WriteFile(marker, nil, 0o644)
	}
}

// jsonSoftware is the software release of an apply or a plan.
type jsonSoftware struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url"`
	Path string `json:"path"`
	// Report is left out when the release was complete and unchanged.
	Report    *jsonReport `json:"report,omitempty"`
	FromCache bool        `json:"from_cache"`
}

func softwareJSON(res *local.ApplyResult) jsonSoftware {
	sw := res.Software
	return jsonSoftware{Name: sw.Info.Name, URL: sw.URL, Path: sw.Path, Report: reportJSON(sw.Report), FromCache: sw.FromCache}
}

// jsonPlan is plan --json.
type jsonPlan struct {
	Software jsonSoftware      `json:"software"`
	Instance *jsonPlanInstance `json:"instance,omitempty"`
	// Changes: apply would change something (parts, services, promises,
	// connection parameters, the instance's state).
	Changes bool `json:"changes"`
}

type jsonPlanInstance struct {
	Name      string `json:"name"`
	Partition string `json:"partition"`
	// Action: create, destroy, stop, start; absent when updated in place.
	Action     string            `json:"action,omitempty"`
	Children   []string          `json:"children"`
	Report     *jsonReport       `json:"report,omitempty"`
	Services   []jsonServicePlan `json:"services"`
	Promises   []jsonPromisePlan `json:"promises"`
	Connection []jsonChange      `json:"connection"`
}

type jsonServicePlan struct {
	Name    string       `json:"name"`
	Action  string       `json:"action"` // start, restart, stop, unchanged
	Reason  string       `json:"reason,omitempty"`
	Changes []jsonChange `json:"changes"`
}

type jsonPromisePlan struct {
	Name    string       `json:"name"`
	Action  string       `json:"action"` // add, change, remove, unchanged
	Reason  string       `json:"reason,omitempty"`
	Changes []jsonChange `json:"changes"`
}

// jsonChange is one value that changes, old → new (absent: added,
// removed, or known only after apply); secrets are masked.
type jsonChange struct {
	Path            string          `json:"path"`
	Old             json.RawMessage `json:"old,omitempty"`
	New             json.RawMessage `json:"new,omitempty"`
	KnownAfterApply bool            `json:"known_after_apply"`
	Sensitive       bool            `json:"sensitive"`
}

func changesJSON(cs []partition.ValueChange) []jsonChange {
	out := []jsonChange{}
	for _, c := range cs {
		out = append(out, jsonChange{Path: c.Path, Old: c.Old, New: c.New, KnownAfterApply: c.Unknown, Sensitive: c.Sensitive})
	}
	return out
}

// planHasChanges reports whether applying would change anything.
func planHasChanges(res *local.ApplyResult) bool {
	for _, r := range []*partition.Report{res.Software.Report, instanceReport(res)} {
		if r != nil && r.Counts[partition.Install]+r.Counts[partition.Reinstall]+r.Counts[partition.Uninstall] > 0 {
			return true
		}
	}
	return res.Plan.HasChanges()
}

func instanceReport(res *local.ApplyResult) *partition.Report {
	if res.Instance == nil {
		return nil
	}
	return res.Instance.Report
}

func planJSON(res *local.ApplyResult) jsonPlan {
	doc := jsonPlan{Software: softwareJSON(res), Changes: planHasChanges(res)}
	pl := res.Plan
	if pl == nil && res.Instance == nil {
		return doc
	}
	inst := &jsonPlanInstance{Partition: res.Partition.ID, Children: []string{}, Services: []jsonServicePlan{},
		Promises: []jsonPromisePlan{}, Connection: []jsonChange{}}
	if res.Instance != nil {
		inst.Report = reportJSON(res.Instance.Report)
	}
	if pl != nil {
		inst.Name, inst.Partition, inst.Action, inst.Children = pl.Instance, pl.Partition, pl.Action, nonNil(pl.Children)
		for _, s := range pl.Services {
			inst.Services = append(inst.Services, jsonServicePlan{Name: s.Name, Action: s.Action, Reason: s.Reason, Changes: changesJSON(s.Changes)})
		}
		for _, p := range pl.Promises {
			inst.Promises = append(inst.Promises, jsonPromisePlan{Name: p.Name, Action: p.Action, Reason: p.Reason, Changes: changesJSON(p.Changes)})
		}
		inst.Connection = changesJSON(pl.Connection)
	}
	doc.Instance = inst
	return doc
}

func printPlan(env *cliEnv, res *local.ApplyResult, asJSON bool) error {
	if asJSON {
		return env.writeJSON(planJSON(res))
	}
	w := env.stdout
	if res.Software.Report == nil {
		fmt.Fprintf(w, "software %s: installed and unchanged\n", res.Software.Info.Name)
	}
	for _, l := range grantsNote(res.Software) {
		fmt.Fprintln(w, l)
	}
	if r := res.Software.Report; r != nil {
		fmt.Fprintf(w, "software %s:\n", res.Software.Info.Name)
		printActions(w, r)
		fmt.Fprintf(w, "  plan: %s\n", planSummary(r))
	}
	pl := res.Plan
	if pl == nil && res.Instance == nil {
		if !planHasChanges(res) {
			fmt.Fprintln(w, "no changes: apply would do nothing")
		}
		return nil
	}
	name, pid := "", res.Partition.ID
	if pl != nil {
		name, pid = pl.Instance, pl.Partition
	}
	fmt.Fprintf(w, "instance %s in %s:\n", name, pid)
	if pl != nil {
		switch pl.Action {
		case local.PlanCreate:
			fmt.Fprintf(w, "  + create: a new instance in %s\n", pid)
		case local.PlanDestroy:
			fmt.Fprintf(w, "  - destroy: its services stop, %s is emptied (its files and data deleted) and the instance is forgotten\n", pid)
			for _, c := range pl.Children {
				fmt.Fprintf(w, "  - destroy %s too (requested by it)\n", c)
			}
		case local.PlanStop:
			fmt.Fprintln(w, "  ~ stop: its services stop (kept for a later start)")
		case local.PlanStart:
			fmt.Fprintln(w, "  ~ start: the stopped instance starts again")
		}
	}
	if res.Instance != nil {
		printActions(w, res.Instance.Report)
	}
	var svc, prom map[string]int
	if pl != nil {
		svc, prom = map[string]int{}, map[string]int{}
		for _, s := range pl.Services {
			svc[s.Action]++
			if s.Action == local.ServiceUnchanged {
				continue
			}
			sign := map[string]string{local.ServiceStart: "+", local.ServiceRestart: "~", local.ServiceStop: "-"}[s.Action]
			line := fmt.Sprintf("  %s service %s: %s", sign, s.Name, s.Action)
			if s.Reason != "" {
				line += " — " + s.Reason
			}
			fmt.Fprintln(w, line)
			if s.Action != local.ServiceStart || len(s.Changes) <= 3 {
				printChanges(w, s.Changes)
			}
		}
		for _, p := range pl.Promises {
			prom[p.Action]++
			if p.Action == local.PromiseUnchanged {
				continue
			}
			sign := map[string]string{local.PromiseAdd: "+", local.PromiseChange: "~", local.PromiseRemove: "-"}[p.Action]
			line := fmt.Sprintf("  %s promise %s: %s", sign, p.Name, p.Action)
			if p.Reason != "" {
				line += " — " + p.Reason
			}
			fmt.Fprintln(w, line)
			if p.Action == local.PromiseChange {
				printChanges(w, p.Changes)
			}
		}
		for _, c := range pl.Connection {
			fmt.Fprintf(w, "  ~ connection %s\n", changeLine(c))
		}
	}
	summary := ""
	if res.Instance != nil {
		summary = planSummary(res.Instance.Report)
	}
	if pl != nil {
		var more []string
		if n := svc[local.ServiceStart] + svc[local.ServiceRestart] + svc[local.ServiceStop]; n > 0 {
			more = append(more, fmt.Sprintf("services: %d to start, %d to restart, %d to stop", svc[local.ServiceStart], svc[local.ServiceRestart], svc[local.ServiceStop]))
		}
		if n := prom[local.PromiseAdd] + prom[local.PromiseChange] + prom[local.PromiseRemove]; n > 0 {
			more = append(more, fmt.Sprintf("promises: %d to add, %d to change, %d to remove", prom[local.PromiseAdd], prom[local.PromiseChange], prom[local.PromiseRemove]))
		}
		if len(pl.Connection) > 0 {
			more = append(more, fmt.Sprintf("connection: %d to change", len(pl.Connection)))
		}
		if len(more) > 0 {
			if summary != "" {
				summary += "; "
			}
			summary += strings.Join(more, "; ")
		}
	}
	if summary != "" {
		fmt.Fprintf(w, "  plan: %s\n", summary)
	}
	if !planHasChanges(res) {
		fmt.Fprintln(w, "no changes: apply would do nothing")
	}
	return nil
}

// printActions prints the parts a report changes, with their options old
// → new.
func printActions(w io.Writer, r *partition.Report) {
	for _, act := range r.Actions {
		if act.Kind == partition.Unchanged {
			continue
		}
		sign := map[partition.ActionKind]string{partition.Install: "+", partition.Reinstall: "~", partition.Uninstall: "-"}[act.Kind]
		line := fmt.Sprintf("  %s %s (%s)", sign, act.Part, act.Recipe)
		if len(act.Changed) > 0 && len(act.Changes) == 0 {
			line += " changed: " + strings.Join(act.Changed, ", ")
		}
		if act.Reason != "" {
			line += " — " + act.Reason
		}
		fmt.Fprintln(w, line)
		printChanges(w, act.Changes)
	}
}

func printChanges(w io.Writer, cs []partition.ValueChange) {
	for _, c := range cs {
		fmt.Fprintf(w, "      %s\n", changeLine(c))
	}
}

// changeLine is "path: old → new", values as JSON, long ones shortened.
func changeLine(c partition.ValueChange) string {
	val := func(v json.RawMessage, unknown bool) string {
		switch {
		case unknown:
			return "(known after apply)"
		case v == nil:
			return "(none)"
		}
		s := string(v)
		if r := []rune(s); len(r) > 120 {
			s = string(r[:57]) + " … " + string(r[len(r)-57:])
		}
		return s
	}
	return fmt.Sprintf("%s: %s → %s", c.Path, val(c.Old, false), val(c.New, c.Unknown))
}

// jsonApply is apply --json.
type jsonApply struct {
	// State is the requested state: started, stopped or destroyed.
	State    string        `json:"state"`
	Software jsonSoftware  `json:"software"`
	Instance *jsonInstance `json:"instance,omitempty"`
}

type jsonInstance struct {
	Name            string         `json:"name"`
	Partition       string         `json:"partition"`
	SoftwareType    string         `json:"software_type"`
	Report          *jsonReport    `json:"report,omitempty"`
	DefaultsApplied []string       `json:"defaults_applied"`
	Services        jsonServices   `json:"services"`
	Promises        []jsonPromise  `json:"promises"`
	Parameters      map[string]any `json:"parameters"`
	Connection      map[string]any `json:"connection"`
}

func printApply(env *cliEnv, res *local.ApplyResult, asJSON bool, state string) error {
	if res == nil {
		return nil
	}
	if asJSON {
		doc := jsonApply{State: state, Software: softwareJSON(res)}
		if res.Record != nil {
			inst := &jsonInstance{Name: res.Record.Name, Partition: res.Record.Partition, SoftwareType: res.Record.Type,
				DefaultsApplied: []string{}, Services: servicesJSON(res.Changes), Promises: promisesJSON(res.Promises),
				Parameters: userData(res.Record.Params), Connection: connectionJSON(res.Record.Connection)}
			if res.Instance != nil {
				inst.Report = reportJSON(res.Instance.Report)
				inst.DefaultsApplied = nonNil(res.Instance.Defaults)
			}
			doc.Instance = inst
		}
		return env.writeJSON(doc)
	}
	w := env.stdout
	if r := res.Software.Report; r != nil && r.Counts[partition.Install]+r.Counts[partition.Reinstall] > 0 {
		for _, l := range grantsNote(res.Software) {
			fmt.Fprintln(w, l)
		}
	}
	if res.Software.Report != nil {
		fmt.Fprintf(w, "software: %s\n", res.Software.Report.Summary())
	} else {
		fmt.Fprintln(w, "software: already installed")
	}
	if res.Record == nil {
		if state == local.StateDestroyed {
			fmt.Fprintln(w, "instance destroyed")
		}
		return nil
	}
	fmt.Fprintf(w, "instance: %s\n", res.Instance.Report.Summary())
	if len(res.Instance.Defaults) > 0 {
		fmt.Fprintf(w, "defaults applied: %s\n", strings.Join(res.Instance.Defaults, ", "))
	}
	ch := res.Changes
	var parts []string
	for _, x := range []struct {
		n string
		l []string
	}{{"started", ch.Started}, {"restarted", ch.Restarted}, {"stopped", ch.Stopped}, {"unchanged", ch.Unchanged}} {
		if len(x.l) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", x.n, strings.Join(x.l, ", ")))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "services: %s\n", strings.Join(parts, "; "))
	}
	for _, p := range res.Promises {
		status := "ok"
		if !p.OK {
			status = "FAILED"
		}
		fmt.Fprintf(w, "promise %s: %s (%s)\n", p.Name, status, p.Message)
	}
	if conn := connectionJSON(res.Record.Connection); len(conn) > 0 {
		fmt.Fprintf(w, "connection parameters of %s (%s):\n", res.Record.Name, res.Record.Partition)
		printConnection(w, conn)
	}
	return nil
}

// printConnection prints connection parameters, one "  key = value" line
// each, sorted; values that are not strings as JSON.
func printConnection(w io.Writer, conn map[string]any) {
	keys := make([]string, 0, len(conn))
	for k := range conn {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := conn[k]
		if s, ok := v.(string); ok {
			fmt.Fprintf(w, "  %s = %s\n", k, s)
		} else {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "  %s = %s\n", k, b)
		}
	}
}

// grantsNote says what the software's modules are granted beyond the
// WebAssembly sandbox: the host commands they may run (python3 runs the
// release's Python code, e.g. converted slapos.recipe.build parts, with
// the software user's rights) and the hosts they may reach. plan and apply
// print it, so that nothing runs outside the sandbox unannounced.
func grantsNote(sw *partition.Software) []string {
	if sw == nil || sw.Profile == nil {
		return nil
	}
	mods, _ := sw.Profile.Modules(sw.Profile.Evaluator(map[string]cty.Value{}))
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		m := mods[n]
		if len(m.AllowExec) > 0 {
			line := fmt.Sprintf("module %s may run on the host, outside the WebAssembly sandbox: %s", n, strings.Join(m.AllowExec, ", "))
			for _, e := range m.AllowExec {
				if e == "python3" {
					line += " (python3 runs the release's Python code with the software user's rights)"
				}
			}
			out = append(out, line)
		}
		if len(m.AllowNet) > 0 {
			out = append(out, fmt.Sprintf("module %s may reach: %s", n, strings.Join(m.AllowNet, ", ")))
		}
	}
	return out
}

func planSummary(r *partition.Report) string {
	return fmt.Sprintf("%d to install, %d to reinstall, %d to uninstall, %d unchanged",
		r.Counts[partition.Install], r.Counts[partition.Reinstall], r.Counts[partition.Uninstall], r.Counts[partition.Unchanged])
}
