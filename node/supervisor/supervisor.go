// Package supervisor runs the services and scheduled jobs of a node's
// partitions: SlapOS's per-instance supervisord and watchdog, built in.
//
// A partition's desired services are given with Apply; the supervisor
// starts each one as the partition's user, in its own child of the
// partition's cgroup, in the partition directory, with a clean environment
// and stdin closed, logging to a file it rotates itself. Watched services
// are restarted with exponential backoff and marked FATAL (reported through
// Options.OnFatal, SlapOS's "bang") when they keep failing; run-once
// programs are not restarted; scheduled jobs run on a cron expression,
// never two at once. A stop sends SIGTERM to every process of the service,
// then SIGKILL after the grace period, and leaves none behind (see
// procs.go for how processes that escape are found).
//
// The desired state of every partition is persisted atomically under
// Options.StateDir, so that a new supervisor (after the daemon restarted,
// even after SIGKILL) brings every partition back with Restore.
package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/slapnode/slapnode/partition/service"
)

// Service states (see package service).
const (
	StateStarting  = service.StateStarting
	StateRunning   = service.StateRunning
	StateBackoff   = service.StateBackoff
	StateExited    = service.StateExited
	StateFatal     = service.StateFatal
	StateStopped   = service.StateStopped
	StateScheduled = service.StateScheduled
)

// Requested states of a partition.
const (
	PartitionStarted = "started"
	PartitionStopped = "stopped"
)

var (
	// ErrNotFound is returned for an unknown partition or service.
	ErrNotFound = errors.New("not found")
	// ErrClosed is returned after Shutdown.
	ErrClosed = errors.New("supervisor is shut down")
)

// Options configure a Supervisor. Zero values take the defaults given.
type Options struct {
	// StateDir holds the persisted desired state (one JSON file per
	// partition). "" keeps it in memory only, and Restore does nothing.
	StateDir string
	// OnFatal is called (from the service's goroutine) when a watched
	// service is marked FATAL: the hook the master integration uses to bang.
	OnFatal func(partition, service, reason string)
	// Logger receives the supervisor's own records (starts, exits with
	// their code or signal and what follows, kills); nil discards them.
	// What a service prints goes to its own log file, never here.
	Logger      *slog.Logger
	LogMaxBytes int64         // rotate a service log past this size; default 1 MiB
	LogKeep     int           // rotated files kept (log.1…); default 3
	MinBackoff  time.Duration // first restart delay; default 1s, doubled each failure
	MaxBackoff  time.Duration // default 1 min
	MaxRetries  int           // consecutive failed runs restarted before FATAL; default 10
	// StableAfter is how long a run must last to count as a success, which
	// resets the failure count; default 10s.
	StableAfter time.Duration
}

// ServiceStatus is one line of Status (see package service).
type ServiceStatus = service.Status

// Changes says what Apply did, by service name.
type Changes struct {
	Started, Restarted, Stopped, Unchanged []string
}

// Supervisor runs the services of every partition of a node.
type Supervisor struct {
	opts  Options
	id    string // prefix of the markers of this supervisor's processes
	after func(time.Duration) <-chan time.Time

	mu     sync.Mutex
	parts  map[string]*partition
	closed bool

	reaperStop chan struct{}
	reaperDone chan struct{}
}

// partition is guarded by op for whole operations (so that two Applies of
// one partition do not interleave) and by Supervisor.mu for its fields.
type partition struct {
	op        sync.Mutex
	name      string
	requested string
	stopped   map[string]bool // services stopped one by one while the partition is started
	specs     []ServiceSpec
	units     map[string]*unit
}

// New returns a supervisor. It makes the calling process a child subreaper
// (process-wide) so that service processes that escape their group stay
// its descendants.
func New(opts Options) (*Supervisor, error) {
	if opts.LogMaxBytes == 0 {
		opts.LogMaxBytes = 1 << 20
	}
	if opts.LogKeep == 0 {
		opts.LogKeep = 3
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 10
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{
		opts: opts, after: time.After, parts: map[string]*partition{},
		reaperStop: make(chan struct{}), reaperDone: make(chan struct{}),
	}
	if opts.StateDir != "" {
		abs, err := filepath.Abs(opts.StateDir)
		if err != nil {
			return nil, fmt.Errorf("supervisor state directory: %w", err)
		}
		s.opts.StateDir = abs
		if err := os.MkdirAll(filepath.Join(abs, "partitions"), 0o700); err != nil {
			return nil, fmt.Errorf("creating supervisor state directory: %w", err)
		}
		h := sha256.Sum256([]byte(abs))
		s.id = hex.EncodeToString(h[:6])
	} else {
		h := sha256.Sum256(fmt.Appendf(nil, "%d-%d", os.Getpid(), time.Now().UnixNano()))
		s.id = hex.EncodeToString(h[:6])
	}
	if err := enableSubreaper(); err != nil {
		s.opts.Logger.Warn("orphans of services go to init and are found by their marker only", "err", err)
	}
	go s.reaper()
	return s, nil
}

// reaper collects the orphans of services re-parented to this process (a
// subreaper) once they die: at each SIGCHLD, at most every 100 ms, and every
// 2 s in case a signal was coalesced away. An idle daemon stays idle: each
// tick first asks the kernel whether any child is dead at all (one
// waitid), and walks /proc only when one is.
func (s *Supervisor) reaper() {
	defer close(s.reaperDone)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)
	pidfds := true
	for {
		select {
		case <-s.reaperStop:
			return
		case <-t.C:
		case <-sigchld:
			select {
			case <-s.reaperStop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		if pidfds {
			if !zombieChild() {
				continue
			}
			if _, err := reapZombies(); err == nil {
				continue
			}
			pidfds = false
			s.opts.Logger.Warn("only the orphans of services seen alive are reaped", "err", errNoPidfd)
		}
		reapOrphans(s.id + "/")
	}
}

func (s *Supervisor) marker(partition, service string) string {
	return s.id + "/" + partition + "/" + service
}

// part returns the partition, creating it when create is set. s.mu held.
func (s *Supervisor) part(name string, create bool) (*partition, error) {
	if s.closed {
		return nil, ErrClosed
	}
	p := s.parts[name]
	if p == nil {
		if !create {
			return nil, fmt.Errorf("partition %q: %w (apply it first)", name, ErrNotFound)
		}
		p = &partition{name: name, requested: PartitionStarted, stopped: map[string]bool{}, units: map[string]*unit{}}
		s.parts[name] = p
	}
	return p, nil
}

// lockPart finds a partition and takes its operation lock.
func (s *Supervisor) lockPart(name string, create bool) (*partition, error) {
	s.mu.Lock()
	p, err := s.part(name, create)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p.op.Lock()
	s.mu.Lock()
	gone := s.parts[name] != p || s.closed
	s.mu.Unlock()
	if gone { // removed or shut down while we waited
		p.op.Unlock()
		if s.closed {
			return nil, ErrClosed
		}
		return s.lockPart(name, create)
	}
	return p, nil
}

// Apply converges a partition to specs: it starts new services, restarts
// those whose spec changed (and only those), stops those no longer listed,
// starts again the listed ones that are stopped or FATAL, and persists specs
// as the partition's desired state with requested state started.
func (s *Supervisor) Apply(partition string, specs []ServiceSpec) (Changes, error) {
	return s.ApplyState(partition, specs, PartitionStarted)
}

// ApplyState is Apply with the partition's requested state: with
// PartitionStopped the specs are recorded and every service is stopped
// (reported in Changes.Stopped if it was running), none is started — a
// stopped partition's services do not run even briefly.
func (s *Supervisor) ApplyState(partition string, specs []ServiceSpec, requested string) (Changes, error) {
	var ch Changes
	if requested != PartitionStarted && requested != PartitionStopped {
		return ch, fmt.Errorf("%w: requested state %q of partition %q: want %q or %q", ErrSpec, requested, partition, PartitionStarted, PartitionStopped)
	}
	if !validName(partition) {
		return ch, fmt.Errorf("%w: partition name %q: letters, digits and . _ - @ +", ErrSpec, partition)
	}
	seen := map[string]bool{}
	specs = append([]ServiceSpec(nil), specs...)
	for i := range specs {
		if err := specCheck(specs[i], partition); err != nil {
			return ch, err
		}
		specs[i].Partition = partition
		if seen[specs[i].Name] {
			return ch, fmt.Errorf("%w: partition %q declares service %q twice", ErrSpec, partition, specs[i].Name)
		}
		seen[specs[i].Name] = true
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	p, err := s.lockPart(partition, true)
	if err != nil {
		return ch, err
	}
	defer p.op.Unlock()
	if err := s.persist(p.name, requested, nil, specs); err != nil {
		return ch, err
	}
	s.mu.Lock()
	p.requested, p.stopped, p.specs = requested, map[string]bool{}, specs
	old := p.units
	s.mu.Unlock()

	next := map[string]*unit{}
	var removed []*unit
	for name, u := range old {
		if !seen[name] {
			removed = append(removed, u)
			ch.Stopped = append(ch.Stopped, name)
		}
	}
	_ = stopUnits(context.Background(), removed) // no deadline: returns when all are gone
	for _, sp := range specs {
		u := old[sp.Name]
		switch {
		case requested == PartitionStopped:
			if u != nil && u.active() {
				ch.Stopped = append(ch.Stopped, sp.Name)
			} else {
				ch.Unchanged = append(ch.Unchanged, sp.Name)
			}
			if u != nil {
				u.stop()
			}
			if u == nil || u.hash != specHash(sp) {
				u = s.newUnit(sp)
			}
		case u == nil:
			u = s.newUnit(sp)
			u.start()
			ch.Started = append(ch.Started, sp.Name)
		case u.hash != specHash(sp):
			u.stop()
			u = s.newUnit(sp)
			u.start()
			ch.Restarted = append(ch.Restarted, sp.Name)
		case u.needsStart():
			u.stop()
			u.start()
			ch.Started = append(ch.Started, sp.Name)
		default:
			ch.Unchanged = append(ch.Unchanged, sp.Name)
		}
		next[sp.Name] = u
	}
	s.mu.Lock()
	p.units = next
	s.mu.Unlock()
	sort.Strings(ch.Stopped)
	return ch, nil
}

// StopPartition stops every service of the partition and records the
// requested state stopped; the specs are kept, for Start or Apply.
func (s *Supervisor) StopPartition(ctx context.Context, partition string) error {
	p, err := s.lockPart(partition, false)
	if err != nil {
		return err
	}
	defer p.op.Unlock()
	if err := s.persist(p.name, PartitionStopped, nil, p.specs); err != nil {
		return err
	}
	s.mu.Lock()
	p.requested, p.stopped = PartitionStopped, map[string]bool{}
	s.mu.Unlock()
	return stopUnits(ctx, p.unitList(s, ""))
}

func stopUnits(ctx context.Context, units []*unit) error {
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Add(1)
		go func() { defer wg.Done(); u.stop() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping services: %w (the stop goes on in the background)", ctx.Err())
	}
}

// unitList returns the partition's units, or the one named service.
func (p *partition) unitList(s *Supervisor, service string) []*unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*unit
	for name, u := range p.units {
		if service == "" || name == service {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

func (p *partition) stoppedList() []string {
	var out []string
	for n := range p.stopped {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Start starts a stopped, exited or FATAL service, or with service "" every
// service of the partition (whose requested state becomes started).
func (s *Supervisor) Start(ctx context.Context, partition, service string) error {
	return s.startOrRestart(ctx, partition, service, false)
}

// Restart stops and starts a service, or every service of the partition.
func (s *Supervisor) Restart(ctx context.Context, partition, service string) error {
	return s.startOrRestart(ctx, partition, service, true)
}

func (s *Supervisor) startOrRestart(ctx context.Context, partition, service string, restart bool) error {
	p, err := s.lockPart(partition, false)
	if err != nil {
		return err
	}
	defer p.op.Unlock()
	units := p.unitList(s, service)
	if service != "" && len(units) == 0 {
		return fmt.Errorf("service %q of partition %q: %w", service, partition, ErrNotFound)
	}
	s.mu.Lock()
	requested, stopped := PartitionStarted, map[string]bool{}
	if service != "" {
		// Starting one service keeps the others as they were, also across a
		// daemon restart: in a stopped partition they stay stopped.
		prev := p.stopped
		if p.requested == PartitionStopped {
			prev = map[string]bool{}
			for n := range p.units {
				prev[n] = true
			}
		}
		for n := range prev {
			if n != service {
				stopped[n] = true
			}
		}
	}
	s.mu.Unlock()
	if err := s.persist(p.name, requested, keys(stopped), p.specs); err != nil {
		return err
	}
	s.mu.Lock()
	p.requested, p.stopped = requested, stopped
	s.mu.Unlock()
	if restart {
		if err := stopUnits(ctx, units); err != nil {
			return err
		}
	}
	for _, u := range units {
		if restart || u.needsStart() {
			u.stop()
			u.start()
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Stop stops one service (remembered across daemon restarts), or with
// service "" the whole partition, like StopPartition.
func (s *Supervisor) Stop(ctx context.Context, partition, service string) error {
	if service == "" {
		return s.StopPartition(ctx, partition)
	}
	p, err := s.lockPart(partition, false)
	if err != nil {
		return err
	}
	defer p.op.Unlock()
	units := p.unitList(s, service)
	if len(units) == 0 {
		return fmt.Errorf("service %q of partition %q: %w", service, partition, ErrNotFound)
	}
	s.mu.Lock()
	if p.requested == PartitionStarted {
		p.stopped[service] = true
	}
	req, st := p.requested, p.stoppedList()
	s.mu.Unlock()
	if err := s.persist(p.name, req, st, p.specs); err != nil {
		return err
	}
	return stopUnits(ctx, units)
}

// Remove stops every service of the partition and forgets it (the
// partition is destroyed): its persisted state is deleted.
func (s *Supervisor) Remove(ctx context.Context, partition string) error {
	p, err := s.lockPart(partition, false)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// Destroying twice, or a partition that never ran a service.
			return s.unpersist(partition)
		}
		return err
	}
	defer p.op.Unlock()
	if err := stopUnits(ctx, p.unitList(s, "")); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.parts, partition)
	s.mu.Unlock()
	return s.unpersist(partition)
}

// Status lists every service of every partition, sorted.
func (s *Supervisor) Status() []ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ServiceStatus
	for _, p := range s.parts {
		for _, u := range p.units {
			out = append(out, ServiceStatus{
				Partition: p.name, Name: u.spec.Name, State: u.state, Pid: u.pid,
				Since: u.since, Restarts: u.restarts, LastExit: u.lastExit,
				Watch: u.spec.Watch, Schedule: u.spec.Schedule, Next: u.next,
				Requested: p.requested, Log: specLogPath(u.spec),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// LogPaths returns the log file of a service, or of every service of the
// partition when service is "".
func (s *Supervisor) LogPaths(partition, service string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[partition]
	if p == nil {
		return nil, fmt.Errorf("partition %q: %w", partition, ErrNotFound)
	}
	var out []string
	for _, sp := range p.specs {
		if service == "" || sp.Name == service {
			out = append(out, specLogPath(sp))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("service %q of partition %q: %w", service, partition, ErrNotFound)
	}
	return out, nil
}

// Shutdown stops every service gracefully (in parallel, each with its own
// grace period) without changing the persisted desired state, so that the
// next daemon restores it. The supervisor cannot be used afterwards.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	s.mu.Unlock()
	// Wait for the operations in flight (an Apply may be starting units);
	// later ones see closed and fail with ErrClosed.
	var units []*unit
	for _, p := range parts {
		p.op.Lock()
		units = append(units, p.unitList(s, "")...)
		defer p.op.Unlock()
	}
	err := stopUnits(ctx, units)
	close(s.reaperStop)
	<-s.reaperDone
	return err
}

// Restore brings every persisted partition back to its recorded state, as
// after a daemon restart: processes a previous daemon left behind (found by
// cgroup and marker) are killed first, then the services of started
// partitions are started again.
func (s *Supervisor) Restore(ctx context.Context) error {
	if s.opts.StateDir == "" {
		return nil
	}
	// Restore what can be read even if one file is damaged.
	states, err := s.loadAll()
	errs := []error{err}
	s.killLeftovers(states)
	for _, st := range states {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := s.lockPart(st.Partition, true)
		if err != nil {
			return err
		}
		units := map[string]*unit{}
		stopped := map[string]bool{}
		for _, n := range st.Stopped {
			stopped[n] = true
		}
		for _, sp := range st.Specs {
			if err := specCheck(sp, st.Partition); err != nil {
				errs = append(errs, fmt.Errorf("restoring partition %s: %w", st.Partition, err))
				continue
			}
			u := s.newUnit(sp)
			if st.Requested == PartitionStarted && !stopped[sp.Name] {
				u.start()
			}
			units[sp.Name] = u
		}
		s.mu.Lock()
		p.requested, p.stopped, p.specs, p.units = st.Requested, stopped, st.Specs, units
		s.mu.Unlock()
		p.op.Unlock()
	}
	return errors.Join(errs...)
}

// killLeftovers kills what a previous daemon of this state directory left
// running: the members of the services' cgroups, and the processes that
// carry this supervisor's marker (one scan of /proc for all partitions).
func (s *Supervisor) killLeftovers(states []persisted) {
	var pids []int
	var cgs []*cgroupSet
	for _, st := range states {
		for _, sp := range st.Specs {
			if sp.Cgroup == "" {
				continue
			}
			if cg, err := newCgroupSet(&sp, specLeaf(sp)); err == nil {
				if !cg.kill() {
					pids = append(pids, cg.pids()...)
				}
				cgs = append(cgs, cg)
			}
		}
	}
	pids = append(pids, findProcs(0, false, nil, s.id+"/", true)...)
	if len(pids) > 0 {
		s.opts.Logger.Warn("killing processes left by a previous daemon", "count", len(pids), "pids", pids)
		signalAll(pids, syscall.SIGKILL)
	}
	// Remove the emptied cgroups of services that will not start (those
	// that do reuse theirs); a dying process keeps one busy for a moment.
	end := time.Now().Add(5 * time.Second)
	for _, cg := range cgs {
		for len(cg.pids()) > 0 && time.Now().Before(end) {
			time.Sleep(20 * time.Millisecond)
		}
		cg.remove()
	}
}

// leaf is the name of the service's own cgroup directory.
func specLeaf(sp ServiceSpec) string {
	if sp.Schedule != "" {
		return sp.Name + ".job"
	}
	return sp.Name + ".service"
}
