package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// goBenchSpec is one `go test -bench` invocation of another package's
// benchmarks. Each stays runnable alone with the command the page prints.
type goBenchSpec struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Pkg       string   `json:"pkg"`
	Bench     string   `json:"bench"`
	Benchtime string   `json:"benchtime"`
	Env       []string `json:"env,omitempty"` // KEY=VALUE, paths relative to the repository
	NeedsRoot bool     `json:"needs_root,omitempty"`
}

// goBenchRun is the outcome of one spec: aggregated results, or why it
// was skipped.
type goBenchRun struct {
	goBenchSpec
	Command string          `json:"command"`
	Skipped string          `json:"skipped,omitempty"`
	Seconds float64         `json:"seconds"`
	Results []goBenchResult `json:"results,omitempty"`
}

// goBenchResult is one benchmark over its -count runs: per unit, the
// median and range.
type goBenchResult struct {
	Name    string                `json:"name"`
	Runs    int                   `json:"runs"`
	Metrics map[string]metricStat `json:"metrics"`
}

type metricStat struct {
	Median float64 `json:"median"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
}

// The benchmark IDs the page's target table looks up.
const (
	idApply     = "apply"
	idCallC     = "call-c"
	idRootMkdir = "root-mkdir"
	idCallCTrus = "call-c-trusted"
	idCallGo    = "call-go"
	idCallGoPub = "call-go-publish"
	idCallGoMk  = "call-go-mkdirectory"
	idCallGoTpl = "call-go-template"
	idRecheck   = "recheck"
	idSchema    = "schema"
	idCorpus    = "corpus"
	idPromise   = "promise"
	idFormat    = "format"
	idMaster    = "master"
	idSteady    = "steady"
)

func goBenchSpecs(quick bool) []goBenchSpec {
	bt := func(full, short string) string {
		if quick {
			return short
		}
		return full
	}
	cookbook := "SLAPNODE_BENCH_WASM=runtime/builtin/wasm/cookbook.wasm"
	return []goBenchSpec{
		{ID: idApply, Title: "engine: apply of generated profiles (in process, no daemon)", Pkg: "./partition", Bench: "Apply", Benchtime: bt("3x", "1x")},
		{ID: idCallC, Title: "recipe call, C guest (runtime/wasmhost/testdata/reactor.c), loaded as an untrusted module (stopped at its deadline by a fuel counter, docs/adr/0010)", Pkg: "./runtime/wasmhost", Bench: "CallC$|CallCommandC|FirstCallC", Benchtime: bt("1s", "200x")},
		{ID: idRootMkdir, Title: "one mkdir four levels down: straight, through the sandbox's os.Root from the mount, from a directory handle", Pkg: "./runtime/wasmhost", Bench: "RootMkdir", Benchtime: bt("2000x", "200x")},
		{ID: idCallCTrus, Title: "recipe call, the same C guest loaded as a trusted module (as built-in modules are: no per-loop termination checks)", Pkg: "./runtime/wasmhost", Bench: "CallWasm", Benchtime: bt("1s", "200x"),
			Env: []string{"SLAPNODE_BENCH_WASM=runtime/wasmhost/testdata/build/reactor.wasm"}},
		{ID: idCallGo, Title: "recipe call, Go guest (the cookbook; default input: recipe \"echo\", which the cookbook answers with an error result)", Pkg: "./runtime/wasmhost", Bench: "CallWasm", Benchtime: bt("1s", "200x"), Env: []string{cookbook}},
		{ID: idCallGoPub, Title: "recipe call, Go guest (the cookbook's `publish` recipe: no I/O)", Pkg: "./runtime/wasmhost", Bench: "CallWasm", Benchtime: bt("1s", "200x"),
			Env: []string{cookbook, "SLAPNODE_BENCH_INPUT=cmd/slapbench/testdata/call-publish.json"}},
		{ID: idCallGoMk, Title: "recipe call, Go guest (the cookbook's `mkdirectory`, input as the engine sends it: a fresh directory each call)", Pkg: "./runtime/wasmhost", Bench: "CallWasm", Benchtime: bt("1s", "200x"),
			Env: []string{cookbook, "SLAPNODE_BENCH_INPUT=cmd/slapbench/testdata/call-mkdirectory.json"}},
		{ID: idCallGoTpl, Title: "recipe call, Go guest (the cookbook's `template`: six lines of inline Jinja2 text written to a file)", Pkg: "./runtime/wasmhost", Bench: "CallWasm", Benchtime: bt("1s", "200x"),
			Env: []string{cookbook, "SLAPNODE_BENCH_INPUT=cmd/slapbench/testdata/call-template.json"}},
		{ID: idRecheck, Title: "engine: `--recheck` of an unchanged 1000-part release, from the recheck cache and by evaluating the profile (in process)", Pkg: "./partition", Bench: "Recheck", Benchtime: bt("20x", "2x")},
		{ID: idPromise, Title: "promises: one full run of 200 (20 partitions × 10, half TCP, half HTTP)", Pkg: "./partition/promise", Bench: ".", Benchtime: "1x"},
		{ID: idSchema, Title: "parameter validation (schema.Validator)", Pkg: "./schema", Bench: "Validate", Benchtime: bt("1s", "100x")},
		{ID: idCorpus, Title: ".cfg → HCL conversion of the public SlapOS corpus", Pkg: "./hcl/buildout", Bench: "Corpus", Benchtime: bt("5x", "1x")},
		{ID: idFormat, Title: "node format of 100 partitions", Pkg: "./node/format", Bench: "Format100", Benchtime: bt("3x", "1x"), NeedsRoot: true},
		{ID: idMaster, Title: "master (SLAP over loopback HTTP)", Pkg: "./node/master", Bench: ".", Benchtime: bt("1s", "100x")},
		{ID: idSteady, Title: "node: one unchanged pass of 100 partitions against a master (in process)", Pkg: "./node/local", Bench: "ConvergeUnchanged", Benchtime: bt("50x", "5x")},
	}
}

// runGoBenchmarks runs every spec whose package has benchmarks, appends the
// raw output (benchstat input) to docs/bench/go-bench.txt and aggregates.
func runGoBenchmarks(c *config) []goBenchRun {
	raw := &bytes.Buffer{}
	var runs []goBenchRun
	for _, sp := range goBenchSpecs(c.quick) {
		r := goBenchRun{goBenchSpec: sp}
		args := []string{"test", sp.Pkg, "-run", "^$", "-bench", sp.Bench, "-benchtime", sp.Benchtime, "-count", fmt.Sprint(c.count), "-timeout", "15m"}
		r.Command = strings.TrimSpace(strings.Join(sp.Env, " ") + " go " + shellJoin(args))
		if reason := benchAbsent(c.repo, sp); reason != "" {
			r.Skipped = reason
			logf("go bench %s: skipped: %s", sp.ID, reason)
			runs = append(runs, r)
			continue
		}
		logf("go bench %s: %s", sp.ID, r.Command)
		cmd := exec.Command("go", args...)
		cmd.Dir = c.repo
		cmd.Env = os.Environ()
		for _, e := range sp.Env {
			k, v, _ := strings.Cut(e, "=")
			if strings.Contains(v, "/") && !filepath.IsAbs(v) {
				v = filepath.Join(c.repo, v) // go test runs in the package directory
			}
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		r.Seconds = time.Since(start).Seconds()
		// A configuration line per run: benchstat makes a table per value,
		// so runs of the same benchmark on different guests stay apart.
		fmt.Fprintf(raw, "# %s\nslapbench: %s\n%s\n", r.Command, sp.ID, out)
		r.Results = parseBench(out)
		switch {
		case err != nil && len(r.Results) == 0:
			r.Skipped = "go test failed: " + lastLines(string(out), 4)
		case err != nil:
			r.Skipped = "partial: go test failed after some results: " + lastLines(string(out), 3)
		case len(r.Results) == 0:
			r.Skipped = "no benchmark matched: " + lastLines(string(out), 2)
		}
		logf("go bench %s: %d results in %.0fs%s", sp.ID, len(r.Results), r.Seconds, map[bool]string{true: " (" + r.Skipped + ")", false: ""}[r.Skipped != ""])
		runs = append(runs, r)
	}
	if err := os.MkdirAll(c.plotDir, 0o755); err == nil {
		if err := os.WriteFile(filepath.Join(c.plotDir, "go-bench.txt"), raw.Bytes(), 0o644); err != nil {
			logf("writing go-bench.txt: %v", err)
		}
	}
	return runs
}

// benchAbsent says why a spec cannot run here, or "".
func benchAbsent(repo string, sp goBenchSpec) string {
	dir := filepath.Join(repo, sp.Pkg)
	tests, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	has := false
	for _, t := range tests {
		b, _ := os.ReadFile(t)
		if bytes.Contains(b, []byte("\nfunc Benchmark")) {
			has = true
			break
		}
	}
	if !has {
		return fmt.Sprintf("package %s has no benchmark yet", sp.Pkg)
	}
	if sp.NeedsRoot && os.Geteuid() != 0 {
		return "needs root (users, cgroups, network namespace): run `make bench` as root"
	}
	for _, e := range sp.Env {
		_, v, _ := strings.Cut(e, "=")
		if strings.HasSuffix(v, ".wasm") || strings.HasSuffix(v, ".json") {
			if _, err := os.Stat(filepath.Join(repo, v)); err != nil {
				return fmt.Sprintf("%s is missing (make build runtime-testdata)", v)
			}
		}
	}
	return ""
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parseBench reads `go test -bench` output: every "value unit" pair of
// every line, grouped by benchmark name over the -count runs.
func parseBench(out []byte) []goBenchResult {
	vals := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := strings.TrimPrefix(m[1], "Benchmark")
		if vals[name] == nil {
			vals[name] = map[string][]float64{}
			order = append(order, name)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			vals[name][f[i+1]] = append(vals[name][f[i+1]], v)
		}
	}
	var res []goBenchResult
	for _, name := range order {
		r := goBenchResult{Name: name, Metrics: map[string]metricStat{}}
		for unit, xs := range vals[name] {
			lo, hi := minMax(xs)
			r.Metrics[unit] = metricStat{Median: median(xs), Lo: lo, Hi: hi}
			r.Runs = max(r.Runs, len(xs))
		}
		res = append(res, r)
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// shellJoin quotes the arguments that a shell would split or expand.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " $^|*?()[]'\"\\&;<>") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// units lists the units of a run's results in a stable order: time first,
// then the custom metrics, then memory.
func units(rs []goBenchResult) []string {
	seen := map[string]bool{}
	for _, r := range rs {
		for u := range r.Metrics {
			seen[u] = true
		}
	}
	rank := func(u string) int {
		switch u {
		case "ns/op":
			return 0
		case "B/op":
			return 8
		case "allocs/op":
			return 9
		case "MB/s":
			return 7
		}
		return 1
	}
	var us []string
	for u := range seen {
		us = append(us, u)
	}
	sort.Slice(us, func(i, j int) bool {
		if rank(us[i]) != rank(us[j]) {
			return rank(us[i]) < rank(us[j])
		}
		return us[i] < us[j]
	})
	return us
}
