// Command slapbench runs slapnode side by side with zc.buildout on the same
// generated profiles, runs the Go benchmarks of the hot paths, and
// regenerates docs/benchmarks.md with its plots (docs/bench/*.png).
//
// It is what `make bench` runs; bench/README.md explains the method. Usage
// (from the repository root, after `make build`):
//
//	go run ./cmd/slapbench -repo .. [flags]   (from bench/, its own module)
//
// The buildout side is the peer's benchmark in ../shared/peers/buildout-bench,
// called from there: gen_buildout.py writes each profile and
// peer-buildout.py runs Debian's zc.buildout in its `lean` variant.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is everything the command line decides.
type config struct {
	repo       string // repository root (holds bin/slapnode, docs/)
	peer       string // the peer's buildout-bench directory
	work       string // scratch directory
	sizes      []int
	repeat     int
	goBench    bool
	sideBySide bool
	count      int
	quick      bool
	renderOnly bool
	out        string // docs/benchmarks.md
	plotDir    string // docs/bench
	command    string // the command line, for the page

	// The master benchmark (master.go) and the node's steady state
	// (steady.go).
	master        bool
	masterSeconds time.Duration
	masterRepeat  int
	slapos        string // slapos.core's `slapos` command, for slapproxy
	steady        bool
	steadyIdle    time.Duration
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slapbench:", err)
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "slapbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("slapbench", flag.ContinueOnError)
	c := &config{}
	sizes := fs.String("sizes", "10,100,1000", "numbers of parts of the generated profiles")
	fs.StringVar(&c.repo, "repo", ".", "repository root (bin/slapnode must be built)")
	fs.StringVar(&c.peer, "peer", "", "the peer's buildout-bench directory (default: ../shared/peers/buildout-bench next to the repository)")
	fs.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "slapbench"), "scratch directory (emptied first)")
	fs.IntVar(&c.repeat, "repeat", 5, "repetitions of each side-by-side pair")
	fs.IntVar(&c.count, "count", 3, "go test -count for the Go benchmarks")
	fs.BoolVar(&c.goBench, "go-bench", true, "run the Go benchmarks")
	fs.BoolVar(&c.sideBySide, "side-by-side", true, "run the zc.buildout / slapnode comparison")
	fs.BoolVar(&c.quick, "quick", false, "short Go benchmark times (development; figures are noisier)")
	fs.BoolVar(&c.renderOnly, "render-only", false, "re-render the page and plots from docs/bench/results.json")
	fs.StringVar(&c.out, "out", "", "page to regenerate (default REPO/docs/benchmarks.md)")
	fs.BoolVar(&c.master, "master", true, "measure slapnode's master (and slapproxy, when it can run) as processes")
	fs.DurationVar(&c.masterSeconds, "master-seconds", 3*time.Second, "duration of each master phase")
	fs.IntVar(&c.masterRepeat, "master-repeat", 3, "repetitions of the master phases")
	fs.StringVar(&c.slapos, "slapos", "", "slapos.core's `slapos` command, to run slapproxy (default: `slapos` on PATH)")
	fs.BoolVar(&c.steady, "steady", true, "measure a node's steady state (100 unchanged partitions, idle daemon)")
	fs.DurationVar(&c.steadyIdle, "steady-idle", time.Minute, "how long the idle daemon is watched")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			return nil, fmt.Errorf("-sizes: %q is not a number of parts >= 2", s)
		}
		c.sizes = append(c.sizes, n)
	}
	if c.repeat < 1 || c.count < 1 || c.masterRepeat < 1 {
		return nil, fmt.Errorf("-repeat, -count and -master-repeat must be >= 1")
	}
	if c.quick {
		c.masterSeconds, c.masterRepeat, c.steadyIdle = time.Second, 1, 10*time.Second
	}
	var err error
	if c.repo, err = filepath.Abs(c.repo); err != nil {
		return nil, err
	}
	if c.peer == "" {
		c.peer = findPeer(c.repo)
	}
	if c.out == "" {
		c.out = filepath.Join(c.repo, "docs", "benchmarks.md")
	}
	c.plotDir = filepath.Join(filepath.Dir(c.out), "bench")
	c.command = "make bench"
	if extra := benchArgs(args); extra != "" {
		c.command = "make bench BENCH_ARGS='" + extra + "'"
	}
	return c, nil
}

// benchArgs is the command line without -repo (which `make bench` always
// passes): what BENCH_ARGS was.
func benchArgs(args []string) string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-repo" || a == "--repo":
			i++
		case strings.HasPrefix(a, "-repo=") || strings.HasPrefix(a, "--repo="):
		default:
			out = append(out, a)
		}
	}
	return strings.Join(out, " ")
}

// findPeer looks for the shared peer benchmark where the project's layout
// puts it: next to the repository, or under /work/shared.
func findPeer(repo string) string {
	for _, d := range []string{
		filepath.Join(filepath.Dir(repo), "shared", "peers", "buildout-bench"),
		"/work/shared/peers/buildout-bench",
	} {
		if _, err := os.Stat(filepath.Join(d, "gen_buildout.py")); err == nil {
			return d
		}
	}
	return filepath.Join(filepath.Dir(repo), "shared", "peers", "buildout-bench")
}

// results is everything measured, kept in docs/bench/results.json so that
// the page can be re-rendered without measuring again.
type results struct {
	Machine    machine      `json:"machine"`
	Command    string       `json:"command"`
	Started    time.Time    `json:"started"`
	Finished   time.Time    `json:"finished"`
	Repeat     int          `json:"repeat"`
	SideBySide *sideBySide  `json:"side_by_side,omitempty"`
	GoBench    []goBenchRun `json:"go_bench,omitempty"`
	Master     *masterBench `json:"master,omitempty"`
	Steady     *steadyBench `json:"steady,omitempty"`
}

func run(c *config) error {
	jsonPath := filepath.Join(c.plotDir, "results.json")
	if c.renderOnly {
		var r results
		b, err := os.ReadFile(jsonPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", jsonPath, err)
		}
		if r.SideBySide != nil && r.SideBySide.Peer == nil {
			r.SideBySide.Peer = readPeer(c.peer) // results from before the cross-check existed
		}
		return publish(c, &r)
	}
	slapnode := filepath.Join(c.repo, "bin", "slapnode")
	if _, err := os.Stat(slapnode); err != nil {
		return fmt.Errorf("%s not found: run `make build` first", slapnode)
	}
	stopOnSignal(c, slapnode)
	r := &results{Command: c.command, Started: time.Now().UTC(), Repeat: c.repeat}
	r.Machine = describeMachine(c, slapnode)
	logf("machine: %d cores, %s; load average %s", r.Machine.Cores, r.Machine.CPU, r.Machine.LoadStart)
	if c.sideBySide {
		sb, err := runSideBySide(c, slapnode)
		if err != nil {
			return err
		}
		r.SideBySide = sb
	}
	if c.master {
		mb, err := runMasterBench(c, slapnode)
		if err != nil {
			return err
		}
		r.Master = mb
	}
	if c.steady {
		sb, err := runSteadyBench(c, slapnode)
		if err != nil {
			return err
		}
		r.Steady = sb
	}
	if c.goBench {
		r.GoBench = runGoBenchmarks(c)
	}
	r.Finished = time.Now().UTC()
	r.Machine.LoadEnd = loadAverage()
	if err := os.MkdirAll(c.plotDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return publish(c, r)
}

// publish draws the plots and regenerates the page.
func publish(c *config, r *results) error {
	plots, err := drawPlots(c.plotDir, r)
	if err != nil {
		return err
	}
	more, err := drawMasterPlots(c.plotDir, r)
	if err != nil {
		return err
	}
	plots = append(plots, more...)
	if err := writePage(c.out, r, plots); err != nil {
		return err
	}
	logf("wrote %s and %d plots in %s", c.out, len(plots), c.plotDir)
	return nil
}

// stopOnSignal stops the node daemons of the scratch roots when the run is
// interrupted: each `slapnode apply` starts one, and an interrupted
// benchmark must not leave them running.
func stopOnSignal(c *config, slapnode string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		roots, _ := filepath.Glob(filepath.Join(c.work, "runs", "slapnode-*"))
		roots = append(roots, filepath.Join(c.work, "cold-root"))
		for _, r := range roots {
			stopNode(slapnode, r)
		}
		logf("interrupted (%v)", sig)
		os.Exit(130)
	}()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
