package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition/promise"
)

func init() {
	register(&command{
		name:    "promise run",
		summary: "run the promises of the node's partitions now and print their results",
		usage: `Usage: slapnode promise run [PARTITION] [--only NAME]... [--json] [--root DIR]

Runs now, in test mode, the promises of every started instance of the node, or
of PARTITION (a partition id such as slappart0, or an instance name): the
promise blocks of its profile as last applied, and the executables of its
etc/promise directory (SlapOS legacy promises). Promises run concurrently.
Each result is written in SlapOS's format to
PARTITION/.slapgrid/promise/result/NAME.status.json, and each sense is logged
to PARTITION/.slapgrid/promise/log/NAME.log.

Flags:
  --only NAME   run only this promise (repeatable)
  --json        print the results as JSON
  --root DIR    node root

Exit codes: 0 every promise passed, 4 a promise failed, 1 the promises could
not be run, 64 usage error.

Examples:
  slapnode promise run
  slapnode promise run slappart0 --only web-listening
  slapnode promise run helloweb --json
`,
		run: runPromiseRun,
	})
}

func runPromiseRun(env *cliEnv, args []string) error {
	fs := newFlags("promise run")
	root := rootFlag(fs)
	var only stringList
	fs.Var(&only, "only", "promise name (repeatable)")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return withCode(exitUsage, errors.New("give at most one partition (slappartN) or instance name"))
	}
	ctx, cancel := signalContext()
	defer cancel()
	node, err := local.Open(ctx, *root, nil)
	if err != nil {
		return err
	}
	defer node.Close(context.WithoutCancel(ctx))
	parts, err := promisePartitions(node, pos)
	if err != nil {
		return err
	}
	svc := &lazyServices{root: node.Root}
	defer svc.close()
	r := &promise.Runner{Host: node.Engine.Host, Services: svc}
	done := env.step("running the promises of " + describeParts(parts))
	results, runErr := r.Run(ctx, parts, promise.RunOptions{Force: true, Only: only})
	done()
	if len(only) > 0 {
		for _, name := range only {
			if !hasPromise(results, name) {
				runErr = errors.Join(runErr, fmt.Errorf("no promise named %q in %s", name, describeParts(parts)))
			}
		}
	}
	if *asJSON {
		doc := jsonPromiseRun{Promises: promisesJSON(results)}
		for _, r := range results {
			if r.Failed() {
				doc.Failed++
			}
		}
		if err := env.writeJSON(doc); err != nil {
			return err
		}
	} else {
		printPromiseTable(env.stdout, results)
	}
	if runErr != nil {
		return runErr
	}
	for _, res := range results {
		if res.Failed() {
			return withCode(exitPromiseFailed, nil)
		}
	}
	return nil
}

// jsonPromiseRun is promise run --json.
type jsonPromiseRun struct {
	Promises []jsonPromise `json:"promises"`
	Failed   int           `json:"failed"`
}

// promisePartitions lists the partitions to check: the one named, or every
// started instance.
func promisePartitions(node *local.Node, pos []string) ([]promise.PartitionRef, error) {
	insts, err := node.Instances()
	if err != nil {
		return nil, err
	}
	var out []promise.PartitionRef
	for _, rec := range insts {
		if len(pos) == 1 {
			if rec.Partition != pos[0] && rec.Name != pos[0] {
				continue
			}
		} else if rec.State != local.StateStarted {
			continue
		}
		part, err := node.Partition(rec.Partition)
		if err != nil {
			return nil, err
		}
		out = append(out, promise.PartitionRef{Partition: part, SoftwareURL: rec.Software, SoftwarePath: node.Engine.SoftwareDir(rec.Software)})
	}
	// Partitions a master asked for (node run --master) are not in the
	// local registry.
	conv, err := node.ConvergedPartitions()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, r := range out {
		seen[r.ID] = true
	}
	for _, c := range conv {
		if seen[c.ID] || (len(pos) == 1 && c.ID != pos[0]) || (len(pos) == 0 && c.State != local.StateStarted) {
			continue
		}
		part, err := node.Partition(c.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, promise.PartitionRef{Partition: part, SoftwareURL: c.Software, SoftwarePath: node.Engine.SoftwareDir(c.Software)})
	}
	if len(pos) == 1 && len(out) == 0 {
		var names []string
		for _, rec := range insts {
			names = append(names, rec.Name, rec.Partition)
		}
		for _, c := range conv {
			names = append(names, c.ID)
		}
		hint := ""
		if s := closest(pos[0], names); len(s) > 0 {
			hint = "; did you mean " + orList(s) + "?"
		}
		return nil, fmt.Errorf("no partition or instance named %q on the node at %s%s (see 'slapnode status')", pos[0], node.Root, hint)
	}
	return out, nil
}

func hasPromise(results []promise.Result, name string) bool {
	for _, r := range results {
		if r.Name == name {
			return true
		}
	}
	return false
}

func describeParts(parts []promise.PartitionRef) string {
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	if len(ids) == 0 {
		return "the node (no started instance)"
	}
	return strings.Join(ids, ", ")
}

func printPromiseTable(w io.Writer, results []promise.Result) {
	if len(results) == 0 {
		fmt.Fprintln(w, "no promises to run")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tPROMISE\tRESULT\tTIME\tMESSAGE")
	failed := 0
	for _, r := range results {
		state := "ok"
		switch {
		case r.Skipped:
			state = "skipped"
		case r.TimedOut:
			state, failed = "timeout", failed+1
		case !r.OK:
			state, failed = "failed", failed+1
		}
		msg, _, more := strings.Cut(strings.TrimSpace(r.Message), "\n")
		if more {
			msg += " …"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Partition, r.Name, state, r.Duration.Round(time.Millisecond), msg)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d promises, %d failed\n", len(results), failed)
}

// lazyServices asks the node daemon for service states, connecting on first
// use (only check_service_running and the metrics need it, and the daemon may
// be down, or not serving yet: a failed connection is retried next time).
type lazyServices struct {
	root string
	mu   sync.Mutex
	c    *daemon.Client
}

func (l *lazyServices) Status(ctx context.Context) ([]supervisor.ServiceStatus, error) {
	l.mu.Lock()
	if l.c == nil {
		c, err := daemon.Dial(l.root)
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.c = c
	}
	c := l.c
	l.mu.Unlock()
	return c.Status(ctx)
}

func (l *lazyServices) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		l.c.Close()
		l.c = nil
	}
}

// promiseDaemon runs the promises of a node root inside 'slapnode node run':
// every started instance's promises by their periodicity, in anomaly mode,
// banging through bang at most once per deployment, their results recorded
// in the daemon's metrics.
type promiseDaemon struct {
	node  *local.Node
	sched *promise.Scheduler
	svc   *lazyServices
}

// startPromiseDaemon starts it; bang may be nil (no master: anomalies are
// only logged). Call stop before the daemon returns.
func startPromiseDaemon(ctx context.Context, root string, bang func(partition, promise, message string), metrics *promise.Metrics, logger *slog.Logger) (*promiseDaemon, error) {
	node, err := local.Open(ctx, root, nil)
	if err != nil {
		return nil, err
	}
	d := &promiseDaemon{node: node, svc: &lazyServices{root: node.Root}}
	d.sched = &promise.Scheduler{
		Runner:     &promise.Runner{Host: node.Engine.Host, Services: d.svc},
		Partitions: func(context.Context) ([]promise.PartitionRef, error) { return promisePartitions(node, nil) },
		OnResults:  metrics.Observe,
		Logf:       logfAdapter(logger, slog.LevelError),
		Bang: func(partition, name, message string) {
			logger.Warn("promise anomaly", "partition", partition, "promise", name, "message", message)
			if bang != nil {
				bang(partition, name, message)
			}
		},
	}
	if err := d.sched.Start(ctx); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *promiseDaemon) stop() {
	d.sched.Stop()
	d.svc.close()
	d.node.Close(context.Background())
}
