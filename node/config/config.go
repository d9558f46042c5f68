// Package config reads the node configuration, node.hcl: what `slapnode
// node format` prepares on the machine (partitions, users, cgroups and their
// limits, bridge, taps, addresses). It only parses and validates; package
// node/format does the work. Every error names the file, line and column of
// the offending setting. docs/node.md documents each setting.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// ErrInvalid is wrapped by every error about a configuration that parses
// but makes no sense (a bad size, an unknown partition, a shrinking count…).
var ErrInvalid = errors.New("invalid node configuration")

// FileName is the name of the configuration file in the node root.
const FileName = "node.hcl"

// Defaults, chosen so that a configuration-less `slapnode node format` is
// useful and never touches the host's network (see docs/node.md).
const (
	DefaultPartitionCount  = 10
	DefaultPartitionBase   = "slappart"
	DefaultUserBase        = "slapuser"
	DefaultSoftwareUser    = "slapsoft"
	DefaultBridge          = "slapbr0"
	DefaultTapBase         = "slaptap"
	DefaultIPv4Network     = "10.0.0.0/16"
	DefaultIPv6PrefixShift = 16
	DefaultCgroupParent    = "slapnode"
	DefaultPidsMax         = 4096
	MaxPartitions          = 10000
)

// Limits are the cgroup limits of one partition. Zero means "no limit" (the
// kernel's default) for every field.
type Limits struct {
	// CPUWeight is the cgroup v2 cpu.weight (1–10000, 100 = a fair share);
	// on cgroup v1 it becomes cpu.shares = weight×1024/100.
	CPUWeight uint64
	// CPUQuotaPercent caps CPU time, in percent of one CPU (150 = one and
	// a half CPUs), like systemd's CPUQuota.
	CPUQuotaPercent uint64
	// MemoryMax is the memory limit in bytes (swap included on cgroup v1
	// when the kernel accounts it, none allowed on v2).
	MemoryMax uint64
	// PidsMax bounds the number of processes and threads.
	PidsMax uint64
}

// Merge returns l with the non-zero fields of o.
func (l Limits) Merge(o Limits) Limits {
	if o.CPUWeight != 0 {
		l.CPUWeight = o.CPUWeight
	}
	if o.CPUQuotaPercent != 0 {
		l.CPUQuotaPercent = o.CPUQuotaPercent
	}
	if o.MemoryMax != 0 {
		l.MemoryMax = o.MemoryMax
	}
	if o.PidsMax != 0 {
		l.PidsMax = o.PidsMax
	}
	return l
}

// Network is the network part of the configuration.
type Network struct {
	// Enabled lets format create the bridge, taps, addresses and routes.
	// Off by default: partitions then get loopback addresses and format
	// changes nothing in the network.
	Enabled bool
	// Namespace, when set, is the named network namespace (ip netns) that
	// format configures instead of its own.
	Namespace string
	Bridge    string
	// IPv6Interface is the interface whose global IPv6 prefix partitions
	// take addresses from (read, never changed); IPv6Prefix gives the prefix
	// directly. Without either, a private (ULA) /64 is derived from the
	// node id.
	IPv6Interface   string
	IPv6Prefix      netip.Prefix
	IPv6PrefixShift int
	IPv4Network     netip.Prefix
	CreateTap       bool
	TapBase         string
}

// Config is a parsed, validated node.hcl with defaults applied.
type Config struct {
	// File is the file it was read from, "" for the defaults.
	File string
	// Root is the node root; InstanceRoot and SoftwareRoot default to
	// <Root>/instance and <Root>/software.
	Root, InstanceRoot, SoftwareRoot string
	NodeID, MasterURL                string
	PartitionCount                   int
	PartitionBase, UserBase          string
	SoftwareUser                     string
	// Users lets format create the partition and software users; Cgroups
	// the partition cgroups. Both default to true, and are ignored in
	// rootless mode.
	Users   bool
	Cgroups bool
	// CgroupParent is the cgroup (relative to each hierarchy's root) under
	// which partition cgroups are made.
	CgroupParent string
	Network      Network
	// Limits apply to every partition; Overrides, by partition id, replace
	// some of them for one partition.
	Limits    Limits
	Overrides map[string]Limits
	// Daemon configures the node daemon (slapnode node run, and the one
	// apply starts): its metrics and its logs.
	Daemon Daemon
}

// Daemon is the daemon block of node.hcl. Flags of 'node run' win over it.
type Daemon struct {
	// MetricsAddress, when set (host:port), serves the daemon's metrics at
	// http://MetricsAddress/metrics.
	MetricsAddress string
	// LogFormat (auto, text, plain, journal, json) and LogLevel (debug,
	// info, warn, error); "" leaves the defaults (auto, info).
	LogFormat, LogLevel string
}

// PartitionID is the id of partition i.
func (c *Config) PartitionID(i int) string { return c.PartitionBase + strconv.Itoa(i) }

// LimitsOf returns the limits of partition id.
func (c *Config) LimitsOf(id string) Limits { return c.Limits.Merge(c.Overrides[id]) }

// The HCL shape of node.hcl, decoded by gohcl; the Body fields give the
// positions of attributes for errors found after decoding.
type fileHCL struct {
	NodeID       *string        `hcl:"node_id"`
	MasterURL    *string        `hcl:"master_url"`
	InstanceRoot *string        `hcl:"instance_root"`
	SoftwareRoot *string        `hcl:"software_root"`
	SoftwareUser *string        `hcl:"software_user"`
	Users        *bool          `hcl:"users"`
	Partitions   *partitionsHCL `hcl:"partitions,block"`
	Network      *networkHCL    `hcl:"network,block"`
	Cgroup       *cgroupHCL     `hcl:"cgroup,block"`
	Partition    []*overrideHCL `hcl:"partition,block"`
	Daemon       *daemonHCL     `hcl:"daemon,block"`
	Body         hcl.Body       `hcl:",body"`
}

type daemonHCL struct {
	MetricsAddress *string  `hcl:"metrics_address"`
	LogFormat      *string  `hcl:"log_format"`
	LogLevel       *string  `hcl:"log_level"`
	Body           hcl.Body `hcl:",body"`
}

type partitionsHCL struct {
	Count    *int     `hcl:"count"`
	BaseName *string  `hcl:"base_name"`
	UserBase *string  `hcl:"user_base_name"`
	Body     hcl.Body `hcl:",body"`
}

type networkHCL struct {
	Enabled         *bool    `hcl:"enabled"`
	Namespace       *string  `hcl:"namespace"`
	Bridge          *string  `hcl:"bridge"`
	IPv6Interface   *string  `hcl:"ipv6_interface"`
	IPv6Prefix      *string  `hcl:"ipv6_prefix"`
	IPv6PrefixShift *int     `hcl:"ipv6_prefix_shift"`
	IPv4Network     *string  `hcl:"ipv4_local_network"`
	CreateTap       *bool    `hcl:"create_tap"`
	TapBase         *string  `hcl:"tap_base_name"`
	Body            hcl.Body `hcl:",body"`
}

type limitsHCL struct {
	CPUWeight *int     `hcl:"cpu_weight"`
	CPUQuota  *string  `hcl:"cpu_quota"`
	MemoryMax *string  `hcl:"memory_max"`
	PidsMax   *int     `hcl:"pids_max"`
	Body      hcl.Body `hcl:",body"`
}

type cgroupHCL struct {
	Enabled   *bool    `hcl:"enabled"`
	Parent    *string  `hcl:"parent"`
	CPUWeight *int     `hcl:"cpu_weight"`
	CPUQuota  *string  `hcl:"cpu_quota"`
	MemoryMax *string  `hcl:"memory_max"`
	PidsMax   *int     `hcl:"pids_max"`
	Body      hcl.Body `hcl:",body"`
}

type overrideHCL struct {
	ID        string    `hcl:"id,label"`
	CPUWeight *int      `hcl:"cpu_weight"`
	CPUQuota  *string   `hcl:"cpu_quota"`
	MemoryMax *string   `hcl:"memory_max"`
	PidsMax   *int      `hcl:"pids_max"`
	Body      hcl.Body  `hcl:",body"`
	DefRange  hcl.Range `hcl:",def_range"`
}

// Default returns the configuration used when the node root has no
// node.hcl.
func Default(root string) *Config {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	id := "local"
	if h, err := os.Hostname(); err == nil && h != "" {
		id = h
	}
	return &Config{
		Root: abs, InstanceRoot: filepath.Join(abs, "instance"), SoftwareRoot: filepath.Join(abs, "software"),
		NodeID: id, PartitionCount: DefaultPartitionCount,
		PartitionBase: DefaultPartitionBase, UserBase: DefaultUserBase, SoftwareUser: DefaultSoftwareUser,
		Users: true, Cgroups: true, CgroupParent: DefaultCgroupParent,
		Network: Network{
			Bridge: DefaultBridge, IPv6PrefixShift: DefaultIPv6PrefixShift,
			IPv4Network: netip.MustParsePrefix(DefaultIPv4Network), CreateTap: true, TapBase: DefaultTapBase,
		},
		Limits:    Limits{PidsMax: DefaultPidsMax},
		Overrides: map[string]Limits{},
	}
}

// Load reads path (default <root>/node.hcl when path is ""). A missing
// default file gives Default(root); a missing explicit file is an error.
func Load(root, path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = filepath.Join(root, FileName)
	}
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return Default(root), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading node configuration: %w", err)
	}
	return Parse(root, path, src)
}

// Parse parses the content of a node.hcl read from filename.
func Parse(root, filename string, src []byte) (*Config, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, diags)
	}
	var raw fileHCL
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, diags)
	}
	c := Default(root)
	c.File = filename
	d := &decoder{}
	d.str(&c.NodeID, raw.NodeID, raw.Body, "node_id", nameRE)
	d.str(&c.MasterURL, raw.MasterURL, raw.Body, "master_url", nil)
	if raw.MasterURL != nil && *raw.MasterURL != "" && !strings.Contains(*raw.MasterURL, "://") {
		d.errorf(raw.Body, "master_url", "master_url must be a URL (https://… or http://…), not %q", *raw.MasterURL)
	}
	d.path(&c.InstanceRoot, raw.InstanceRoot, raw.Body, "instance_root", filename)
	d.path(&c.SoftwareRoot, raw.SoftwareRoot, raw.Body, "software_root", filename)
	d.str(&c.SoftwareUser, raw.SoftwareUser, raw.Body, "software_user", userRE)
	if raw.Users != nil {
		c.Users = *raw.Users
	}
	if p := raw.Partitions; p != nil {
		if p.Count != nil {
			if *p.Count < 0 || *p.Count > MaxPartitions {
				d.errorf(p.Body, "count", "count must be between 0 and %d, not %d", MaxPartitions, *p.Count)
			}
			c.PartitionCount = *p.Count
		}
		d.str(&c.PartitionBase, p.BaseName, p.Body, "base_name", nameRE)
		d.str(&c.UserBase, p.UserBase, p.Body, "user_base_name", userRE)
	}
	if n := raw.Network; n != nil {
		if n.Enabled != nil {
			c.Network.Enabled = *n.Enabled
		}
		d.str(&c.Network.Namespace, n.Namespace, n.Body, "namespace", nameRE)
		d.str(&c.Network.Bridge, n.Bridge, n.Body, "bridge", ifnameRE)
		d.str(&c.Network.IPv6Interface, n.IPv6Interface, n.Body, "ipv6_interface", ifnameRE)
		d.str(&c.Network.TapBase, n.TapBase, n.Body, "tap_base_name", ifnameRE)
		if n.CreateTap != nil {
			c.Network.CreateTap = *n.CreateTap
		}
		if n.IPv6Prefix != nil {
			p, err := netip.ParsePrefix(*n.IPv6Prefix)
			switch {
			case err != nil:
				d.errorf(n.Body, "ipv6_prefix", "ipv6_prefix must be an IPv6 network like 2001:db8::/64: %v", err)
			case !p.Addr().Is6() || p.Addr().Is4In6():
				d.errorf(n.Body, "ipv6_prefix", "ipv6_prefix %s is not an IPv6 network", p)
			case p.Bits() > 120:
				d.errorf(n.Body, "ipv6_prefix", "ipv6_prefix %s is too small to hold partition addresses (at most /120)", p)
			default:
				c.Network.IPv6Prefix = p.Masked()
			}
			if n.IPv6Interface != nil {
				d.errorf(n.Body, "ipv6_prefix", "give ipv6_prefix or ipv6_interface, not both")
			}
		}
		if n.IPv6PrefixShift != nil {
			if *n.IPv6PrefixShift < 2 || *n.IPv6PrefixShift > 32 {
				d.errorf(n.Body, "ipv6_prefix_shift", "ipv6_prefix_shift must be between 2 and 32, not %d", *n.IPv6PrefixShift)
			}
			c.Network.IPv6PrefixShift = *n.IPv6PrefixShift
		}
		if n.IPv4Network != nil {
			p, err := netip.ParsePrefix(*n.IPv4Network)
			switch {
			case err != nil:
				d.errorf(n.Body, "ipv4_local_network", "ipv4_local_network must be an IPv4 network like 10.0.0.0/16: %v", err)
			case !p.Addr().Is4():
				d.errorf(n.Body, "ipv4_local_network", "ipv4_local_network %s is not an IPv4 network", p)
			case p.Bits() > 30:
				d.errorf(n.Body, "ipv4_local_network", "ipv4_local_network %s is too small (at most /30)", p)
			default:
				c.Network.IPv4Network = p.Masked()
			}
		}
	}
	if g := raw.Cgroup; g != nil {
		if g.Enabled != nil {
			c.Cgroups = *g.Enabled
		}
		d.str(&c.CgroupParent, g.Parent, g.Body, "parent", cgroupPathRE)
		c.Limits = c.Limits.Merge(d.limits(limitsHCL{g.CPUWeight, g.CPUQuota, g.MemoryMax, g.PidsMax, g.Body}))
	}
	// Overrides are checked against the final partition count, whatever
	// the order of the blocks in the file.
	for _, o := range raw.Partition {
		num, ok := strings.CutPrefix(o.ID, c.PartitionBase)
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || strconv.Itoa(i) != num {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown partition",
				Detail:  fmt.Sprintf("partition %q is not a partition id (%sN)", o.ID, c.PartitionBase),
				Subject: o.DefRange.Ptr()})
			continue
		}
		if i >= c.PartitionCount {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown partition",
				Detail:  fmt.Sprintf("partition %q is beyond partitions.count = %d (ids go from %s0 to %s%d)", o.ID, c.PartitionCount, c.PartitionBase, c.PartitionBase, c.PartitionCount-1),
				Subject: o.DefRange.Ptr()})
			continue
		}
		if _, dup := c.Overrides[o.ID]; dup {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate partition block",
				Detail: fmt.Sprintf("partition %q is configured twice", o.ID), Subject: o.DefRange.Ptr()})
			continue
		}
		c.Overrides[o.ID] = d.limits(limitsHCL{o.CPUWeight, o.CPUQuota, o.MemoryMax, o.PidsMax, o.Body})
	}
	if dm := raw.Daemon; dm != nil {
		if a := dm.MetricsAddress; a != nil {
			if _, port, err := net.SplitHostPort(*a); err != nil || port == "" {
				d.errorf(dm.Body, "metrics_address", "metrics_address must be host:port, such as 127.0.0.1:9780 (or [::1]:9780), not %q", *a)
			} else {
				c.Daemon.MetricsAddress = *a
			}
		}
		d.oneOf(&c.Daemon.LogFormat, dm.LogFormat, dm.Body, "log_format", "auto", "text", "plain", "journal", "json")
		d.oneOf(&c.Daemon.LogLevel, dm.LogLevel, dm.Body, "log_level", "debug", "info", "warn", "error")
	}
	if raw.Network != nil && c.Network.Enabled && c.Network.CreateTap {
		if l := len(c.Network.TapBase) + len(strconv.Itoa(max(c.PartitionCount-1, 0))); l > 15 {
			d.errorf(raw.Network.Body, "tap_base_name", "tap names %s0…%s%d are longer than the kernel's 15 characters; shorten network.tap_base_name", c.Network.TapBase, c.Network.TapBase, c.PartitionCount-1)
		}
	}
	if d.diags.HasErrors() {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, d.diags)
	}
	return c, nil
}

var (
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	userRE       = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,25}$`)
	ifnameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`)
	cgroupPathRE = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)
)

type decoder struct{ diags hcl.Diagnostics }

func (d *decoder) add(diag *hcl.Diagnostic) { d.diags = append(d.diags, diag) }

// rangeOf returns the position of attribute name in body (the block's
// opening when the attribute is absent or name is "").
func rangeOf(body hcl.Body, name string) *hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			return a.Expr.Range().Ptr()
		}
		return sb.SrcRange.Ptr()
	}
	return body.MissingItemRange().Ptr()
}

func (d *decoder) errorf(body hcl.Body, attr, format string, args ...any) {
	d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid setting",
		Detail: fmt.Sprintf(format, args...), Subject: rangeOf(body, attr)})
}

func (d *decoder) str(dst *string, v *string, body hcl.Body, attr string, re *regexp.Regexp) {
	if v == nil {
		return
	}
	if re != nil && !re.MatchString(*v) {
		d.errorf(body, attr, "%s = %q is not valid (expected %s)", attr, *v, re)
		return
	}
	*dst = *v
}

// oneOf sets dst to v, one of the values allowed.
func (d *decoder) oneOf(dst *string, v *string, body hcl.Body, attr string, allowed ...string) {
	if v == nil {
		return
	}
	if !slices.Contains(allowed, *v) {
		d.errorf(body, attr, "%s = %q: give one of %s", attr, *v, strings.Join(allowed, ", "))
		return
	}
	*dst = *v
}

// path sets dst to v, made absolute relative to the configuration file's
// directory.
func (d *decoder) path(dst *string, v *string, body hcl.Body, attr, filename string) {
	if v == nil {
		return
	}
	if *v == "" {
		d.errorf(body, attr, "%s is empty", attr)
		return
	}
	p := *v
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(filename), p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		d.errorf(body, attr, "%s: %v", attr, err)
		return
	}
	*dst = abs
}

func (d *decoder) limits(l limitsHCL) Limits {
	var out Limits
	if l.CPUWeight != nil {
		if *l.CPUWeight < 1 || *l.CPUWeight > 10000 {
			d.errorf(l.Body, "cpu_weight", "cpu_weight must be between 1 and 10000 (100 is the default share), not %d", *l.CPUWeight)
		} else {
			out.CPUWeight = uint64(*l.CPUWeight)
		}
	}
	if l.CPUQuota != nil {
		pct, err := ParsePercent(*l.CPUQuota)
		if err != nil {
			d.errorf(l.Body, "cpu_quota", "cpu_quota: %v", err)
		} else {
			out.CPUQuotaPercent = pct
		}
	}
	if l.MemoryMax != nil {
		n, err := ParseSize(*l.MemoryMax)
		if err != nil {
			d.errorf(l.Body, "memory_max", "memory_max: %v", err)
		} else {
			out.MemoryMax = n
		}
	}
	if l.PidsMax != nil {
		if *l.PidsMax < 1 {
			d.errorf(l.Body, "pids_max", "pids_max must be at least 1, not %d", *l.PidsMax)
		} else {
			out.PidsMax = uint64(*l.PidsMax)
		}
	}
	return out
}

// ParseSize parses a memory size: "512MiB", "2GiB" (binary), "1GB" or
// "1G" (decimal), or a number of bytes. At least 1 MiB, because a smaller
// limit only makes every process of the partition fail.
func ParseSize(s string) (uint64, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (like 512MiB or 2GiB): %w", s, err)
	}
	if n < 1<<20 {
		return 0, fmt.Errorf("%q is below 1MiB", s)
	}
	return n, nil
}

// ParsePercent parses a CPU quota "150%" (percent of one CPU).
func ParsePercent(s string) (uint64, error) {
	v, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil || math.IsNaN(f) || f < 1 || f > 100000 {
		return 0, fmt.Errorf("%q is not a percentage of one CPU between 1%% and 100000%% (like \"50%%\" or \"200%%\")", s)
	}
	return uint64(math.Round(f)), nil
}

// Describe lists the effective settings, one "key = value" a line, for
// `slapnode node format --dry-run`.
func (c *Config) Describe() []string {
	src := c.File
	if src == "" {
		src = "(defaults: no " + filepath.Join(c.Root, FileName) + ")"
	}
	lines := []string{
		"configuration = " + src,
		"node_id = " + c.NodeID,
		"instance_root = " + c.InstanceRoot,
		"software_root = " + c.SoftwareRoot,
		fmt.Sprintf("partitions = %d × %sN (users %sN)", c.PartitionCount, c.PartitionBase, c.UserBase),
		fmt.Sprintf("users = %t, cgroup = %t, network = %t", c.Users, c.Cgroups, c.Network.Enabled),
		"limits = " + c.Limits.String(),
	}
	ids := make([]string, 0, len(c.Overrides))
	for id := range c.Overrides {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		lines = append(lines, "limits of "+id+" = "+c.LimitsOf(id).String())
	}
	if dm := c.Daemon; dm != (Daemon{}) {
		lines = append(lines, fmt.Sprintf("daemon: metrics_address = %q, log_format = %q, log_level = %q", dm.MetricsAddress, dm.LogFormat, dm.LogLevel))
	}
	return lines
}

// String shows limits the way node.hcl writes them.
func (l Limits) String() string {
	var parts []string
	if l.CPUWeight != 0 {
		parts = append(parts, fmt.Sprintf("cpu_weight=%d", l.CPUWeight))
	}
	if l.CPUQuotaPercent != 0 {
		parts = append(parts, fmt.Sprintf("cpu_quota=%d%%", l.CPUQuotaPercent))
	}
	if l.MemoryMax != 0 {
		parts = append(parts, "memory_max="+humanize.IBytes(l.MemoryMax))
	}
	if l.PidsMax != 0 {
		parts = append(parts, fmt.Sprintf("pids_max=%d", l.PidsMax))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
