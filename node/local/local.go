// Package local is the embedded default node: one machine, no master. It
// keeps the instances a user asked for (name → partition, software, type,
// parameters, state) under the node root, allocates partitions, and drives
// the engine (package partition) and the supervisor for `slapnode apply`.
//
// Without root it runs rootless: every partition belongs to the current
// user, has no cgroup, and gets its own loopback IPv4 address (127.1.x.y,
// which Linux routes to lo without any setup) so that fixed ports do not
// collide between partitions.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/node/bincache"
	"github.com/slapnode/slapnode/node/format"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// Services is what the node needs from a supervisor: the in-process one, or
// the daemon's client.
type Services interface {
	Apply(ctx context.Context, partition string, specs []supervisor.ServiceSpec) (supervisor.Changes, error)
	// ApplyState records specs with a requested state; "stopped" starts
	// nothing (and stops what runs).
	ApplyState(ctx context.Context, partition string, specs []supervisor.ServiceSpec, requested string) (supervisor.Changes, error)
	StopPartition(ctx context.Context, partition string) error
	Remove(ctx context.Context, partition string) error
}

// Node is an opened node root.
type Node struct {
	Root     string
	ID       string
	Rootless bool
	Engine   *partition.Engine
	Out      io.Writer

	format    *format.State // nil on a node never formatted
	mu        sync.Mutex
	lastUsage time.Time // last usage report sent to a master
	block     int       // loopback block of an unformatted node, once known

	execMu sync.Mutex
	execs  map[string]*partExec // per partition, made on first use

	// checked is the release CheckProfiles loaded and checked, kept for
	// the apply that follows (ApplyOptions.Checked): that apply installs
	// what was checked, without parsing the profiles a second time.
	checked     *partition.Software
	checkedPath string
}

// InstanceRecord is what the node remembers of a requested instance.
type InstanceRecord struct {
	Name       string         `json:"name"`
	Partition  string         `json:"partition"`
	Software   string         `json:"software"`
	Type       string         `json:"software_type"`
	State      string         `json:"state"`
	Params     map[string]any `json:"parameters,omitempty"`
	Connection map[string]any `json:"connection,omitempty"`
	Updated    time.Time      `json:"updated"`
}

type registry struct {
	Instances map[string]*InstanceRecord `json:"instances"`
}

// Open prepares the node root (creating it on first use) and the WASM host.
func Open(ctx context.Context, root string, out io.Writer) (*Node, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"", "software", "instance", "cache", "var/run", "var/log"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("node root %s: %w", abs, err)
		}
	}
	id := "local"
	if h, err := os.Hostname(); err == nil && h != "" {
		id = h
	}
	// Compiled modules are shared by every node root of the machine; a
	// machine cache that is not safe to use (wasmhost.MachineCacheDir)
	// leaves this root with its own.
	cacheDir, err := wasmhost.MachineCacheDir()
	if err != nil {
		if out != nil {
			fmt.Fprintf(out, "note: %v; compiled modules are kept in this node root instead\n", err)
		}
		cacheDir = filepath.Join(abs, "cache", "wazero")
	}
	// The built-in modules compiled when slapnode was built or installed
	// (docs/wasm-abi.md §8): read where the machine cache lacks them.
	installDir, err := wasmhost.InstallCacheDir()
	note := func(msg string) {
		if out != nil {
			fmt.Fprintf(out, "note: %s\n", msg)
		}
	}
	if err != nil {
		note(err.Error())
	}
	host, err := wasmhost.New(ctx, wasmhost.Config{
		CacheDir:        cacheDir,
		InstallCacheDir: installDir,
		Note:            note,
		DownloadDir:     filepath.Join(abs, "cache", "download"),
	})
	if err != nil {
		return nil, err
	}
	n := &Node{Root: abs, ID: id, Rootless: true, Out: out,
		Engine: &partition.Engine{Root: abs, NodeID: id, Host: host, Out: out}}
	// The binary cache, when <root>/cache.hcl configures one.
	bc, err := bincache.LoadConfig(abs)
	if err != nil {
		host.Close(ctx)
		return nil, err
	}
	if bc != nil {
		c, err := bincache.New(*bc)
		if err != nil {
			host.Close(ctx)
			return nil, err
		}
		n.Engine.BinaryCache = c
	}
	// extends URLs (pinned with #sha256=) go through the download cache.
	profile.FetchURL = func(u string) (string, error) { return host.DownloadPinned(context.Background(), u) }
	st, err := format.LoadState(abs)
	switch {
	case errors.Is(err, format.ErrNotFormatted):
	case err != nil:
		host.Close(ctx)
		return nil, err
	default:
		n.format = st
		n.Rootless = st.Rootless
		// node.hcl's software_root, as formatted: releases go there.
		if st.SoftwareRoot != "" && filepath.Clean(st.SoftwareRoot) != filepath.Join(abs, "software") {
			n.Engine.SoftwareRoot = filepath.Clean(st.SoftwareRoot)
		}
	}
	return n, nil
}

// Close releases the WASM host.
func (n *Node) Close(ctx context.Context) error {
	n.execMu.Lock()
	for _, x := range n.execs {
		x.close()
	}
	n.execs = nil
	n.execMu.Unlock()
	return n.Engine.Host.Close(ctx)
}

// confiner is how the commands of partition p (the recipes' exec, promise
// commands) start: through format's CgroupExec, which clones them into the
// partition's v2 cgroup and sends them through the exec shim to join the
// v1 ones, enter the network namespace and drop to the partition's user
// before their first instruction (moving them after their start let what
// they forked at once escape the limits on v1 and hybrid machines). One
// per partition and node: it keeps the cgroup directory open.
func (n *Node) confiner(p format.PartitionInfo, ns string) partition.Confiner {
	n.execMu.Lock()
	defer n.execMu.Unlock()
	if x := n.execs[p.ID]; x != nil && x.p.Cgroup == p.Cgroup && x.ns == ns {
		return x
	}
	if n.execs == nil {
		n.execs = map[string]*partExec{}
	}
	x := &partExec{p: p, ns: ns}
	n.execs[p.ID] = x
	return x
}

// partExec makes the partition's CgroupExec on the first command, so that
// a node whose cgroup is missing still lists and removes instances, and
// says what is wrong when a command must start.
type partExec struct {
	p  format.PartitionInfo
	ns string
	mu sync.Mutex
	ce *format.CgroupExec
}

func (x *partExec) get() (*format.CgroupExec, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ce == nil {
		ce, err := x.p.CgroupExec()
		if err != nil {
			return nil, err // said at each command, retried at the next
		}
		ce.NetNS = x.ns
		x.ce = ce
	}
	return x.ce, nil
}

func (x *partExec) Hook(cmd *exec.Cmd) error {
	ce, err := x.get()
	if err != nil {
		return err
	}
	return ce.Hook(cmd)
}

func (x *partExec) Started(pid int) error {
	ce, err := x.get()
	if err != nil {
		return err
	}
	return ce.Started(pid)
}

func (x *partExec) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ce != nil {
		x.ce.Close()
		x.ce = nil
	}
}

func (n *Node) registryPath() string { return filepath.Join(n.Root, "instances.json") }

func (n *Node) load() (*registry, error) {
	r := &registry{Instances: map[string]*InstanceRecord{}}
	b, err := os.ReadFile(n.registryPath())
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", n.registryPath(), err)
	}
	if r.Instances == nil {
		r.Instances = map[string]*InstanceRecord{}
	}
	return r, nil
}

func (n *Node) save(r *registry) error {
	return atomicfile.WriteJSON(n.registryPath(), r, 0o600)
}

// Instances lists the requested instances, by name.
func (n *Node) Instances() ([]*InstanceRecord, error) {
	r, err := n.load()
	if err != nil {
		return nil, err
	}
	out := make([]*InstanceRecord, 0, len(r.Instances))
	for _, i := range r.Instances {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// Partition describes partition id in this node: as `slapnode node format`
// prepared it (its user, cgroups, addresses), or, on a node never
// formatted, rootless (the current user, a loopback address of its own).
func (n *Node) Partition(id string) (partition.Partition, error) {
	if n.format != nil {
		p, ok := n.format.Partition(id)
		if !ok {
			return partition.Partition{}, fmt.Errorf("partition %s does not exist on this node (it has %d; 'slapnode node format' with a larger partition count adds more)", id, len(n.format.Partitions()))
		}
		var ns string
		if n.format.Network != nil {
			ns = n.format.Network.Namespace
		}
		return partition.Partition{
			ID: p.ID, Path: p.Path, User: p.User, IPv4: p.IPv4, IPv6: p.IPv6,
			Credential: p.Credential(), Cgroup: p.Cgroup, ExtraCgroups: p.ExtraCgroups, Exec: n.confiner(p, ns), NetNS: ns, Tap: p.Tap,
			StateDir: partition.StateDir(n.Root, p.ID),
		}, nil
	}
	num, err := strconv.Atoi(strings.TrimPrefix(id, "slappart"))
	if err != nil || !strings.HasPrefix(id, "slappart") || num < 0 || num > 60000 {
		return partition.Partition{}, fmt.Errorf("invalid partition id %q (slappartN)", id)
	}
	u, _ := user.Current()
	name := "root"
	if u != nil {
		name = u.Username
	}
	// 127.0.0.0/8 reaches lo without any setup; the second byte is the
	// node root's block, which no other node root of the machine uses.
	b, err := n.loopback()
	if err != nil {
		return partition.Partition{}, err
	}
	return partition.Partition{
		ID: id, Path: filepath.Join(n.Root, "instance", id), User: name,
		IPv4: format.LoopbackAddr(b, num), IPv6: "::1", StateDir: partition.StateDir(n.Root, id),
	}, nil
}

// loopback returns the node root's loopback block (format.LoopbackBlock),
// chosen on first use: a root whose instances already listen on the block
// derived from its path keeps it.
func (n *Node) loopback() (int, error) {
	if n.block != 0 {
		return n.block, nil
	}
	was := 0
	if _, err := os.Stat(n.registryPath()); err == nil {
		was = format.DerivedLoopback(n.Root)
	}
	b, err := format.LoopbackBlock(n.Root, was, false)
	if err != nil {
		return 0, err
	}
	n.block = b
	return b, nil
}

// allocate returns the partition of an instance name, taking the first free
// one for a new name.
func allocate(r *registry, name string) string {
	if rec := r.Instances[name]; rec != nil {
		return rec.Partition
	}
	used := map[string]bool{}
	for _, rec := range r.Instances {
		used[rec.Partition] = true
	}
	for i := 0; ; i++ {
		id := "slappart" + strconv.Itoa(i)
		if !used[id] {
			return id
		}
	}
}

// InProcess adapts an in-process supervisor to Services, for a throwaway node
// (slapnode test) that needs no daemon outliving the command.
func InProcess(s *supervisor.Supervisor) Services { return inProcess{s} }

type inProcess struct{ s *supervisor.Supervisor }

func (v inProcess) Apply(_ context.Context, part string, specs []supervisor.ServiceSpec) (supervisor.Changes, error) {
	return v.s.Apply(part, specs)
}

func (v inProcess) ApplyState(_ context.Context, part string, specs []supervisor.ServiceSpec, requested string) (supervisor.Changes, error) {
	return v.s.ApplyState(part, specs, requested)
}

func (v inProcess) StopPartition(ctx context.Context, part string) error {
	return v.s.StopPartition(ctx, part)
}

func (v inProcess) Remove(ctx context.Context, part string) error { return v.s.Remove(ctx, part) }

// Status lets promises (check_service_running) ask the supervisor.
func (v inProcess) Status(context.Context) ([]supervisor.ServiceStatus, error) {
	return v.s.Status(), nil
}

// SoftwareRoot is where this node installs software releases: node.hcl's
// software_root on a formatted node, ROOT/software otherwise.
func (n *Node) SoftwareRoot() string {
	if n.Engine.SoftwareRoot != "" {
		return n.Engine.SoftwareRoot
	}
	return filepath.Join(n.Root, "software")
}

// SoftwareDir is where the node at root installs the release at url,
// without opening it (its formatted software_root, else ROOT/software).
func SoftwareDir(root, url string) string {
	if st, err := format.LoadState(root); err == nil && st.SoftwareRoot != "" {
		return filepath.Join(st.SoftwareRoot, partition.SoftwareName(url))
	}
	return partition.SoftwareDir(root, url)
}
