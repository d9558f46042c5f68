package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/slapnode/slapnode/internal/nsexec"
	"golang.org/x/sys/unix"
)

// unit is one service or job. Its loop goroutine owns the processes; the
// fields below the line are guarded by Supervisor.mu.
type unit struct {
	s      *Supervisor
	spec   ServiceSpec
	hash   string
	marker string

	state    string
	pid      int
	since    time.Time
	next     time.Time
	restarts int
	lastExit string
	cancel   chan struct{} // closed to ask the loop to stop; nil when no loop
	done     chan struct{} // closed when the loop has stopped everything
}

func (s *Supervisor) newUnit(sp ServiceSpec) *unit {
	return &unit{s: s, spec: sp, hash: specHash(sp), marker: s.marker(sp.Partition, sp.Name),
		state: StateStopped, since: time.Now()}
}

func (u *unit) set(state string, pid int, next time.Time) {
	u.s.mu.Lock()
	u.state, u.pid, u.next, u.since = state, pid, next, time.Now()
	u.s.mu.Unlock()
}

// needsStart reports whether a start request should (re)launch the unit:
// it has no loop, or its loop is only waiting to be stopped (FATAL).
// A run-once program that exited is started again only when asked
// explicitly or when its spec changes, so not here for EXITED.
func (u *unit) needsStart() bool {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	return u.cancel == nil || u.state == StateFatal || u.state == StateStopped
}

// active reports whether the unit has processes or may start some: a loop
// that is not only waiting to be stopped.
func (u *unit) active() bool {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	return u.cancel != nil && u.state != StateFatal && u.state != StateExited && u.state != StateStopped
}

func (u *unit) start() {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	if u.cancel != nil {
		return
	}
	u.cancel, u.done = make(chan struct{}), make(chan struct{})
	u.state, u.since, u.lastExit = StateStarting, time.Now(), ""
	go u.loop(u.cancel, u.done)
}

// stop asks the loop to stop and waits until every process is gone.
func (u *unit) stop() {
	u.s.mu.Lock()
	cancel, done := u.cancel, u.done
	u.cancel, u.done = nil, nil
	u.s.mu.Unlock()
	if cancel == nil {
		return
	}
	close(cancel)
	<-done
}

func (u *unit) fail(reason string, cancel <-chan struct{}) {
	u.s.mu.Lock()
	u.state, u.pid, u.since, u.lastExit, u.next = StateFatal, 0, time.Now(), reason, time.Time{}
	u.s.mu.Unlock()
	u.logger().Error("service is FATAL", "reason", reason)
	if u.s.opts.OnFatal != nil {
		u.s.opts.OnFatal(u.spec.Partition, u.spec.Name, reason)
	}
	<-cancel
	u.set(StateStopped, 0, time.Time{})
}

func (u *unit) loop(cancel <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	log, err := openRotator(specLogPath(u.spec), u.s.opts.LogMaxBytes, u.s.opts.LogKeep, u.spec.Credential)
	if err != nil {
		u.fail(fmt.Sprintf("cannot open log %s: %v", specLogPath(u.spec), err), cancel)
		return
	}
	defer log.Close()
	cg, err := newCgroupSet(&u.spec, specLeaf(u.spec))
	if err != nil {
		log.Printf("%v", err)
		u.fail(err.Error(), cancel)
		return
	}
	if cg != nil {
		defer cg.remove()
	}
	if u.spec.Schedule != "" {
		u.runSchedule(cancel, log, cg)
		return
	}
	failures := 0
	for {
		u.set(StateStarting, 0, time.Time{})
		var desc string
		r, err := u.spawn(log, cg)
		if err != nil {
			desc = "start failed: " + err.Error()
			log.Printf("%s", desc)
		} else {
			u.set(StateRunning, r.pid, time.Time{})
			select {
			case <-cancel:
				u.terminate(r, cg, log)
				u.set(StateStopped, 0, time.Time{})
				return
			case <-r.exited:
			}
			desc = r.desc
		}
		u.s.mu.Lock()
		u.lastExit = desc
		u.s.mu.Unlock()
		if !u.spec.Watch {
			// Run once: what it left running in the background is its
			// business until the service is stopped.
			u.logExit(r, err, "not restarted (runs once)")
			u.set(StateExited, 0, time.Time{})
			<-cancel
			if r != nil {
				u.terminate(r, cg, log)
			}
			u.set(StateStopped, 0, time.Time{})
			return
		}
		if r != nil {
			// A watched service is its whole process tree: leftovers of the
			// previous run would collide with the next one.
			u.terminateWithin(r, cg, log, min(specGrace(u.spec), 5*time.Second))
			if r.ran >= u.s.opts.StableAfter {
				failures = 0
			}
		}
		failures++
		if failures > u.s.opts.MaxRetries {
			u.logExit(r, err, fmt.Sprintf("not restarted: %d consecutive failures, the service turns FATAL", failures))
			u.fail(fmt.Sprintf("%s; gave up after %d consecutive failures", desc, failures), cancel)
			return
		}
		delay := u.s.opts.MinBackoff
		for i := 1; i < failures && delay < u.s.opts.MaxBackoff; i++ {
			delay *= 2
		}
		delay = min(delay, u.s.opts.MaxBackoff)
		decision := fmt.Sprintf("restarting in %s (failure %d of at most %d)", delay, failures, u.s.opts.MaxRetries)
		log.Printf("%s", decision)
		u.logExit(r, err, decision)
		u.set(StateBackoff, 0, time.Now().Add(delay))
		select {
		case <-cancel:
			u.set(StateStopped, 0, time.Time{})
			return
		case <-u.s.after(delay):
		}
		u.s.mu.Lock()
		u.restarts++
		u.s.mu.Unlock()
	}
}

// runSchedule runs the job at every time its cron expression selects. A
// run is synchronous, so a run still going at the next tick makes that
// tick skipped: runs never overlap.
func (u *unit) runSchedule(cancel <-chan struct{}, log *rotator, cg *cgroupSet) {
	cron, err := ParseCron(u.spec.Schedule)
	if err != nil { // checked by Apply; a hand-edited state file could still hold one
		u.fail(err.Error(), cancel)
		return
	}
	for {
		now := time.Now()
		next := cron.Next(now)
		if next.IsZero() {
			u.fail(fmt.Sprintf("cron expression %q never fires", u.spec.Schedule), cancel)
			return
		}
		u.set(StateScheduled, 0, next)
		select {
		case <-cancel:
			u.set(StateStopped, 0, time.Time{})
			return
		case <-u.s.after(next.Sub(now)):
		}
		u.set(StateStarting, 0, time.Time{})
		r, err := u.spawn(log, cg)
		var desc string
		if err != nil {
			desc = "start failed: " + err.Error()
			log.Printf("%s", desc)
		} else {
			u.set(StateRunning, r.pid, time.Time{})
			select {
			case <-cancel:
				u.terminate(r, cg, log)
				u.set(StateStopped, 0, time.Time{})
				return
			case <-r.exited:
			}
			desc = r.desc
			u.logExit(r, nil, "next run on schedule")
			// A job ends with its command; what it left behind would
			// overlap the next run.
			u.terminateWithin(r, cg, log, min(specGrace(u.spec), 5*time.Second))
		}
		u.s.mu.Lock()
		u.lastExit = desc
		u.restarts++
		u.s.mu.Unlock()
	}
}

// run is one execution of the command.
type run struct {
	pid      int
	exited   chan struct{} // closed once the main process is reaped
	desc     string        // how it exited; valid once exited is closed
	code     int           // exit code, -1 when killed by a signal
	signal   string        // the signal that killed it (SIGKILL…), else ""
	ran      time.Duration
	pumpDone chan struct{}
}

// logger is the supervisor's logger with the unit's name.
func (u *unit) logger() *slog.Logger {
	return u.s.opts.Logger.With("partition", u.spec.Partition, "service", u.spec.Name)
}

// logExit records in the daemon's log how a run ended and what the
// supervisor does next: the line an operator looks for first. A run that
// could not start (startErr) has no exit code.
func (u *unit) logExit(r *run, startErr error, next string) {
	l := u.logger()
	if r == nil {
		l.Warn("service could not start", "err", startErr, "next", next)
		return
	}
	attrs := []any{"pid", r.pid}
	if r.signal != "" {
		attrs = append(attrs, "signal", r.signal)
	} else {
		attrs = append(attrs, "exit_code", r.code)
	}
	attrs = append(attrs, "ran", r.ran.Round(time.Millisecond).String(), "next", next)
	level := slog.LevelWarn
	if (r.signal == "" && r.code == 0) && (!u.spec.Watch || u.spec.Schedule != "") {
		// A run-once program or a job that succeeded did its work.
		level = slog.LevelInfo
		if u.spec.Schedule != "" {
			level = slog.LevelDebug
		}
	}
	l.Log(context.Background(), level, "service exited", attrs...)
}

func (r *run) alive() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

func (u *unit) spawn(log *rotator, cg *cgroupSet) (*run, error) {
	sp := &u.spec
	exe, err := specExecutable(*sp)
	if err != nil {
		return nil, err
	}
	// No Pdeathsig: Linux sends it when the creating *thread* exits, and a
	// Go thread can exit (a goroutine that ends while locked to it), which
	// would kill services at random. A service outlives a crashed daemon
	// until the next one starts, kills it (Restore) and starts it again.
	attr := &syscall.SysProcAttr{Setpgid: true}
	if c := sp.Credential; c != nil && (int(c.Uid) != os.Geteuid() || int(c.Gid) != os.Getegid() || len(c.Groups) > 0) {
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("cannot run as uid %d gid %d: the supervisor is not root (in rootless mode every service runs as the current user; give no credential)", c.Uid, c.Gid)
		}
		attr.Credential = &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
	}
	var cgfd *os.File
	if cg != nil && cg.v2 {
		// Clone straight into the cgroup: no window in which a fork
		// would escape it.
		if cgfd, err = os.Open(cg.dirs[0]); err != nil {
			return nil, fmt.Errorf("opening cgroup %s: %w", cg.dirs[0], err)
		}
		defer cgfd.Close()
		attr.UseCgroupFD, attr.CgroupFD = true, int(cgfd.Fd())
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating output pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path: exe, Args: append([]string{exe}, sp.Command[1:]...), Env: specEnviron(*sp, u.marker), Dir: sp.Dir,
		Stdout: wr, Stderr: wr, SysProcAttr: attr, // Stdin nil: /dev/null
	}
	// The cgroups it could not be cloned into (every one on cgroup v1, the
	// v1 controllers of a hybrid machine) and the network namespace are
	// joined by the exec shim before the service's first instruction, so
	// that nothing it forks is ever outside its limits.
	var confine nsexec.Confine
	if cg != nil {
		confine.Cgroups = cg.dirs
		if cg.v2 {
			confine.Cgroups = cg.dirs[1:]
		}
	}
	confine.NetNS = sp.NetNS
	var shim *nsexec.Shim
	if !confine.Empty() {
		if shim, err = nsexec.ThroughShim(cmd, confine, true); err != nil {
			rd.Close()
			wr.Close()
			return nil, fmt.Errorf("service %s: %w", sp.Name, err)
		}
		defer shim.Close()
	}
	orphans.Lock()
	err = cmd.Start()
	if err == nil {
		orphans.mains[cmd.Process.Pid] = true
	}
	orphans.Unlock()
	wr.Close()
	if err == nil {
		if err = shim.Started(); err != nil {
			// The shim could not join, switch or execute: it exits.
			_ = cmd.Wait()
			orphans.Lock()
			delete(orphans.mains, cmd.Process.Pid)
			orphans.Unlock()
		}
	}
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("starting %q in %s: %w", sp.Command[0], sp.Dir, err)
	}
	r := &run{pid: cmd.Process.Pid, exited: make(chan struct{}), pumpDone: make(chan struct{})}
	started := time.Now()
	go pump(rd, log, r.pumpDone)
	go func() {
		_ = cmd.Wait()
		r.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = unix.SignalName(ws.Signal())
			if r.signal == "" {
				r.signal = ws.Signal().String()
			}
		}
		r.desc = fmt.Sprintf("%s at %s after %s", cmd.ProcessState, time.Now().UTC().Format(time.RFC3339), time.Since(started).Round(time.Millisecond))
		r.ran = time.Since(started)
		orphans.Lock()
		delete(orphans.mains, r.pid)
		orphans.Unlock()
		// Let the last output reach the log before the exit note, unless
		// a child that outlives the main process keeps the pipe open.
		select {
		case <-r.pumpDone:
		case <-time.After(200 * time.Millisecond):
		}
		log.Printf("pid %d: %s", r.pid, r.desc)
		close(r.exited)
	}()
	log.Printf("started pid %d: %q", r.pid, sp.Command)
	u.logger().Info("service started", "pid", r.pid)
	return r, nil
}

// terminate stops the run because the service is asked to stop.
func (u *unit) terminate(r *run, cg *cgroupSet, log *rotator) {
	grace := specGrace(u.spec)
	if u.terminateWithin(r, cg, log, grace) {
		u.logger().Warn("service stopped: SIGKILL after its grace period", "pid", r.pid, "grace", grace.String())
		return
	}
	u.logger().Info("service stopped", "pid", r.pid)
}

// terminateWithin sends SIGTERM to every process of the run, then SIGKILL
// to what is left after grace, and returns when none is left; it reports
// whether SIGKILL was needed.
func (u *unit) terminateWithin(r *run, cg *cgroupSet, log *rotator, grace time.Duration) (killed bool) {
	// Every process seen during the stop stays a victim until it is gone
	// or a zombie, even once it no longer looks like the service's: an
	// exiting process loses its environment (the marker) and a re-parented
	// one its ancestry. The start time guards against a reused pid.
	seen := map[int]uint64{}
	victims := func() []int {
		pids := findProcs(r.pid, r.alive(), cg, u.marker, false)
		for _, pid := range pids {
			if _, ok := seen[pid]; !ok {
				if st, ok := readStat(pid); ok {
					seen[pid] = st.start
				}
			}
		}
		var all []int
		for pid, start := range seen {
			if st, ok := readStat(pid); ok && st.start == start {
				if !st.zombie {
					all = append(all, pid)
				}
				continue
			}
			delete(seen, pid) // gone (or reaped, pid reused)
		}
		// Orphans re-parented to this process, alive or zombie, are
		// reaped here (see reapAdopted).
		adopt(slices.Collect(maps.Keys(seen)))
		return all
	}
	pids := victims()
	if len(pids) == 0 && !r.alive() {
		<-r.pumpDone
		return false
	}
	log.Printf("stopping: SIGTERM to %v", pids)
	_ = syscall.Kill(-r.pid, syscall.SIGTERM)
	signalAll(pids, syscall.SIGTERM)
	timeout := time.NewTimer(grace)
	defer timeout.Stop()
	expired := grace <= 0
	// Poll fast first (most services exit at once on SIGTERM), then slower:
	// a node shutting down stops hundreds of services at once.
	poll := 20 * time.Millisecond
	exited := (<-chan struct{})(r.exited)
	for {
		// Waiting for the main process costs nothing; /proc is scanned
		// for the rest of the tree only once it is gone, or at each poll.
		select {
		case <-exited:
			exited = nil
		case <-timeout.C:
			expired = true
		case <-time.After(poll):
		}
		poll = min(poll*2, 500*time.Millisecond)
		pids = victims()
		reapAdopted()
		if len(pids) == 0 && !r.alive() {
			break
		}
		if expired {
			if !killed {
				log.Printf("still running after %s: SIGKILL to %v", grace, pids)
				killed = true
			}
			if cg == nil || !cg.kill() {
				signalAll(pids, syscall.SIGKILL)
			}
			if r.alive() {
				_ = syscall.Kill(r.pid, syscall.SIGKILL)
			}
		}
	}
	reapAdopted()
	select {
	case <-r.pumpDone:
	case <-time.After(5 * time.Second):
		// A process we could not find (it wiped its environment and
		// left the group without a cgroup to hold it) keeps the pipe.
		log.Printf("output pipe still held open by an unknown process")
	}
	return killed
}
