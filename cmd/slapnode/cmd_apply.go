package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

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
  --state STATE       started (default), stopped or destroyed
  --force             reinstall every part, even unchanged ones
  --recheck           compare every part of an already complete software release
                      with its state (a complete release is skipped otherwise)
  --release           refuse a profile that can change under a user's feet (see
                      'slapnode release check'): unpinned downloads, modules, extends,
                      versions or commands
  --wait DURATION     how long promises may take to pass after services start (default 30s)
  --download-cache DIR  look for downloads (url + md5sum or sha256) in DIR first: a
                      SlapOS download cache (files named by the md5 of their URL) or
                      a directory of files named by their URL's basename or checksum
  --offline           never use the network: every download must be in the node's
                      cache or the --download-cache directory (a missing one is named
                      with its URL and checksum)
  --json              print the result as JSON
  -v                  print details: every recipe's messages

Exit codes: 0 success, 1 failure, 2 a promise failed.

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

Shows what 'slapnode apply PROFILE' would do — parts to install, to reinstall
(with the options that changed), to uninstall, and unchanged — without doing it.
Takes the same flags as apply (--root, --name, --type, --param, --params, --json,
--download-cache, --offline). PROFILE may be a buildout software.cfg, converted
in memory.

Example:
  slapnode plan examples/helloweb/software.hcl --param greeting=Hi
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
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitPromise, fmt.Errorf("give one software profile, e.g. slapnode %s examples/helloweb/software.hcl", name))
	}
	params, strs, err := a.parameters(env)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	out := env.stdout
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
	if n.Rootless && !a.asJSON && !plan {
		if os.Geteuid() == 0 {
			fmt.Fprintf(env.stderr, "note: node %s is not formatted: partitions run as root, without users, cgroups or network of their own ('slapnode node format --root %s' sets them up)\n", n.Root, n.Root)
		} else {
			fmt.Fprintln(env.stderr, "note: not running as root: rootless mode (every partition runs as you; no cgroups, no network setup)")
		}
	}
	opts := local.ApplyOptions{
		Name: a.name, Type: a.typ, Params: params, Strings: strs, State: a.state,
		Force: a.force, Recheck: a.recheck, Release: a.release, Plan: plan, PromiseWait: a.wait,
	}
	if !plan {
		svc, err := nodeServices(ctx, n.Root)
		if err != nil {
			return err
		}
		defer svc.Close()
		opts.Services = svc
	}
	res, err := n.Apply(ctx, pos[0], opts)
	if plan {
		if err != nil {
			return err
		}
		return printPlan(env, res, a.asJSON)
	}
	if err != nil && !errors.Is(err, local.ErrPromise) {
		return err
	}
	printApply(env, res, a.asJSON, a.state)
	if err != nil {
		return withCode(exitPromise, err)
	}
	return nil
}

func printPlan(env *cliEnv, res *local.ApplyResult, asJSON bool) error {
	var reports []*partition.Report
	if res.Software.Report != nil {
		reports = append(reports, res.Software.Report)
	}
	if res.Instance != nil {
		reports = append(reports, res.Instance.Report)
	}
	if asJSON {
		return json.NewEncoder(env.stdout).Encode(map[string]any{"software": res.Software.Report, "instance": instanceReport(res)})
	}
	if res.Software.Report == nil {
		fmt.Fprintf(env.stdout, "software %s: installed and unchanged\n", res.Software.Info.Name)
	}
	for _, l := range grantsNote(res.Software) {
		fmt.Fprintln(env.stdout, l)
	}
	for i, r := range reports {
		what := "software " + res.Software.Info.Name
		if i == len(reports)-1 && res.Instance != nil {
			what = "instance in " + r.Target
		}
		fmt.Fprintf(env.stdout, "%s:\n", what)
		for _, act := range r.Actions {
			if act.Kind == partition.Unchanged {
				continue
			}
			sign := map[partition.ActionKind]string{partition.Install: "+", partition.Reinstall: "~", partition.Uninstall: "-"}[act.Kind]
			line := fmt.Sprintf("  %s %s (%s)", sign, act.Part, act.Recipe)
			if len(act.Changed) > 0 {
				line += " changed: " + strings.Join(act.Changed, ", ")
			}
			if act.Reason != "" {
				line += " — " + act.Reason
			}
			fmt.Fprintln(env.stdout, line)
		}
		fmt.Fprintf(env.stdout, "  plan: %s\n", planSummary(r))
	}
	return nil
}

func instanceReport(res *local.ApplyResult) *partition.Report {
	if res.Instance == nil {
		return nil
	}
	return res.Instance.Report
}

func printApply(env *cliEnv, res *local.ApplyResult, asJSON bool, state string) {
	if res == nil {
		return
	}
	if asJSON {
		out := map[string]any{"software": map[string]any{"url": res.Software.URL, "path": res.Software.Path, "report": res.Software.Report}}
		if res.Record != nil {
			out["instance"] = res.Record
			out["report"] = res.Instance.Report
			out["services"] = res.Changes
			out["promises"] = res.Promises
		}
		json.NewEncoder(env.stdout).Encode(out)
		return
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
		return
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
	if conn := partition.UnwrapConnection(res.Record.Connection); len(conn) > 0 {
		fmt.Fprintf(w, "connection parameters of %s (%s):\n", res.Record.Name, res.Record.Partition)
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
