package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/node/slap"
)

func init() {
	register(&command{
		name:    "node converge",
		summary: "one pass against a SLAP master: install, apply, publish, report (exit 3 when the master is unreachable)",
		usage: `Usage: slapnode node converge (--master URL [--node-id ID] [--partitions N] | --cfg slapos.cfg) [--root DIR] [--json]

Does once what 'slapnode node run --master URL' does periodically: registers
the node's partitions, fetches what the master wants of this node, installs
the supplied software releases, applies each partition in its requested state
(started, stopped, destroyed) with its parameters and software type,
publishes connection parameters and reports every outcome. Partitions whose
timestamp and state did not change since their last success are skipped.
Services are handed to the node daemon (started in the background if needed).

With --cfg (default $SLAPOS_CONFIGURATION), the node is the one a SlapOS
configuration describes, as for slapgrid: its master_url, computer_id,
key_file/cert_file (HTTPS with the node's certificate), master_ca_file and
certificate_repository_path (each partition's certificate, written there)
— see docs/master.md for every key. --master, --node-id and --partitions
given as well win over it. --master-ca FILE verifies an https master with
that CA (slapos.cfg's master_ca_file; SlapOS's own tools never verify the
master, so a slapos.cfg written by slapos node register has none).

With --json, what the pass did is printed as one JSON document.

Exit codes: 0 success, 1 a partition or release failed (reported to the
master) or the master refused the node's credential, 3 the master is
unreachable (services keep running), 64 usage error.

Examples:
  slapnode node converge --master http://127.0.0.1:8080 --node-id COMP-1
  sudo slapnode node converge --cfg /etc/opt/slapos/slapos.cfg --root /srv/slapnode
`,
		run: runNodeConverge,
	})
}

type nodeMasterFlags struct {
	master, nodeID, cfg string
	masterCA            string
	partitions          int
	interval            time.Duration
	set                 map[string]bool // flags given on the command line
}

func (m *nodeMasterFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&m.master, "master", "", "SLAP master URL")
	fs.StringVar(&m.nodeID, "node-id", "slapnode", "computer id on the master")
	fs.IntVar(&m.partitions, "partitions", 10, "partitions registered with the master")
	fs.DurationVar(&m.interval, "interval", 30*time.Second, "time between converge passes")
	fs.StringVar(&m.cfg, "cfg", os.Getenv(config.SlapOSConfigEnv), "SlapOS node configuration (slapos.cfg)")
	fs.StringVar(&m.masterCA, "master-ca", "", "CA certificate to verify an https master with")
}

// visit records which flags were given, so that slapos.cfg fills the
// others.
func (m *nodeMasterFlags) visit(fs *flag.FlagSet) {
	m.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m.set[f.Name] = true })
}

// nodeMaster is how a node reaches its master: from the flags, or from a
// SlapOS configuration (slapos.cfg) as slapgrid reads it.
type nodeMaster struct {
	client     *slap.Client
	computerID string
	partitions int
	certRepo   string
	slapos     *config.SlapOSConfig // nil without --cfg
}

// resolve builds the master client: --cfg (default $SLAPOS_CONFIGURATION)
// supplies the master URL, the node's id and certificate, the master's CA
// and the certificate repository; --master, --node-id and --partitions
// given on the command line win over it.
func (m *nodeMasterFlags) resolve(env *cliEnv) (*nodeMaster, error) {
	nm := &nodeMaster{computerID: m.nodeID, partitions: m.partitions}
	var opts []slap.ClientOption
	url := m.master
	if m.cfg != "" && !(m.set["master"] && !m.set["cfg"]) {
		c, err := config.LoadSlapOS(m.cfg)
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		nm.slapos = c
		if !m.set["master"] {
			url = c.MasterURL
		}
		if !m.set["node-id"] {
			nm.computerID = c.ComputerID
		}
		if !m.set["partitions"] && c.PartitionAmount > 0 {
			nm.partitions = c.PartitionAmount
		}
		nm.certRepo = c.CertificateRepositoryPath
		ca := c.MasterCAFile
		if m.masterCA != "" {
			ca = m.masterCA
		}
		if strings.HasPrefix(url, "https:") || c.CertFile != "" || ca != "" {
			opts = append(opts, slap.WithTLS(slap.TLSFiles{CertFile: c.CertFile, KeyFile: c.KeyFile, CAFile: ca}))
		}
	} else if m.masterCA != "" {
		opts = append(opts, slap.WithTLS(slap.TLSFiles{CAFile: m.masterCA}))
	}
	if url == "" {
		return nil, nil
	}
	client, err := slap.NewClient(url, opts...)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	nm.client = client
	return nm, nil
}

// report says what a slapos.cfg gave, and what of it slapnode leaves aside,
// once at start: to w, or to logger when it is set (in the daemon).
func (nm *nodeMaster) report(w io.Writer, logger *slog.Logger, n *local.Node) {
	if logger != nil {
		var buf bytes.Buffer
		defer func() {
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if l != "" {
					logger.Info(l)
				}
			}
		}()
		w = &buf
	}
	c := nm.slapos
	if c == nil {
		return
	}
	auth := "no client certificate"
	if c.CertFile != "" {
		auth = "certificate " + c.CertFile
	}
	fmt.Fprintf(w, "%s: node %s of master %s (%s); partition certificates in %s\n", c.File, nm.computerID, c.MasterURL, auth, dash(c.CertificateRepositoryPath))
	if p, err := n.Partition("slappart0"); err == nil && c.InstanceRoot != "" && filepath.Dir(p.Path) != filepath.Clean(c.InstanceRoot) {
		fmt.Fprintf(w, "%s: instance_root %s: this node keeps its partitions in %s (format it with 'slapnode node format --cfg %s' to use %s)\n",
			c.File, c.InstanceRoot, filepath.Dir(p.Path), c.File, c.InstanceRoot)
	}
	if sw := n.SoftwareRoot(); c.SoftwareRoot != "" && sw != filepath.Clean(c.SoftwareRoot) {
		fmt.Fprintf(w, "%s: software_root %s: this node installs releases in %s (format it with 'slapnode node format --cfg %s' to use %s; releases slapgrid built there with buildout are not reused: slapnode keeps its own state in a release's directory)\n",
			c.File, c.SoftwareRoot, sw, c.File, c.SoftwareRoot)
	}
	// One line per reason and section: [networkcache] alone has a dozen keys.
	type group struct {
		section, why string
		keys         []string
	}
	var groups []*group
	index := map[[2]string]*group{}
	for _, s := range c.Ignored {
		k := [2]string{s.Section, s.Why}
		g := index[k]
		if g == nil {
			g = &group{section: s.Section, why: s.Why}
			index[k] = g
			groups = append(groups, g)
		}
		g.keys = append(g.keys, s.Key)
	}
	for _, g := range groups {
		fmt.Fprintf(w, "%s: ignored [%s] %s: %s\n", c.File, g.section, strings.Join(g.keys, ", "), g.why)
	}
}

// converger joins a node to a master from inside `node run`: the daemon's
// own socket serves as the supervisor, FATAL services bang.
type converger struct {
	node   *local.Node
	client *slap.Client
	banger *local.Banger
	opts   local.ConvergeOptions
	mf     nodeMasterFlags
	logger *slog.Logger
}

func newConverger(ctx context.Context, env *cliEnv, root string, mf nodeMasterFlags, nm *nodeMaster, logger *slog.Logger) (*converger, error) {
	n, err := local.Open(ctx, root, nil)
	if err != nil {
		return nil, err
	}
	nm.report(env.stderr, logger, n)
	client := nm.client
	return &converger{
		node: n, client: client, mf: mf, logger: logger,
		banger: local.NewBanger(n.Root, client, nm.computerID),
		opts: local.ConvergeOptions{Master: client, ComputerID: nm.computerID, Partitions: nm.partitions, PromiseWait: 30 * time.Second,
			UsageEvery: 10 * time.Minute, CertificateRepository: nm.certRepo},
	}, nil
}

func (c *converger) close() { c.node.Close(context.Background()) }

func (c *converger) run(ctx context.Context) {
	svc, err := daemon.Dial(c.node.Root)
	if err != nil {
		c.logger.Error("the converge loop cannot reach the daemon", "err", err)
		return
	}
	defer svc.Close()
	o := c.opts
	o.Services = svc
	c.node.Converge(ctx, o, c.mf.interval, c.logger)
}

func (c *converger) bang(partition, service, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := fmt.Sprintf("service %s is FATAL: %s", service, reason)
	if err := c.banger.Bang(ctx, partition, msg); err != nil {
		c.logger.Error("cannot bang the partition", "partition", partition, "service", service, "err", err)
	}
}

// bangPromise bangs a partition whose promise shows an anomaly.
func (c *converger) bangPromise(partition, promise, message string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.banger.Bang(ctx, partition, fmt.Sprintf("promise %s is failing: %s", promise, message)); err != nil {
		c.logger.Error("cannot bang the partition", "partition", partition, "promise", promise, "err", err)
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
	mf.visit(fs)
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help node converge')", pos[0]))
	}
	nm, err := mf.resolve(env)
	if err != nil {
		return err
	}
	if nm == nil {
		return withCode(exitUsage, fmt.Errorf("give --master URL or --cfg slapos.cfg (see 'slapnode help node converge')"))
	}
	ctx, cancel := signalContext()
	defer cancel()
	out := env.out()
	if *asJSON {
		out = nil
	}
	n, err := local.Open(ctx, *root, out)
	if err != nil {
		return err
	}
	defer n.Close(context.Background())
	nm.report(env.stderr, nil, n)
	n.Engine.Verbose = env.verbose
	n.Engine.Step = env.step
	o := local.ConvergeOptions{Master: nm.client, ComputerID: nm.computerID, Partitions: nm.partitions, PromiseWait: 30 * time.Second,
		UsageEvery: 10 * time.Minute, CertificateRepository: nm.certRepo}
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
	var cerr *slap.CertificateError
	if errors.As(err, &cerr) {
		return withCode(exitFailure, err)
	}
	if errors.Is(err, slap.ErrAuth) {
		return withCode(exitFailure, fmt.Errorf("%w\n(the master refused this node's credential)", err))
	}
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
