package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/schema"
)

// The command is "test"; its file is not cmd_test.go, which Go would take
// for a test file.
func init() {
	register(&command{
		name:    "test",
		summary: "test a software release: install, instantiate every type, check promises, clean up",
		usage: `Usage: slapnode test PROFILE [--type T] [--params F] [flags]

SlapOS's software-release test in one command: installs the software release
PROFILE in a throwaway node root, instantiates each of its software types with
its example parameters, starts their services under an in-process supervisor,
waits for their promises to pass, prints a report, stops everything and
removes the node root. Exits non-zero when anything failed.

Example parameters of a type are the first entry of the "examples" list of
its parameter schema, else its defaults (an empty object). Shared (slave)
types are skipped unless named with --type.

Flags:
  --type T         test only software type T
  --params F       instance parameters (a JSON object file) for the tested type(s)
  --wait D         how long promises may take to pass (default 60s)
  --keep           keep the throwaway node root (its path is printed) for inspection
  --json           print the report as JSON
  -v               print the install and instantiation messages as they happen

Exit codes: 0 every type passed, 1 a failure.

Examples:
  slapnode test examples/helloweb/software.hcl
  slapnode test examples/helloweb/software.hcl --params greeting.json --type default
`,
		run: runSelfTest,
	})
}

// selfTestOptions say what to test.
type selfTestOptions struct {
	Profile string
	Type    string
	Params  map[string]any // nil: each type's example parameters
	Wait    time.Duration
	Keep    bool
	Log     io.Writer // progress messages; nil discards them
	// Step shows long steps (partition.Engine.Step); nil shows nothing.
	Step func(what string) (done func())
}

// selfTestReport is the outcome of one `slapnode test`.
type selfTestReport struct {
	Profile  string           `json:"profile"`
	Root     string           `json:"root,omitempty"` // kept node root
	Software string           `json:"software"`
	Install  selfTestStep     `json:"install"`
	Types    []selfTestResult `json:"types"`
	Skipped  []string         `json:"skipped"`
	Passed   bool             `json:"passed"`
}

type selfTestStep struct {
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"-"`
	// DurationMS is Duration for JSON (set by runSelfTest).
	DurationMS float64 `json:"duration_ms"`
	Summary    string  `json:"summary,omitempty"`
}

type selfTestResult struct {
	Type       string         `json:"software_type"`
	Params     map[string]any `json:"parameters"`
	OK         bool           `json:"ok"`
	Error      string         `json:"error,omitempty"`
	Duration   time.Duration  `json:"-"`
	DurationMS float64        `json:"duration_ms"`
	Promises   []string       `json:"promises"`
	Connection map[string]any `json:"connection"`
}

// selfTestExampleParams returns the first example of a parameter schema, or an
// empty object.
func selfTestExampleParams(schemaPath string) (map[string]any, error) {
	if schemaPath == "" {
		return map[string]any{}, nil
	}
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		return nil, err
	}
	var s struct {
		Examples []any `json:"examples"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", schemaPath, err)
	}
	for _, ex := range s.Examples {
		if m, ok := ex.(map[string]any); ok {
			return m, nil
		}
	}
	return map[string]any{}, nil
}

// selfTest runs the whole test in a throwaway node root and always cleans
// up what it started. The error is for failures of the test harness; a
// failing release is a report with Passed false.
func selfTest(ctx context.Context, o selfTestOptions) (*selfTestReport, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	rep := &selfTestReport{Profile: o.Profile}
	root, err := os.MkdirTemp("", "slapnode-test-")
	if err != nil {
		return nil, err
	}
	// Partitions are entered by their services' users; rootless it is us.
	os.Chmod(root, 0o755)
	if o.Keep {
		rep.Root = root
	} else {
		defer selfTestRemoveTree(root)
	}
	// Compiling the cookbook takes seconds; compiled code is keyed by
	// module digest and wazero version, so the throwaway node shares a
	// persistent compilation cache.
	if ucd, err := os.UserCacheDir(); err == nil {
		shared := filepath.Join(ucd, "slapnode", "wazero")
		if os.MkdirAll(shared, 0o755) == nil && os.MkdirAll(filepath.Join(root, "cache"), 0o755) == nil {
			os.Symlink(shared, filepath.Join(root, "cache", "wazero"))
		}
	}
	if err := selfTestReservePartitions(root); err != nil {
		return nil, err
	}
	n, err := local.Open(ctx, root, log)
	if err != nil {
		return nil, err
	}
	defer n.Close(context.WithoutCancel(ctx))
	n.Engine.Step = o.Step
	sup, err := supervisor.New(supervisor.Options{StateDir: filepath.Join(root, "var", "supervisor")})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		sup.Shutdown(sctx)
	}()
	svc := local.InProcess(sup)

	sw, err := n.Engine.LoadSoftware(o.Profile)
	if err != nil {
		rep.Install = selfTestStep{Error: err.Error()}
		return rep, nil
	}
	rep.Software = sw.Info.Name
	start := time.Now()
	done := n.Engine.BeginStep("installing " + sw.Info.Name)
	err = n.Engine.InstallSoftware(ctx, sw, false, false)
	done()
	rep.Install.Duration = time.Since(start)
	if err != nil {
		rep.Install.Error = err.Error()
		return rep, nil
	}
	rep.Install.OK = true
	if sw.Report != nil {
		rep.Install.Summary = sw.Report.Summary()
	}
	var names []string
	for name, it := range sw.Types {
		switch {
		case o.Type != "" && name != o.Type:
		case o.Type == "" && it.Shared:
			rep.Skipped = append(rep.Skipped, name+" (shared: test it with --type "+name+")")
		default:
			names = append(names, name)
		}
	}
	sort.Strings(names)
	sort.Strings(rep.Skipped)
	if o.Type != "" && len(names) == 0 {
		var known []string
		for name := range sw.Types {
			known = append(known, name)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("software %s has no type %q (it has: %s)", sw.Info.Name, o.Type, strings.Join(known, ", "))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("software %s has no software type to test: add an instance block", sw.Info.Name)
	}
	var applied []string
	defer func() {
		// Destroying stops the services and empties the partitions; a
		// kept root is left as it is for inspection (Shutdown below stops
		// its services).
		if o.Keep {
			return
		}
		for _, name := range applied {
			n.Apply(context.WithoutCancel(ctx), o.Profile, local.ApplyOptions{Name: name, State: local.StateDestroyed, Services: svc})
		}
	}()
	for _, name := range names {
		res := selfTestResult{Type: name, Params: o.Params}
		if res.Params == nil {
			if res.Params, err = selfTestExampleParams(sw.Types[name].Parameters); err != nil {
				res.Error = "example parameters: " + err.Error()
				rep.Types = append(rep.Types, res)
				continue
			}
		}
		fmt.Fprintf(log, "testing software type %s\n", name)
		inst := "test-" + name
		start := time.Now()
		ar, err := n.Apply(ctx, o.Profile, local.ApplyOptions{
			Name: inst, Type: name, Params: res.Params, PromiseWait: o.Wait, Services: svc,
		})
		res.Duration = time.Since(start)
		if ar != nil && ar.Record != nil {
			applied = append(applied, inst)
			res.Connection = ar.Record.Connection
		}
		if ar != nil {
			for _, p := range ar.Promises {
				status := "ok"
				if !p.OK {
					status = "FAILED: " + p.Message
				}
				res.Promises = append(res.Promises, p.Name+" "+status)
			}
		}
		if err != nil {
			res.Error = err.Error()
		} else if bad := selfTestDeadServices(sup, ar.Partition.ID); bad != "" {
			// Promises can pass against something else listening at the
			// same address; a service that already failed is a failure.
			res.Error = bad
		} else {
			res.OK = true
		}
		rep.Types = append(rep.Types, res)
		if ctx.Err() != nil {
			break
		}
	}
	rep.Passed = len(rep.Types) == len(names)
	for _, r := range rep.Types {
		rep.Passed = rep.Passed && r.OK
	}
	return rep, nil
}

// selfTestDeadServices describes the services of a partition that are
// failing or have given up, or returns "".
func selfTestDeadServices(sup *supervisor.Supervisor, part string) string {
	var bad []string
	for _, st := range sup.Status() {
		if st.Partition != part || !st.Watch {
			continue
		}
		if st.State == supervisor.StateBackoff || st.State == supervisor.StateFatal || st.State == supervisor.StateExited {
			bad = append(bad, fmt.Sprintf("service %s is %s (last exit: %s; log %s)", st.Name, st.State, st.LastExit, st.Log))
		}
	}
	return strings.Join(bad, "; ")
}

// selfTestReservePartitions makes the throwaway node allocate its
// partitions from a random number instead of slappart0. Rootless, a
// partition's address follows from its number (slappartN listens on
// 127.1.x.y), so every node root's slappart0 is 127.1.0.1: a test next to a
// running demo (or another test) would bind the same ports, and its
// promises could pass against the other node's services. The node takes
// the first partition its registry does not use, so the registry is seeded
// with reserved records for the numbers below the chosen one.
func selfTestReservePartitions(root string) error {
	first := 20 + rand.IntN(230)
	reg := struct {
		Instances map[string]*local.InstanceRecord `json:"instances"`
	}{Instances: map[string]*local.InstanceRecord{}}
	for i := 0; i < first; i++ {
		name := fmt.Sprintf("reserved-by-slapnode-test-%d", i)
		reg.Instances[name] = &local.InstanceRecord{Name: name, Partition: fmt.Sprintf("slappart%d", i), State: local.StateDestroyed}
	}
	b, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "instances.json"), b, 0o600)
}

// selfTestRemoveTree removes a node root, including the read-only directories
// builds leave behind.
func selfTestRemoveTree(p string) {
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o755)
		}
		return nil
	})
	os.RemoveAll(p)
}

func runSelfTest(env *cliEnv, args []string) error {
	fs := newFlags("test")
	typ := fs.String("type", "", "software type")
	paramsFile := fs.String("params", "", "parameters file")
	wait := fs.Duration("wait", 60*time.Second, "promise wait")
	keep := fs.Bool("keep", false, "keep the node root")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, errors.New("give one software profile, e.g. slapnode test examples/helloweb/software.hcl"))
	}
	o := selfTestOptions{Profile: pos[0], Type: *typ, Wait: *wait, Keep: *keep, Step: env.step}
	if *paramsFile != "" {
		f, err := os.Open(*paramsFile)
		if err != nil {
			return err
		}
		p, err := schema.DecodeJSON(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--params %s: %w", *paramsFile, err)
		}
		o.Params = p
	}
	var logBuf bytes.Buffer
	o.Log = &logBuf
	if env.verbose && !*asJSON {
		o.Log = env.stdout
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := selfTest(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		rep.Install.DurationMS = ms(rep.Install.Duration)
		rep.Types, rep.Skipped = nonNil(rep.Types), nonNil(rep.Skipped)
		for i := range rep.Types {
			r := &rep.Types[i]
			r.DurationMS, r.Promises, r.Params, r.Connection = ms(r.Duration), nonNil(r.Promises), userData(r.Params), connectionJSON(r.Connection)
		}
		if err := env.writeJSON(rep); err != nil {
			return err
		}
	} else {
		printSelfTest(env.stdout, rep)
		if !rep.Passed && !env.verbose && logBuf.Len() > 0 {
			fmt.Fprintf(env.stdout, "\nlog of the run:\n%s", selfTestIndent(logBuf.String()))
		}
	}
	if !rep.Passed {
		return withCode(exitFailure, fmt.Errorf("%s: FAIL", pos[0]))
	}
	return nil
}

func printSelfTest(w io.Writer, rep *selfTestReport) {
	fmt.Fprintf(w, "test of %s\n", rep.Profile)
	if !rep.Install.OK {
		fmt.Fprintf(w, "  install: FAILED after %s\n%s\n", rep.Install.Duration.Round(time.Millisecond), selfTestIndent(rep.Install.Error))
	} else {
		sum := rep.Install.Summary
		if sum == "" {
			sum = "already installed"
		}
		fmt.Fprintf(w, "  install of %s: ok in %s (%s)\n", rep.Software, rep.Install.Duration.Round(time.Millisecond), sum)
	}
	for _, r := range rep.Types {
		status := "ok"
		if !r.OK {
			status = "FAILED"
		}
		params, _ := json.Marshal(r.Params)
		fmt.Fprintf(w, "  type %s: %s in %s, parameters %s\n", r.Type, status, r.Duration.Round(time.Millisecond), params)
		for _, p := range r.Promises {
			fmt.Fprintf(w, "    promise %s\n", p)
		}
		if len(r.Connection) > 0 {
			keys := make([]string, 0, len(r.Connection))
			for k := range r.Connection {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "    %s = %v\n", k, r.Connection[k])
			}
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%s\n", selfTestIndent(r.Error))
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "  type %s: skipped\n", s)
	}
	if rep.Root != "" {
		fmt.Fprintf(w, "  node root kept in %s\n", rep.Root)
	}
	verdict := "PASS"
	if !rep.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s (%d type(s) tested)\n", verdict, len(rep.Types))
}

func selfTestIndent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}
