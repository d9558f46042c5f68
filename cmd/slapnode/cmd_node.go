package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/fsuser"
	"github.com/slapnode/slapnode/internal/memtrim"
	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/format"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/node/supervisor"
)

func init() {
	register(&command{
		name:    "node run",
		summary: "run the node daemon in the foreground (supervisor + control socket)",
		usage: `Usage: slapnode node run [--root DIR] [--master URL [--node-id ID] [--partitions N] | --cfg slapos.cfg] [--interval D]
                         [--metrics ADDR] [--log-format F] [--log-level L]

Runs the node daemon in the foreground: it restores every partition to its
recorded state (services of started partitions are started again), then
serves the control socket DIR/var/run/slapnode.sock (mode 0600) used by
apply, status, start, stop, restart and logs. SIGTERM or SIGINT stop every
service gracefully, then the daemon; the recorded state is kept, so the
next 'node run' brings the services back.

Only one daemon runs per node root; a second one is refused. 'slapnode apply'
starts the daemon in the background when none runs; a systemd unit is in
node/slapnode.service.

With --master, the node also joins a SLAP master (a slapnode master or a
SlapOS one): it registers its partitions, then every interval fetches what
the master wants, installs supplied software releases, applies each
partition in its requested state, publishes connection parameters and
reports back; a watched service that turns FATAL bangs its partition (once
per deployment). While the master is unreachable the services keep running
and the node retries with a growing delay.

With --cfg slapos.cfg (default $SLAPOS_CONFIGURATION), the node takes the
place of SlapOS's slapgrid: it reads SlapOS's configuration — master_url,
computer_id, key_file and cert_file (HTTPS with the node's X.509
certificate), master_ca_file, certificate_repository_path (where each
partition's certificate is written, 0400, owned by its user) and
[slapformat] partition_amount — and says at start which other keys it
leaves aside and why (docs/master.md lists them all).

Flags:
  --root DIR         node root (default $SLAPNODE_ROOT, else ~/.local/state/slapnode)
  --master URL       SLAP master to converge with (e.g. http://127.0.0.1:8080)
  --node-id ID       the node's computer id on the master (default: slapnode)
  --partitions N     partitions registered with the master (default 10)
  --interval D       time between converge passes (default 30s)
  --cfg FILE         SlapOS node configuration, slapos.cfg (default $SLAPOS_CONFIGURATION)
  --master-ca FILE   CA certificate to verify an https master with (else
                     slapos.cfg's master_ca_file, else the system's roots)
  --metrics ADDR     serve the daemon's metrics (OpenMetrics: services, promises,
                     converge passes, builds, master, process) at
                     http://ADDR/metrics, e.g. 127.0.0.1:9780 (default: the
                     daemon block's metrics_address in ROOT/node.hcl)
  --log-format F     auto (default: journal under systemd, text on a terminal
                     or in a file, plain in a pipe), text, plain, journal, json
  --log-level L      debug, info (default), warn or error

The daemon block of ROOT/node.hcl sets metrics_address, log_format and
log_level for every daemon of the root, the one apply starts included;
flags win over it. Under systemd (Type=notify), the daemon says READY=1 once
the socket serves and the services are restored, and pings the watchdog
(docs/services.md §systemd).

Examples:
  slapnode node run
  sudo slapnode node run --root /srv/slapnode
  slapnode node run --master http://127.0.0.1:8080 --node-id COMP-1
  sudo slapnode node run --cfg /etc/opt/slapos/slapos.cfg --root /srv/slapnode
`,
		run: runNodeRun,
	})
	register(&command{
		name:    "node stop",
		summary: "stop every service gracefully, then the node daemon",
		usage: `Usage: slapnode node stop [--root DIR] [--json]

Stops every service of every partition (SIGTERM, SIGKILL after each
service's grace period; no process is left behind), then the daemon. The
desired state stays recorded: 'slapnode node run' (or the next apply)
starts the services again. Doing it when no daemon runs is not an error.

Flags:
  --json       print what was stopped as JSON
  --root DIR   node root

Examples:
  slapnode node stop
  slapnode node stop --root /srv/slapnode
`,
		run: runNodeStop,
	})
	register(&command{
		name:    "status",
		summary: "list partitions and services: state, pid, uptime, restarts, last exit",
		usage: `Usage: slapnode status [PARTITION|INSTANCE] [--root DIR] [--json]

Lists the services of every partition (or of one partition, named by its id
or by the name of the instance it runs) known to the node daemon, with their state (STARTING RUNNING BACKOFF EXITED FATAL STOPPED
SCHEDULED), pid, time in that state, restarts and last exit.

Flags:
  --json       print the status as JSON
  --root DIR   node root

Examples:
  slapnode status
  slapnode status slappart0 --json
  slapnode status helloweb
`,
		run: runStatus,
	})
	for _, op := range []struct{ name, summary, what string }{
		{"start", "start a partition's services, or one service", "Starts the stopped, exited or FATAL services of PARTITION (all of them, or\nSERVICE); the partition's requested state becomes started."},
		{"stop", "stop a partition's services, or one service", "Stops the services of PARTITION (the partition is then recorded stopped),\nor only SERVICE (recorded stopped too, across daemon restarts). SIGTERM,\nthen SIGKILL after the service's grace period (default 60s)."},
		{"restart", "restart a partition's services, or one service", "Stops then starts the services of PARTITION, or only SERVICE."},
	} {
		op := op
		register(&command{
			name:    op.name,
			summary: op.summary,
			usage: fmt.Sprintf(`Usage: slapnode %s PARTITION|INSTANCE [SERVICE] [--root DIR] [--json]

%s
PARTITION is a partition id (slappart0) or the name of the instance it runs.

Flags:
  --json       print the result as JSON
  --root DIR   node root

Examples:
  slapnode %s slappart0
  slapnode %s helloweb web
`, op.name, op.what, op.name, op.name),
			run: func(env *cliEnv, args []string) error { return runServiceOp(env, op.name, args) },
		})
	}
	register(&command{
		name:    "logs",
		summary: "print (or follow) the logs of a partition's services",
		usage: `Usage: slapnode logs PARTITION|INSTANCE [SERVICE] [-f] [-n LINES] [--root DIR] [--json]

Prints the last lines of the log of SERVICE, or of every service of
PARTITION (a partition id, or the name of the instance it runs). Logs are written by the supervisor (stdout and stderr of the
service, plus its own notes about starts, exits and stops) and rotated by
size (LOG, LOG.1, …). Works when the daemon is down too.

Flags:
  -f           follow: keep printing what is appended, across rotations (Ctrl-C to end)
  -n LINES     lines to print first (default 50; 0 = all)
  --json       one JSON object per line (JSON Lines): partition, file, line
  --root DIR   node root

Examples:
  slapnode logs slappart0
  slapnode logs helloweb web -f
`,
		run: runLogs,
	})
}

func runNodeRun(env *cliEnv, args []string) error {
	fs := newFlags("node run")
	root := rootFlag(fs)
	var mf nodeMasterFlags
	mf.define(fs)
	metrics := fs.String("metrics", "", "serve OpenMetrics on this address, e.g. 127.0.0.1:9780 (default: daemon.metrics_address of node.hcl)")
	var lf logFlags
	lf.define(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	mf.visit(fs)
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help node run')", pos[0]))
	}
	// node.hcl's daemon block: what the daemon that apply starts (with no
	// flag) runs with; flags given here win.
	nodeCfg, err := config.Load(*root, "")
	if err != nil {
		return err
	}
	lf.defaults(fs, nodeCfg.Daemon.LogFormat, nodeCfg.Daemon.LogLevel)
	logger, err := lf.logger(env)
	if err != nil {
		return err
	}
	metricsAddr := nodeCfg.Daemon.MetricsAddress
	if *metrics != "" {
		metricsAddr = *metrics
	}
	nm, err := mf.resolve(env)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	met := daemon.NewMetrics(buildVersion())
	cfg := daemon.Config{Logger: logger, Metrics: met, MetricsAddr: metricsAddr}
	cfg.Supervisor.Logger = logger.With("component", "supervisor")
	var bang func(partition, promise, message string)
	var ready []func()
	if nm != nil {
		conv, err := newConverger(ctx, env, *root, mf, nm, logger.With("component", "converge"))
		if err != nil {
			return err
		}
		defer conv.close()
		conv.opts.Observer = met
		cfg.Supervisor.OnFatal = conv.bang
		bang = conv.bangPromise
		ready = append(ready, func() { go conv.run(ctx) })
	}
	// Promises run on their periodicity once the daemon serves; an anomaly
	// bangs the partition when a master is there.
	var pd *promiseDaemon
	var pdMu sync.Mutex
	plog := logger.With("component", "promises")
	ready = append(ready, func() {
		d, err := startPromiseDaemon(ctx, *root, bang, met.Promises(), plog)
		if err != nil {
			plog.Error("promises do not run", "err", err)
			return
		}
		pdMu.Lock()
		pd = d
		pdMu.Unlock()
	})
	defer func() {
		pdMu.Lock()
		defer pdMu.Unlock()
		if pd != nil {
			pd.stop()
		}
	}()
	cfg.Ready = func() {
		for _, f := range ready {
			f()
		}
		// The daemon runs for as long as the node: hand back the code only
		// the other commands' initialisers touched (internal/memtrim).
		memtrim.ReleaseCode()
	}
	return daemon.Serve(ctx, *root, cfg)
}

// jsonNodeStop is node stop --json.
type jsonNodeStop struct {
	// DaemonWasRunning: false when there was nothing to stop.
	DaemonWasRunning bool `json:"daemon_was_running"`
	DaemonPid        int  `json:"daemon_pid,omitempty"`
	ServicesStopped  int  `json:"services_stopped"`
}

func runNodeStop(env *cliEnv, args []string) error {
	fs := newFlags("node stop")
	root := rootFlag(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help node stop')", pos[0]))
	}
	c, err := daemon.Dial(*root)
	if errors.Is(err, daemon.ErrNotRunning) {
		if *asJSON {
			return env.writeJSON(jsonNodeStop{})
		}
		fmt.Fprintf(env.stdout, "no slapnode daemon is running for %s: nothing to stop\n", *root)
		return nil
	}
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	running := 0
	for _, s := range st {
		if s.Pid != 0 {
			running++
		}
	}
	if !*asJSON && !env.quiet {
		fmt.Fprintf(env.stdout, "stopping %d running services and the daemon (pid %d)…\n", running, info.Pid)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	done := env.step(fmt.Sprintf("stopping %d services and the daemon", running))
	err = c.Shutdown(ctx)
	done()
	if err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(jsonNodeStop{DaemonWasRunning: true, DaemonPid: info.Pid, ServicesStopped: running})
	}
	fmt.Fprintln(env.stdout, "stopped; 'slapnode node run' starts the services again")
	return nil
}

// nodeServices returns the node daemon's client for `slapnode apply`,
// starting the daemon in the background (this executable, node run) when
// none runs, so that services outlive the apply command.
func nodeServices(ctx context.Context, root string) (*daemon.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the slapnode executable to start the node daemon: %w", err)
	}
	return daemon.Ensure(root, exe)
}

// startNodeServices is nodeServices in the background (daemon.Start).
func startNodeServices(ctx context.Context, root string) (*daemon.Starting, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the slapnode executable to start the node daemon: %w", err)
	}
	return daemon.Start(root, exe), nil
}

// dialDaemon connects to the daemon, with an error that says what to do.
func dialDaemon(root string) (*daemon.Client, error) {
	c, err := daemon.Dial(root)
	if errors.Is(err, daemon.ErrNotRunning) {
		return nil, fmt.Errorf("no slapnode daemon is running for %s, so no service runs; start it with 'slapnode node run --root %s' (or run 'slapnode apply')", root, root)
	}
	return c, err
}

// jsonService is one service in status --json.
type jsonService struct {
	Partition string `json:"partition"`
	Instance  string `json:"instance,omitempty"` // the instance the partition runs, when known
	Name      string `json:"name"`
	// State: STARTING RUNNING BACKOFF EXITED FATAL STOPPED SCHEDULED.
	State    string     `json:"state"`
	Pid      int        `json:"pid,omitempty"`
	Since    *time.Time `json:"since,omitempty"`
	Restarts int        `json:"restarts"`
	LastExit string     `json:"last_exit,omitempty"`
	Watch    bool       `json:"watch"`
	Schedule string     `json:"schedule,omitempty"`
	Next     *time.Time `json:"next,omitempty"` // next run (job) or restart (BACKOFF)
	// PartitionState is the partition's requested state.
	PartitionState string `json:"partition_state"`
	Log            string `json:"log"`
}

type jsonStatus struct {
	Services []jsonService `json:"services"`
}

// resolvePartition turns what the user typed (a partition id, or the name
// of an instance the node runs) into a partition id.
func resolvePartition(root, arg string) string {
	if p, err := local.Lookup(root, arg); err == nil {
		return p.Partition
	}
	return arg
}

// instanceNames maps partition ids to the instances they run.
func instanceNames(root string) map[string]string {
	out := map[string]string{}
	all, _ := local.Placements(root)
	for _, p := range all {
		out[p.Partition] = p.Name
	}
	return out
}

// unknownPartition explains a partition or instance name the node does
// not know, with the closest names it does.
func unknownPartition(root, arg string, partitions []string) error {
	names := append([]string(nil), partitions...)
	if all, err := local.Placements(root); err == nil {
		for _, p := range all {
			if p.Name != "" {
				names = append(names, p.Name)
			}
		}
	}
	hint := ""
	if s := closest(arg, names); len(s) > 0 {
		hint = "; did you mean " + orList(s) + "?"
	}
	return fmt.Errorf("no partition or instance named %q has a service on this node%s (see 'slapnode status')", arg, hint)
}

func runStatus(env *cliEnv, args []string) error {
	fs := newFlags("status")
	root := rootFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return withCode(exitUsage, fmt.Errorf("at most one partition or instance (see 'slapnode help status')"))
	}
	c, err := dialDaemon(*root)
	if err != nil {
		return err
	}
	defer c.Close()
	all, err := c.Status(context.Background())
	if err != nil {
		return err
	}
	want := ""
	if len(pos) == 1 {
		want = resolvePartition(*root, pos[0])
	}
	var st []supervisor.ServiceStatus
	var parts []string
	for _, s := range all {
		parts = append(parts, s.Partition)
		if want == "" || s.Partition == want {
			st = append(st, s)
		}
	}
	if want != "" && len(st) == 0 {
		return unknownPartition(*root, pos[0], parts)
	}
	if *asJSON {
		names := instanceNames(*root)
		doc := jsonStatus{Services: []jsonService{}}
		for _, s := range st {
			doc.Services = append(doc.Services, jsonService{Partition: s.Partition, Instance: names[s.Partition], Name: s.Name, State: s.State,
				Pid: s.Pid, Since: jsonTime(s.Since), Restarts: s.Restarts, LastExit: s.LastExit, Watch: s.Watch, Schedule: s.Schedule,
				Next: jsonTime(s.Next), PartitionState: s.Requested, Log: s.Log})
		}
		return env.writeJSON(doc)
	}
	printStatus(env.stdout, st, time.Now())
	return nil
}

func printStatus(w io.Writer, st []supervisor.ServiceStatus, now time.Time) {
	if len(st) == 0 {
		fmt.Fprintln(w, "no service")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSERVICE\tSTATE\tPID\tUPTIME\tRESTARTS\tLAST EXIT")
	for _, s := range st {
		name := s.Name
		if s.Schedule != "" {
			name += " (cron " + s.Schedule + ")"
		} else if !s.Watch {
			name += " (run once)"
		}
		state := s.State
		if s.Requested == supervisor.PartitionStopped {
			state += " (partition stopped)"
		}
		pid, up := "-", "-"
		if s.Pid != 0 {
			pid = strconv.Itoa(s.Pid)
			up = now.Sub(s.Since).Round(time.Second).String()
		}
		switch {
		case s.State == supervisor.StateScheduled && !s.Next.IsZero():
			up = "next " + s.Next.Local().Format("2006-01-02 15:04")
		case s.State == supervisor.StateBackoff && !s.Next.IsZero():
			up = "retry in " + s.Next.Sub(now).Round(100*time.Millisecond).String()
		}
		last := s.LastExit
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Partition, name, state, pid, up, s.Restarts, last)
	}
	tw.Flush()
}

// jsonServiceOp is start, stop and restart --json.
type jsonServiceOp struct {
	Partition string `json:"partition"`
	Service   string `json:"service,omitempty"` // "" for the whole partition
	Result    string `json:"result"`            // started, stopped or restarted
}

func runServiceOp(env *cliEnv, op string, args []string) error {
	fs := newFlags(op)
	root := rootFlag(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return withCode(exitUsage, fmt.Errorf("want PARTITION [SERVICE] (see 'slapnode help %s')", op))
	}
	partition, service := resolvePartition(*root, pos[0]), ""
	if len(pos) == 2 {
		service = pos[1]
	}
	c, err := dialDaemon(*root)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	past := map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}[op]
	doing := map[string]string{"start": "starting", "stop": "stopping", "restart": "restarting"}[op]
	done := env.step(doing + " the services of " + partition)
	switch op {
	case "start":
		err = c.Start(ctx, partition, service)
	case "stop":
		err = c.Stop(ctx, partition, service)
	default:
		err = c.Restart(ctx, partition, service)
	}
	done()
	if errors.Is(err, supervisor.ErrNotFound) {
		if service == "" {
			var parts []string
			if st, serr := c.Status(ctx); serr == nil {
				for _, s := range st {
					parts = append(parts, s.Partition)
				}
			}
			return fmt.Errorf("%w: %w", err, unknownPartition(*root, pos[0], parts))
		}
		return fmt.Errorf("%w; 'slapnode status' lists the partitions and services", err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(jsonServiceOp{Partition: partition, Service: service, Result: past})
	}
	target := partition
	if service != "" {
		target += "/" + service
	}
	fmt.Fprintf(env.stdout, "%s %s\n", past, target)
	return nil
}

func runLogs(env *cliEnv, args []string) error {
	fs := newFlags("logs")
	root := rootFlag(fs)
	follow := fs.Bool("f", false, "follow")
	lines := fs.Int("n", 50, "lines to print first")
	asJSON := fs.Bool("json", false, "JSON Lines output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return withCode(exitUsage, fmt.Errorf("want PARTITION [SERVICE] (see 'slapnode help logs')"))
	}
	partition, service := resolvePartition(*root, pos[0]), ""
	if len(pos) == 2 {
		service = pos[1]
	}
	var paths []string
	if c, err := daemon.Dial(*root); err == nil {
		paths, err = c.LogPaths(context.Background(), partition, service)
		c.Close()
		if err != nil {
			return err
		}
	} else if errors.Is(err, daemon.ErrNotRunning) {
		if paths, err = supervisor.PersistedLogPaths(daemon.StateDir(*root), partition, service); err != nil {
			return err
		}
	} else {
		return err
	}
	lf, err := partitionLogFS(*root, partition)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var w io.Writer = env.stdout
	if *asJSON {
		jl := &jsonLogWriter{env: env, partition: partition}
		defer jl.flush()
		w = jl
	}
	return lf.show(ctx, w, paths, *lines, *follow, 250*time.Millisecond)
}

// logFS opens a partition's logs with its user's file system identity
// (internal/fsuser) when the command runs as root on a formatted node: the
// logs are in the partition directory, which its user controls, and a log
// made a link to /etc/shadow, a FIFO or /dev/zero must give root's
// `slapnode logs` what the user could read itself, or an error — not the
// file, a hang or an endless read.
type logFS struct {
	uid, gid int // -1: the caller's own
	groups   []int
}

// partitionLogFS is the logFS of partition id of the node at root.
func partitionLogFS(root, id string) (logFS, error) {
	lf := logFS{uid: -1, gid: -1}
	st, err := format.LoadState(root)
	if errors.Is(err, format.ErrNotFormatted) {
		return lf, nil
	}
	if err != nil {
		return lf, err
	}
	if p, ok := st.Partition(id); ok {
		if c := p.Credential(); c != nil {
			lf.uid, lf.gid, lf.groups = fsuser.Ids(c.Uid, c.Gid, c.Groups)
		}
	}
	return lf, nil
}

// open opens a log for reading: as the partition's user, non-blocking, and
// only a regular file.
func (lf logFS) open(path string) (*os.File, error) {
	var f *os.File
	err := fsuser.Do(lf.uid, lf.gid, lf.groups, func() error {
		var err error
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("log %s is not a regular file (%v): refusing to read it", path, st.Mode().Type())
	}
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(f.Fd(), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return f, nil
}

// stat describes a log as the partition's user sees it.
func (lf logFS) stat(path string) (os.FileInfo, error) {
	var fi os.FileInfo
	err := fsuser.Do(lf.uid, lf.gid, lf.groups, func() error {
		var err error
		fi, err = os.Stat(path)
		return err
	})
	return fi, err
}

// jsonLogLine is one line of logs --json (JSON Lines).
type jsonLogLine struct {
	Partition string `json:"partition"`
	File      string `json:"file"`
	Line      string `json:"line"`
}

// jsonLogWriter turns what showLogs writes (headers "==> FILE <==" when
// there are several logs, then their content) into JSON Lines.
type jsonLogWriter struct {
	env       *cliEnv
	partition string
	file      string
	buf       []byte
}

func (j *jsonLogWriter) setFile(path string) { j.flush(); j.file = path }

func (j *jsonLogWriter) Write(b []byte) (int, error) {
	j.buf = append(j.buf, b...)
	for {
		i := bytes.IndexByte(j.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(j.buf[:i])
		j.buf = j.buf[i+1:]
		if err := j.env.writeJSONLine(jsonLogLine{Partition: j.partition, File: j.file, Line: line}); err != nil {
			return 0, err
		}
	}
}

// flush prints a last line without its newline.
func (j *jsonLogWriter) flush() {
	if len(j.buf) > 0 {
		j.env.writeJSONLine(jsonLogLine{Partition: j.partition, File: j.file, Line: string(j.buf)})
		j.buf = nil
	}
}

// tailed is one log being followed.
type tailed struct {
	path string
	f    *os.File // nil until the file exists
	ino  uint64
	off  int64
}

// drain copies what was appended since the last read.
func (t *tailed) drain(w io.Writer, buf []byte, header func(string)) {
	for {
		n, err := t.f.Read(buf)
		if n > 0 {
			header(t.path)
			_, _ = w.Write(buf[:n])
			t.off += int64(n)
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// showLogs is logFS.show with the caller's own identity.
func showLogs(ctx context.Context, w io.Writer, paths []string, n int, follow bool, poll time.Duration) error {
	return logFS{uid: -1, gid: -1}.show(ctx, w, paths, n, follow, poll)
}

// show prints the last n lines of each log, then with follow polls them
// for appended data until ctx ends. A log that shrank or was replaced (the
// supervisor rotated it) is finished, then read again from its start.
func (lf logFS) show(ctx context.Context, w io.Writer, paths []string, n int, follow bool, poll time.Duration) error {
	var files []*tailed
	defer func() {
		for _, t := range files {
			if t.f != nil {
				t.f.Close()
			}
		}
	}()
	last := ""
	jl, _ := w.(*jsonLogWriter)
	header := func(p string) {
		if jl != nil {
			if jl.file != p {
				jl.setFile(p)
			}
			return
		}
		if len(paths) > 1 && last != p {
			fmt.Fprintf(w, "==> %s <==\n", p)
			last = p
		}
	}
	for _, p := range paths {
		t := &tailed{path: p}
		files = append(files, t)
		f, err := lf.open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // not started yet: followed once it appears
		}
		if err != nil {
			return fmt.Errorf("reading log: %w", err)
		}
		header(p)
		off, err := printTail(w, f, n)
		if err != nil {
			f.Close()
			return fmt.Errorf("reading log %s: %w", p, err)
		}
		if follow {
			t.f, t.ino, t.off = f, inode(f), off
		} else {
			f.Close()
		}
	}
	if !follow {
		return nil
	}
	buf := make([]byte, 64*1024)
	for {
		for _, t := range files {
			if t.f != nil {
				t.drain(w, buf, header)
			}
			fi, err := lf.stat(t.path)
			if err != nil {
				continue
			}
			st, _ := fi.Sys().(*syscall.Stat_t)
			if t.f != nil && (st == nil || st.Ino == t.ino) && fi.Size() >= t.off {
				continue
			}
			// Rotated (new inode or truncated), or appeared: start over.
			if t.f != nil {
				t.drain(w, buf, header)
				t.f.Close()
			}
			if t.f, err = lf.open(t.path); err != nil {
				t.f = nil
				continue
			}
			t.ino, t.off = inode(t.f), 0
			t.drain(w, buf, header)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

func inode(f *os.File) uint64 {
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			return st.Ino
		}
	}
	return 0
}

// maxTail bounds how far back printTail looks for n lines: a log is
// rotated well below it, and a planted huge (sparse) file is not read
// into memory.
const maxTail = 16 << 20

// printTail writes the last n lines of f (all of it, streamed, when
// n <= 0) and leaves f at the offset it reached, which it returns.
func printTail(w io.Writer, f *os.File, n int) (int64, error) {
	if n <= 0 {
		return io.Copy(w, f)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	var buf []byte
	for start := size; start > 0 && size-start < maxTail; {
		step := min(int64(64<<10), start)
		start -= step
		b := make([]byte, step)
		k, err := f.ReadAt(b, start)
		if err != nil && err != io.EOF {
			return 0, err
		}
		buf = append(b[:k], buf...)
		if bytes.Count(buf, []byte{'\n'}) > n {
			break
		}
	}
	_, _ = w.Write(lastLines(buf, n))
	return f.Seek(size, io.SeekStart)
}

// lastLines returns the last n lines of b (all of b if n <= 0).
func lastLines(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	count := 0
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			count++
			if count == n {
				return b[i+1:]
			}
		}
	}
	return b
}
