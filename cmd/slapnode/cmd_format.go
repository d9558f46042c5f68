package main

import (
	"fmt"
	"os"

	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/format"
)

func init() {
	register(&command{
		name:    "node format",
		summary: "prepare the machine: partition users, directories, cgroups, bridge, taps, addresses",
		usage: `Usage: slapnode node format [--root DIR] [--config FILE] [--cfg slapos.cfg] [--dry-run] [--rootless] [--json]
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

With --cfg (default $SLAPOS_CONFIGURATION), it also reads what SlapOS's
'slapos node format' reads from slapos.cfg, over node.hcl's settings:
[slapos] computer_id, instance_root, software_root; [slapformat]
partition_amount, partition_base_name, user_base_name, software_user,
alter_user, alter_network, interface_name ("lo": loopback addresses;
another name: the bridge, and where the IPv6 prefix comes from),
ipv6_interface, ipv4_local_network, ipv6_prefixshift, create_tap,
tap_base_name. Give it on every format of that node, as 'slapos node
format' reads slapos.cfg every time (docs/node.md §2).

Flags:
  --root DIR      node root (default $SLAPNODE_ROOT, $XDG_STATE_HOME/slapnode or ~/.local/state/slapnode)
  --config FILE   node configuration (default ROOT/node.hcl, optional)
  --cfg FILE      SlapOS's slapos.cfg, read as 'slapos node format' reads it
  --dry-run       print what would change, change nothing
  --rootless      set up no users, cgroups or network even as root
  --json          print the result (changes, notes, partitions) as JSON
  --remove        undo format (see 'slapnode help node unformat'); with --purge

Examples:
  slapnode node format --dry-run
  sudo slapnode node format --root /srv/slapnode
  sudo slapnode node format --root /srv/slapnode --config /etc/slapnode/node.hcl
  sudo slapnode node format --root /srv/slapnode --cfg /etc/opt/slapos/slapos.cfg
`,
		run: runFormat,
	})
	register(&command{
		name:    "node unformat",
		summary: "remove what 'node format' created (users, cgroups, taps, bridge, node state)",
		usage: `Usage: slapnode node unformat [--root DIR] [--dry-run] [--purge] [--json]

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
  --json          print what was removed as JSON

Examples:
  sudo slapnode node unformat --root /srv/slapnode --dry-run
  sudo slapnode node unformat --root /srv/slapnode --purge
`,
		run: runUnformat,
	})
}

type formatFlags struct {
	root, config, cfg                    *string
	dry, rootless, asJSON, remove, purge bool
}

func parseFormatFlags(name string, args []string, unformat bool) (*formatFlags, error) {
	fs := newFlags(name)
	f := &formatFlags{root: rootFlag(fs)}
	fs.BoolVar(&f.dry, "dry-run", false, "print the plan only")
	fs.BoolVar(&f.purge, "purge", false, "unformat: delete partition directories")
	fs.BoolVar(&f.asJSON, "json", false, "JSON output")
	if !unformat {
		f.config = fs.String("config", "", "node configuration file")
		f.cfg = fs.String("cfg", os.Getenv(config.SlapOSConfigEnv), "SlapOS node configuration (slapos.cfg)")
		fs.BoolVar(&f.rootless, "rootless", false, "no users, cgroups or network")
		fs.BoolVar(&f.remove, "remove", false, "unformat")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help %s')", pos[0], name))
	}
	if f.purge && !unformat && !f.remove {
		return nil, withCode(exitUsage, fmt.Errorf("--purge only goes with --remove or 'node unformat'"))
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
	if *f.cfg != "" {
		sc, err := config.LoadSlapOS(*f.cfg)
		if err != nil {
			return withCode(exitUsage, err)
		}
		if cfg, err = sc.FormatConfig(cfg); err != nil {
			return withCode(exitUsage, err)
		}
		if !f.asJSON {
			env.note("%s: node %s, %d partitions in %s, releases in %s", sc.File, cfg.NodeID, cfg.PartitionCount, cfg.InstanceRoot, cfg.SoftwareRoot)
		}
	}
	done := env.step("formatting the node")
	res, err := format.Format(format.Options{Config: cfg, DryRun: f.dry, Rootless: f.rootless})
	done()
	if f.asJSON && res != nil {
		if e := env.writeJSON(formatJSON(res, f.dry)); e != nil {
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

// jsonFormat is node format --json and node unformat --json.
type jsonFormat struct {
	DryRun   bool     `json:"dry_run"`
	Rootless bool     `json:"rootless"`
	Changes  []string `json:"changes"`
	Notes    []string `json:"notes"`
	// Partitions as formatted (left out by unformat).
	Partitions []jsonFormatPartition `json:"partitions"`
	Network    *format.NetState      `json:"network,omitempty"`
}

type jsonFormatPartition struct {
	ID        string     `json:"id"`
	Path      string     `json:"path"`
	User      string     `json:"user"`
	UID       uint32     `json:"uid"`
	GID       uint32     `json:"gid"`
	IPv4      string     `json:"ipv4"`
	IPv6      string     `json:"ipv6"`
	IPv6Range string     `json:"ipv6_range,omitempty"`
	Cgroup    string     `json:"cgroup,omitempty"`
	Tap       string     `json:"tap,omitempty"`
	Limits    jsonLimits `json:"limits"`
}

// jsonLimits are a partition's cgroup limits; 0 is no limit.
type jsonLimits struct {
	CPUWeight       uint64 `json:"cpu_weight"`
	CPUQuotaPercent uint64 `json:"cpu_quota_percent"`
	MemoryMaxBytes  uint64 `json:"memory_max_bytes"`
	PidsMax         uint64 `json:"pids_max"`
}

func formatJSON(res *format.Result, dry bool) jsonFormat {
	out := jsonFormat{DryRun: dry, Rootless: res.Rootless, Changes: nonNil(res.Changes), Notes: nonNil(res.Notes), Partitions: []jsonFormatPartition{}}
	if res.State != nil {
		out.Network = res.State.Network
		for _, p := range res.State.List {
			l := p.Limits
			out.Partitions = append(out.Partitions, jsonFormatPartition{ID: p.ID, Path: p.Path, User: p.User, UID: p.Uid, GID: p.Gid,
				IPv4: p.IPv4, IPv6: p.IPv6, IPv6Range: p.IPv6Range, Cgroup: p.Cgroup, Tap: p.Tap,
				Limits: jsonLimits{l.CPUWeight, l.CPUQuotaPercent, l.MemoryMax, l.PidsMax}})
		}
	}
	return out
}

func printResult(env *cliEnv, res *format.Result, dry bool) {
	for _, n := range res.Notes {
		env.note("%s", n)
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
	if f.asJSON && res != nil {
		if e := env.writeJSON(formatJSON(res, f.dry)); e != nil {
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
