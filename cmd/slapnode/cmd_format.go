package main

import (
	"encoding/json"
	"fmt"

	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/format"
)

func init() {
	register(&command{
		name:    "node format",
		summary: "prepare the machine: partition users, directories, cgroups, bridge, taps, addresses",
		usage: `Usage: slapnode node format [--root DIR] [--config FILE] [--dry-run] [--rootless] [--json]
       slapnode node format --remove [--purge]   (same as 'slapnode node unformat')

Prepares the machine for the node's partitions, as SlapOS's slapformat does,
following the node configuration (default ROOT/node.hcl; without one, 10
partitions and no network change — see docs/node.md):

  - the instance and software roots (0755), the software user (slapsoft);
  - per partition slappartN: user slapuserN (own group, the software user's
    group as extra group, password locked, home = the partition directory),
    the directory ROOT/instance/slappartN (0750, owned by that user), one
    cgroup with its cpu, memory and pids limits (cgroup v1 and v2);
  - when network { enabled = true }: the bridge, one tap per partition owned
    by its user, IPv6 addresses the SlapOS way and IPv4 /32 addresses from
    the local range, the partitions' routed IPv6 ranges (all with netlink).

It changes only what differs: run it again and it says "nothing to do". The
partition count can grow, never shrink. What it set up is saved in
ROOT/node-state.json, which the node uses to run every partition's services
and commands as its user, in its cgroup. Without root it runs rootless: no
users, cgroups or network (said once), everything else works.

Flags:
  --root DIR      node root (default $SLAPNODE_ROOT, $XDG_STATE_HOME/slapnode or ~/.local/state/slapnode)
  --config FILE   node configuration (default ROOT/node.hcl, optional)
  --dry-run       print what would change, change nothing
  --rootless      set up no users, cgroups or network even as root
  --json          print the result (changes, notes, node state) as JSON
  --remove        undo format (see 'slapnode help node unformat'); with --purge

Examples:
  slapnode node format --dry-run
  sudo slapnode node format --root /srv/slapnode
  sudo slapnode node format --root /srv/slapnode --config /etc/slapnode/node.hcl
`,
		run: runFormat,
	})
	register(&command{
		name:    "node unformat",
		summary: "remove what 'node format' created (users, cgroups, taps, bridge, node state)",
		usage: `Usage: slapnode node unformat [--root DIR] [--dry-run] [--purge]

Removes what 'slapnode node format' set up, from the node state: taps,
bridge and routes, the partition cgroups, the users and groups format
created (never the ones it found), and ROOT/node-state.json. Partition
directories are kept unless --purge is given. It refuses while a
partition still has processes: stop the node first ('slapnode node stop').
It reads only the node state, not node.hcl. For tests and for
decommissioning a machine.

Flags:
  --root DIR      node root
  --dry-run       print what would be removed, remove nothing
  --purge         also delete the partition directories and their content

Examples:
  sudo slapnode node unformat --root /srv/slapnode --dry-run
  sudo slapnode node unformat --root /srv/slapnode --purge
`,
		run: runUnformat,
	})
}

type formatFlags struct {
	root, config                         *string
	dry, rootless, asJSON, remove, purge bool
}

func parseFormatFlags(name string, args []string, unformat bool) (*formatFlags, error) {
	fs := newFlags(name)
	f := &formatFlags{root: rootFlag(fs)}
	fs.BoolVar(&f.dry, "dry-run", false, "print the plan only")
	fs.BoolVar(&f.purge, "purge", false, "unformat: delete partition directories")
	if !unformat {
		f.config = fs.String("config", "", "node configuration file")
		fs.BoolVar(&f.rootless, "rootless", false, "no users, cgroups or network")
		fs.BoolVar(&f.asJSON, "json", false, "JSON output")
		fs.BoolVar(&f.remove, "remove", false, "unformat")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, withCode(exitPromise, fmt.Errorf("unexpected argument %q (see 'slapnode help %s')", pos[0], name))
	}
	if f.purge && !unformat && !f.remove {
		return nil, withCode(exitPromise, fmt.Errorf("--purge only goes with --remove or 'node unformat'"))
	}
	return f, nil
}

func runFormat(env *cliEnv, args []string) error {
	f, err := parseFormatFlags("node format", args, false)
	if err != nil {
		return err
	}
	if f.remove {
		return runUnformatWith(env, f)
	}
	cfg, err := config.Load(*f.root, *f.config)
	if err != nil {
		return err
	}
	res, err := format.Format(format.Options{Config: cfg, DryRun: f.dry, Rootless: f.rootless})
	if f.asJSON && res != nil {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if e := enc.Encode(map[string]any{"changes": res.Changes, "notes": res.Notes, "rootless": res.Rootless, "dry_run": f.dry, "state": res.State}); e != nil {
			return e
		}
		return err
	}
	if res != nil {
		printResult(env, res, f.dry)
	}
	if err != nil {
		return err
	}
	if f.dry && env.verbose {
		for _, l := range cfg.Describe() {
			fmt.Fprintln(env.stdout, "  "+l)
		}
	}
	if env.verbose && res.State != nil {
		for _, p := range res.State.List {
			fmt.Fprintln(env.stdout, "  "+p.Describe())
		}
	}
	fmt.Fprintln(env.stdout, res.Summary(f.dry))
	return nil
}

func printResult(env *cliEnv, res *format.Result, dry bool) {
	for _, n := range res.Notes {
		fmt.Fprintln(env.stderr, "note: "+n)
	}
	mark := "  + "
	if dry {
		mark = "  would: "
	}
	for _, c := range res.Changes {
		fmt.Fprintln(env.stdout, mark+c)
	}
}

func runUnformat(env *cliEnv, args []string) error {
	f, err := parseFormatFlags("node unformat", args, true)
	if err != nil {
		return err
	}
	return runUnformatWith(env, f)
}

func runUnformatWith(env *cliEnv, f *formatFlags) error {
	// Unformat works from the node state alone, so that a node.hcl edited
	// (or broken) since the format does not stand in the way.
	cfg := config.Default(*f.root)
	res, err := format.Unformat(format.Options{Config: cfg, DryRun: f.dry, Rootless: f.rootless, Purge: f.purge})
	if res != nil {
		printResult(env, res, f.dry)
	}
	if err != nil {
		return err
	}
	switch {
	case len(res.Changes) == 0:
		fmt.Fprintln(env.stdout, "nothing to remove")
	case f.dry:
		fmt.Fprintf(env.stdout, "%d removals planned (dry run: nothing changed)\n", len(res.Changes))
	default:
		fmt.Fprintf(env.stdout, "%d removals done; the node is unformatted\n", len(res.Changes))
	}
	return nil
}
