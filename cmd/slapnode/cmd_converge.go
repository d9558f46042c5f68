package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sort"
	"strings"
	"time"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/node/slap"
)

func init() {
	register(&command{
		name:    "node converge",
		summary: "one pass against a SLAP master: install, apply, publish, report (exit 3 when the master is unreachable)",
		usage: `Usage: slapnode node converge --master URL [--node-id ID] [--partitions N] [--root DIR] [--json]

Does once what 'slapnode node run --master URL' does periodically: registers
the node's partitions, fetches what the master wants of this node, installs
the supplied software releases, applies each partition in its requested state
(started, stopped, destroyed) with its parameters and software type,
publishes connection parameters and reports every outcome. Partitions whose
timestamp and state did not change since their last success are skipped.
Services are handed to the node daemon (started in the background if needed).

With --json, what the pass did is printed as one JSON document.

Exit codes: 0 success, 1 a partition or release failed (reported to the
master), 3 the master is unreachable (services keep running), 64 usage error.

Example:
  slapnode node converge --master http://127.0.0.1:8080 --node-id COMP-1
`,
		run: runNodeConverge,
	})
}

type nodeMasterFlags struct {
	master, nodeID string
	partitions     int
	interval       time.Duration
}

func (m *nodeMasterFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&m.master, "master", "", "SLAP master URL")
	fs.StringVar(&m.nodeID, "node-id", "slapnode", "computer id on the master")
	fs.IntVar(&m.partitions, "partitions", 10, "partitions registered with the master")
	fs.DurationVar(&m.interval, "interval", 30*time.Second, "time between converge passes")
}

// converger joins a node to a master from inside `node run`: the daemon's
// own socket serves as the supervisor, FATAL services bang.
type converger struct {
	node   *local.Node
	client *slap.Client
	banger *local.Banger
	opts   local.ConvergeOptions
	mf     nodeMasterFlags
	logf   func(string, ...any)
}

func newConverger(ctx context.Context, env *cliEnv, root string, mf nodeMasterFlags) (*converger, error) {
	client, err := slap.NewClient(mf.master)
	if err != nil {
		return nil, err
	}
	n, err := local.Open(ctx, root, nil)
	if err != nil {
		return nil, err
	}
	logger := log.New(env.stderr, "", log.LstdFlags)
	return &converger{
		node: n, client: client, mf: mf, logf: logger.Printf,
		banger: local.NewBanger(n.Root, client, mf.nodeID),
		opts:   local.ConvergeOptions{Master: client, ComputerID: mf.nodeID, Partitions: mf.partitions, PromiseWait: 30 * time.Second, UsageEvery: 10 * time.Minute},
	}, nil
}

func (c *converger) close() { c.node.Close(context.Background()) }

func (c *converger) run(ctx context.Context) {
	svc, err := daemon.Dial(c.node.Root)
	if err != nil {
		c.logf("converge: %v", err)
		return
	}
	defer svc.Close()
	o := c.opts
	o.Services = svc
	c.node.Converge(ctx, o, c.mf.interval, c.logf)
}

func (c *converger) bang(partition, service, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := fmt.Sprintf("service %s is FATAL: %s", service, reason)
	if err := c.banger.Bang(ctx, partition, msg); err != nil {
		c.logf("bang %s: %v", partition, err)
	}
}

// bangPromise bangs a partition whose promise shows an anomaly.
func (c *converger) bangPromise(partition, promise, message string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.banger.Bang(ctx, partition, fmt.Sprintf("promise %s is failing: %s", promise, message)); err != nil {
		c.logf("bang %s: %v", partition, err)
	}
}

func runNodeConverge(env *cliEnv, args []string) error {
	fs := newFlags("node converge")
	root := rootFlag(fs)
	var mf nodeMasterFlags
	mf.define(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || mf.master == "" {
		return withCode(exitUsage, fmt.Errorf("give --master URL (see 'slapnode help node converge')"))
	}
	ctx, cancel := signalContext()
	defer cancel()
	client, err := slap.NewClient(mf.master)
	if err != nil {
		return err
	}
	out := env.out()
	if *asJSON {
		out = nil
	}
	n, err := local.Open(ctx, *root, out)
	if err != nil {
		return err
	}
	defer n.Close(context.Background())
	n.Engine.Verbose = env.verbose
	n.Engine.Step = env.step
	o := local.ConvergeOptions{Master: client, ComputerID: mf.nodeID, Partitions: mf.partitions, PromiseWait: 30 * time.Second}
	if err := n.Register(ctx, o); err != nil {
		return convergeErr(err)
	}
	svc, err := nodeServices(ctx, n.Root)
	if err != nil {
		return err
	}
	defer svc.Close()
	o.Services = svc
	rep, err := n.ConvergeOnce(ctx, o)
	if err != nil {
		return convergeErr(err)
	}
	if *asJSON {
		if err := env.writeJSON(convergeJSON(rep)); err != nil {
			return err
		}
	} else {
		for url, st := range rep.Software {
			fmt.Fprintf(env.stdout, "software %s: %s\n", url, st)
		}
		fmt.Fprintf(env.stdout, "partitions: processed %s; up to date %s; destroyed %s\n",
			list(rep.Processed), list(rep.Skipped), list(rep.Destroyed))
	}
	if len(rep.Errors) > 0 {
		for p, e := range rep.Errors {
			fmt.Fprintf(env.stderr, "%s: %s\n", p, e)
		}
		return withCode(exitFailure, fmt.Errorf("%d partition(s) failed (reported to the master)", len(rep.Errors)))
	}
	return nil
}

// jsonConverge is node converge --json.
type jsonConverge struct {
	Software  []jsonConvergeSoftware `json:"software"`
	Processed []string               `json:"processed"`
	UpToDate  []string               `json:"up_to_date"`
	Destroyed []string               `json:"destroyed"`
	Errors    []jsonPartitionError   `json:"errors"` // reported to the master
}

type jsonConvergeSoftware struct {
	URL string `json:"url"`
	// State: available, destroyed, or "error: …".
	State string `json:"state"`
}

type jsonPartitionError struct {
	Partition string `json:"partition"`
	Error     string `json:"error"`
}

func convergeJSON(rep *local.ConvergeReport) jsonConverge {
	out := jsonConverge{Software: []jsonConvergeSoftware{}, Processed: nonNil(rep.Processed), UpToDate: nonNil(rep.Skipped),
		Destroyed: nonNil(rep.Destroyed), Errors: []jsonPartitionError{}}
	for url, st := range rep.Software {
		out.Software = append(out.Software, jsonConvergeSoftware{url, st})
	}
	sort.Slice(out.Software, func(a, b int) bool { return out.Software[a].URL < out.Software[b].URL })
	for p, e := range rep.Errors {
		out.Errors = append(out.Errors, jsonPartitionError{p, e})
	}
	sort.Slice(out.Errors, func(a, b int) bool { return out.Errors[a].Partition < out.Errors[b].Partition })
	return out
}

func convergeErr(err error) error {
	if strings.Contains(err.Error(), local.ErrOffline.Error()) {
		return withCode(exitOffline, err)
	}
	return err
}

func list(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
