package format

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nsexec"
	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/format/cgroup"
	"github.com/slapnode/slapnode/node/supervisor"
)

// StateFile is the node state's file name in the node root.
const StateFile = "node-state.json"

// stateVersion changes when the file's meaning does.
const stateVersion = 1

// ErrNotFormatted is returned by LoadState for a node root that format
// never ran on: the node then runs rootless with computed partitions.
var ErrNotFormatted = errors.New("node not formatted (run 'slapnode node format')")

// PartitionInfo is one formatted partition: what the node gives the
// partition's instance, services and commands.
type PartitionInfo struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	// User owns the partition; Uid, Gid and Groups are what its processes
	// run as (in rootless mode: the user who ran format).
	User   string   `json:"user"`
	Uid    uint32   `json:"uid"`
	Gid    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	IPv4   string   `json:"ipv4"`
	IPv6   string   `json:"ipv6"`
	// IPv6Range is routed to the machine for this partition ("" when the
	// network is not set up).
	IPv6Range string `json:"ipv6_range,omitempty"`
	// Cgroup is the partition's main cgroup directory (cgroup v2 whenever
	// the machine has a v2 hierarchy, else one v1 controller directory);
	// ExtraCgroups are the v1 controller directories holding the other
	// limits. "" without cgroups.
	Cgroup       string   `json:"cgroup,omitempty"`
	ExtraCgroups []string `json:"extra_cgroups,omitempty"`
	// Tap is the partition's tap device on the node bridge, owned by its
	// user; TapIPv6Range and TapIPv6Gateway are for what runs behind it.
	Tap            string        `json:"tap,omitempty"`
	TapIPv6Range   string        `json:"tap_ipv6_range,omitempty"`
	TapIPv6Gateway string        `json:"tap_ipv6_gateway,omitempty"`
	Limits         config.Limits `json:"limits"`
}

// Account is a user that format created or found.
type Account struct {
	Name    string `json:"name"`
	Uid     uint32 `json:"uid"`
	Gid     uint32 `json:"gid"`
	Created bool   `json:"created,omitempty"` // format created it, so unformat removes it
}

// NetState is the network configuration the addresses were computed from.
type NetState struct {
	Namespace       string `json:"namespace,omitempty"`
	Bridge          string `json:"bridge"`
	IPv6Prefix      string `json:"ipv6_prefix"`
	IPv6PrefixShift int    `json:"ipv6_prefix_shift"`
	IPv4Network     string `json:"ipv4_local_network"`
	Taps            bool   `json:"taps"`
}

// State is what format set up, persisted in <root>/node-state.json and
// reused by the next format, by unformat and by the node.
type State struct {
	Version      int    `json:"version"`
	NodeID       string `json:"node_id"`
	Root         string `json:"root"`
	InstanceRoot string `json:"instance_root"`
	SoftwareRoot string `json:"software_root"`
	// Rootless: no users, cgroups or network were set up.
	Rootless      bool      `json:"rootless"`
	PartitionBase string    `json:"partition_base_name"`
	SoftwareUser  *Account  `json:"software_user,omitempty"`
	Users         []Account `json:"users,omitempty"`
	// CgroupParent is relative to each hierarchy's root; CgroupDirs are
	// its directories, removed by unformat once empty.
	CgroupParent string          `json:"cgroup_parent,omitempty"`
	CgroupDirs   []string        `json:"cgroup_dirs,omitempty"`
	Network      *NetState       `json:"network,omitempty"`
	List         []PartitionInfo `json:"partitions"`
}

// LoadState reads the node state of root; ErrNotFormatted when there is
// none.
func LoadState(root string) (*State, error) {
	p := filepath.Join(root, StateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFormatted
	}
	if err != nil {
		return nil, fmt.Errorf("reading node state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("node state %s is damaged (%w): run 'slapnode node format' to rebuild it from the machine", p, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("node state %s has version %d, this slapnode reads version %d", p, s.Version, stateVersion)
	}
	return &s, nil
}

// save writes the state atomically; it reports whether the content
// changed (an unchanged file is not rewritten).
func (s *State) save() (bool, error) {
	p := filepath.Join(s.Root, StateFile)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return false, fmt.Errorf("encoding node state: %w", err)
	}
	b = append(b, '\n')
	if old, err := os.ReadFile(p); err == nil && string(old) == string(b) {
		return false, nil
	}
	// 0644: the node state holds no secret, and status tools run by other
	// users may read it.
	if err := atomicfile.Write(p, b, 0o644); err != nil {
		return false, fmt.Errorf("saving node state: %w", err)
	}
	return true, nil
}

// Partition returns partition id.
func (s *State) Partition(id string) (PartitionInfo, bool) {
	for _, p := range s.List {
		if p.ID == id {
			return p, true
		}
	}
	return PartitionInfo{}, false
}

// Partitions lists the partitions in index order.
func (s *State) Partitions() []PartitionInfo { return append([]PartitionInfo(nil), s.List...) }

// Credential is the identity the partition's processes take, as os/exec
// wants it; nil when it is the caller's own (rootless), since switching to
// oneself needs no privilege and a nil credential keeps it that way.
func (p PartitionInfo) Credential() *syscall.Credential {
	if int(p.Uid) == os.Geteuid() && int(p.Gid) == os.Getegid() {
		return nil
	}
	return &syscall.Credential{Uid: p.Uid, Gid: p.Gid, Groups: append([]uint32(nil), p.Groups...)}
}

// ServiceCredential is Credential for supervisor.ServiceSpec.
func (p PartitionInfo) ServiceCredential() *supervisor.Credential {
	c := p.Credential()
	if c == nil {
		return nil
	}
	return &supervisor.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
}

// Join moves a started process into the partition's cgroups (every one:
// main and extra), for callers that only have a pid. A child the process
// forked before the move stays outside (cgroup v1 has no way to start a
// process inside a cgroup): start processes with CgroupExec instead.
func (p PartitionInfo) Join(pid int) error {
	if p.Cgroup == "" {
		return nil
	}
	return cgroup.Join(pid, append([]string{p.Cgroup}, p.ExtraCgroups...)...)
}

// CgroupExec starts commands inside a partition's cgroups, as its user,
// so that nothing they run is ever outside them. On cgroup v2 (the main
// cgroup) Hook makes the kernel create the process directly in the cgroup
// (clone3 with CLONE_INTO_CGROUP, through exec.Cmd's SysProcAttr.UseCgroupFD);
// the cgroups it cannot be cloned into (every one on cgroup v1, the v1
// controllers of a hybrid machine) are joined by the exec shim
// (nsexec.ThroughShim), which moves itself into them and drops to the
// user before it executes the command. Use one CgroupExec per session:
// Hook for wasmhost.SessionConfig.ExecHook; Close at the end of the session.
type CgroupExec struct {
	// NetNS, when set, is the network namespace the commands run in (the
	// partition's, on a node formatted with network.namespace): the shim
	// enters it before dropping to the user.
	NetNS string

	fd    *os.File // the open v2 directory, nil on v1 or without cgroup
	join  []string // directories the shim joins
	creds *syscall.Credential
}

// CgroupExec prepares starting commands in p's cgroups as p's user.
func (p PartitionInfo) CgroupExec() (*CgroupExec, error) {
	ce := &CgroupExec{creds: p.Credential()}
	if p.Cgroup == "" {
		return ce, nil
	}
	if cgroup.IsV2(p.Cgroup) {
		f, err := os.Open(p.Cgroup)
		if err != nil {
			return nil, fmt.Errorf("opening cgroup %s of partition %s (run 'slapnode node format' again): %w", p.Cgroup, p.ID, err)
		}
		ce.fd = f
		ce.join = p.ExtraCgroups
	} else {
		ce.join = append([]string{p.Cgroup}, p.ExtraCgroups...)
	}
	return ce, nil
}

// Hook sets cmd to start in the partition's cgroups and as its user. The
// command's working directory is entered as the user. A command the shim
// cannot execute exits with nsexec.ShimExitCode, the reason on its stderr.
func (ce *CgroupExec) Hook(cmd *exec.Cmd) error {
	if ce.fd == nil && ce.creds == nil && len(ce.join) == 0 && ce.NetNS == "" {
		return nil
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if ce.fd != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(ce.fd.Fd())
	}
	if ce.creds != nil && cmd.SysProcAttr.Credential == nil {
		c := *ce.creds
		cmd.SysProcAttr.Credential = &c
	}
	if ce.shim() {
		if _, err := nsexec.ThroughShim(cmd, nsexec.Confine{Cgroups: ce.join, NetNS: ce.NetNS}, false); err != nil {
			return err
		}
	}
	return nil
}

// Started waits until a process started after Hook runs its command (the
// shim placed it in every cgroup first), for wasmhost.SessionConfig's
// ExecStarted: once it returns, the process is where it belongs.
func (ce *CgroupExec) Started(pid int) error {
	if ce.shim() {
		nsexec.WaitExec(pid)
	}
	return nil
}

// shim reports whether commands start through the exec shim: to join
// cgroups they cannot be cloned into, or to enter a network namespace.
func (ce *CgroupExec) shim() bool { return len(ce.join) > 0 || ce.NetNS != "" }

// Close releases the cgroup directory.
func (ce *CgroupExec) Close() error {
	if ce.fd == nil {
		return nil
	}
	err := ce.fd.Close()
	ce.fd = nil
	return err
}
