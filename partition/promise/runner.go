package promise

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// PartitionRef is a partition whose promises run, with its software (the
// checks read both, read-only).
type PartitionRef struct {
	partition.Partition
	SoftwarePath, SoftwareURL string
}

// RunOptions say which promises run and how.
type RunOptions struct {
	// Anomaly runs in anomaly mode (the daemon: results are "Anomaly
	// Result", promises with anomaly = false are skipped, a failure may
	// bang). The default is test mode (apply, slapnode promise run).
	Anomaly bool
	// Force runs every promise now; otherwise a promise whose periodicity
	// has not elapsed since its last run keeps its saved result.
	Force bool
	// Only restricts the run to these promise names (legacy ones included).
	Only []string
	// Settle retries failing promises until they pass or Settle has elapsed
	// (services need a moment to listen after apply starts them). Retries
	// are forced.
	Settle time.Duration
	// Specs, when not nil, are the promises to run instead of the saved ones
	// (apply passes FromPartition's, which keep its loaded modules).
	Specs []Spec
	// NoLegacy leaves out the executables of etc/promise and the plugins
	// of etc/plugin.
	NoLegacy bool
	// PythonPlugins, with Specs, says the instance grants python3 to its
	// etc/plugin promises (otherwise as SavePluginGrant recorded it).
	PythonPlugins bool
}

// Runner runs promises. Its zero value needs Host for WebAssembly checks.
type Runner struct {
	Host *wasmhost.Host
	// Services answers check_service_running; nil makes that check fail
	// saying the daemon is not running.
	Services Services
	// Workers bounds the promises sensed at once, over all partitions;
	// default 16 (checks mostly wait on the network or a program).
	Workers int
	// Log receives the guests' log lines; nil discards them.
	Log io.Writer

	mu      sync.Mutex
	modules map[string]*wasmhost.Module
}

// task is one promise of one partition in a run.
type task struct {
	part *partState
	spec *Spec
	res  Result
}

// partState holds what the promises of one partition share during a run.
type partState struct {
	ref      *PartitionRef
	pctx     map[string]any
	uid, gid int
}

// lane is a sequence of promises of one partition run one after the other
// by one worker, on one WebAssembly session (a session runs one call per
// module at a time, and instantiating the cookbook costs more than most
// checks: few sessions, well used, beat one per promise).
type lane struct {
	part  *partState
	tasks []*task
	sess  *wasmhost.Session
}

// RunPartition runs the promises of one partition (see Run).
func (r *Runner) RunPartition(ctx context.Context, p PartitionRef, o RunOptions) ([]Result, error) {
	return r.Run(ctx, []PartitionRef{p}, o)
}

// Run runs the promises of every given partition concurrently, on at most
// Workers goroutines, writes their results and logs in each partition, and
// returns the results in partition order, then promise order (saved specs,
// then legacy executables). A partition whose promises cannot be read is
// an error, joined with the others; its siblings still run.
func (r *Runner) Run(ctx context.Context, parts []PartitionRef, o RunOptions) ([]Result, error) {
	var tasks []*task
	var errs []error
	for i := range parts {
		p := &parts[i]
		// Each partition gets its own copy: legacy promises are appended.
		specs := slices.Clone(o.Specs)
		python := o.PythonPlugins
		if o.Specs == nil {
			var err error
			if specs, err = LoadSpecs(p.Partition); err != nil {
				errs = append(errs, fmt.Errorf("partition %s: %w", p.ID, err))
				continue
			}
			python = pluginGrant(p.Partition)
		}
		if !o.NoLegacy {
			legacy, _ := legacySpecs(p.Path, DefaultTimeout)
			legacy = append(legacy, pluginSpecs(p.Path, DefaultTimeout, python)...)
			for _, l := range legacy {
				if !slices.ContainsFunc(specs, func(s Spec) bool { return s.Name == l.Name }) {
					specs = append(specs, l)
				}
			}
		}
		ps := &partState{ref: p, uid: -1, gid: -1, pctx: map[string]any{
			"kind":      "instance",
			"partition": map[string]any{"id": p.ID, "path": p.Path, "user": p.User, "ipv4": p.IPv4, "ipv6": p.IPv6},
			"software":  map[string]any{"path": p.SoftwarePath, "url": p.SoftwareURL},
		}}
		if p.Credential != nil {
			ps.uid, ps.gid = int(p.Credential.Uid), int(p.Credential.Gid)
		}
		for j := range specs {
			if len(o.Only) > 0 && !slices.Contains(o.Only, specs[j].Name) {
				continue
			}
			tasks = append(tasks, &task{part: ps, spec: &specs[j]})
		}
	}
	deadline := time.Now().Add(o.Settle)
	pending := tasks
	force := o.Force
	for {
		r.pool(ctx, pending, o.Anomaly, force)
		var again []*task
		for _, t := range pending {
			// A promise with both modes disabled is a profile error that
			// no retry fixes.
			if t.res.Failed() && !t.res.Cached && (t.spec.Test || t.spec.Anomaly) {
				again = append(again, t)
			}
		}
		if len(again) == 0 || o.Settle <= 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
		pending, force = again, true
	}
	out := make([]Result, len(tasks))
	for i, t := range tasks {
		out[i] = t.res
	}
	return out, errors.Join(errs...)
}

// pool runs tasks on at most Workers goroutines. The tasks of a partition
// are split into as many lanes as its share of the workers (at least one),
// so that every partition progresses and no session sits idle.
func (r *Runner) pool(ctx context.Context, tasks []*task, anomaly, force bool) {
	n := r.Workers
	if n <= 0 {
		n = 16
	}
	var order []*partState
	byPart := map[*partState][]*task{}
	for _, t := range tasks {
		if byPart[t.part] == nil {
			order = append(order, t.part)
		}
		byPart[t.part] = append(byPart[t.part], t)
	}
	var lanes []*lane
	share := max(1, (n+len(order)-1)/max(1, len(order)))
	for _, ps := range order {
		ts := byPart[ps]
		k := min(share, len(ts))
		first := len(lanes)
		for range k {
			lanes = append(lanes, &lane{part: ps})
		}
		for i, t := range ts {
			l := lanes[first+i%k]
			l.tasks = append(l.tasks, t)
		}
	}
	ch := make(chan *lane)
	var wg sync.WaitGroup
	for range min(n, len(lanes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range ch {
				for _, t := range l.tasks {
					t.res = r.runOne(ctx, l, t.spec, anomaly, force)
				}
				if l.sess != nil {
					l.sess.Close(context.WithoutCancel(ctx))
				}
			}
		}()
	}
	for _, l := range lanes {
		ch <- l
	}
	close(ch)
	wg.Wait()
}

// runOne runs one promise as SlapOS's launcher does: periodicity, sense,
// log, test/anomaly decision, result file, cache.
func (r *Runner) runOne(ctx context.Context, l *lane, s *Spec, anomaly, force bool) Result {
	ps := l.part
	p := ps.ref
	start := time.Now()
	res := Result{Partition: p.ID, Name: s.Name, Check: s.Check, Type: TestResult, Legacy: s.legacy != "", Date: start}
	if anomaly {
		res.Type = AnomalyResult
	}
	every := time.Duration(s.Every)
	if every <= 0 {
		every = DefaultEvery
	}
	res.NextRun = start.Add(every)
	title := s.Name
	if title == "" || title == "." || title == ".." || strings.ContainsAny(title, "/\x00") {
		// Its files would land outside the promise directories.
		res.Message = fmt.Sprintf("invalid promise name %q: a promise name is a file name (no \"/\")", title)
		return res
	}
	if !s.Test && !s.Anomaly {
		res.Message = msgBothDisabled
		r.save(ps, s, &res, start, anomaly)
		return res
	}
	if (anomaly && !s.Anomaly) || (!anomaly && !s.Test) {
		res.OK, res.Skipped = true, true
		res.Message = "not run in " + strings.ToLower(res.Type[:strings.IndexByte(res.Type, ' ')]) + " mode"
		return res
	}
	if !force {
		if c, err := readCache(p.Path, cacheRel(title)); err == nil && start.Before(fromUnixFloat(c.NextRunAfter)) {
			if saved, err := ReadResult(p.Path, title); err == nil {
				saved.Partition, saved.Check, saved.Legacy, saved.Cached = p.ID, s.Check, res.Legacy, true
				saved.NextRun = fromUnixFloat(c.NextRunAfter)
				saved.CanBang = anomaly && !saved.OK && !res.Legacy
				return *saved
			}
		}
	}
	timeout := time.Duration(s.Timeout)
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Loading (compiling, on first use) a module is the node's work, not the
	// promise's: it is not counted in the promise's timeout.
	var mod *wasmhost.Module
	if _, isNative := native(s); !isNative {
		var err error
		if mod, err = r.module(ctx, s); err != nil {
			res.Message = err.Error()
			res.Duration = time.Since(start)
			r.save(ps, s, &res, start, anomaly)
			return res
		}
	}
	ok, msg, timedOut := r.sense(ctx, l, s, mod, timeout)
	res.Duration = time.Since(start)
	if ctx.Err() != nil {
		// The run was cancelled (node stopping): this says nothing about
		// the promise, so nothing is recorded.
		res.Message = msg
		return res
	}
	if timedOut {
		// As SlapOS: a killed promise leaves no sense in its log. In anomaly
		// mode it counts as a failure only after a failed result.
		res.TimedOut = true
		res.Message = TimeoutMessage(timeout)
		res.OK = false
		if anomaly {
			if prev, err := ReadResult(p.Path, title); err != nil || (prev.OK && !strings.Contains(strings.ToLower(prev.Message), "error:")) {
				res.OK = true
			}
		}
	} else {
		if err := appendLog(p.Path, logRel(title), start, ok, msg, ps.uid, ps.gid); err != nil {
			res.Message = err.Error()
			r.save(ps, s, &res, start, anomaly)
			return res
		}
		count, failures := 1, 1
		if anomaly {
			count, failures = max(s.FailureAmount, 1), max(s.FailureAmount, 1)
		}
		hist, err := readHistory(p.Path, logRel(title), count)
		if err != nil {
			res.Message = err.Error()
		} else {
			res.OK, res.Message = decide(hist, count, failures, s.LatestMinute, time.Now())
		}
	}
	res.Message = truncate(res.Message)
	res.CanBang = anomaly && !res.OK && !res.Legacy
	r.save(ps, s, &res, start, anomaly)
	return res
}

// save writes the result file and the periodicity cache. A failure to write
// them fails the result, saying why.
func (r *Runner) save(ps *partState, s *Spec, res *Result, start time.Time, anomaly bool) {
	p := ps.ref
	name, path := s.Name, SpecsPath(p.Partition)
	if s.legacy != "" {
		path = s.legacy
	}
	if s.plugin != "" {
		// SlapOS names a plugin's result after its file (NAME.py) and
		// titles it NAME.
		name, path = filepath.Base(s.plugin), s.plugin
	}
	data := statusFile(s.Name, name, path, float64(res.Duration.Milliseconds())/1000, res.Type, !res.OK, res.Date, res.Message)
	err := writeFile(p.Path, resultRel(s.Name), data, ps.uid, ps.gid)
	if err == nil {
		c := cache{IsTested: s.Test, IsAnomalyDetected: s.Anomaly, Periodicity: time.Duration(s.Every).Minutes(),
			NextRunAfter: unixFloat(res.NextRun), Timestamp: unixFloat(time.Now()), ModuleFile: path}
		if st, serr := os.Stat(path); serr == nil {
			c.ModuleFileMtime = unixFloat(st.ModTime())
		}
		b, _ := json.Marshal(c)
		err = writeFile(p.Path, cacheRel(s.Name), b, ps.uid, ps.gid)
	}
	if err != nil {
		res.OK = false
		res.Message = fmt.Sprintf("%s (and its result could not be saved: %v)", res.Message, err)
	}
}

type senseOut struct {
	ok  bool
	msg string
}

// sense runs the check once, giving up at timeout: a check stuck in a host
// call may linger, but the promise is reported timed out then, and the
// lane's session is replaced (closed once that call is over).
func (r *Runner) sense(ctx context.Context, l *lane, s *Spec, mod *wasmhost.Module, timeout time.Duration) (ok bool, msg string, timedOut bool) {
	var sess *wasmhost.Session
	if mod != nil {
		var err error
		if sess, err = l.session(r); err != nil {
			return false, err.Error(), false
		}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan senseOut, 1)
	go func() {
		ok, msg := r.check(cctx, l.part, s, mod, sess)
		done <- senseOut{ok, msg}
	}()
	var o senseOut
	select {
	case o = <-done:
		if cctx.Err() != nil && sess != nil {
			// Cut by the deadline: the instance may be mid-call state.
			l.sess = nil
			sess.Close(context.WithoutCancel(ctx))
		}
		if !o.ok && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return false, "", true
		}
		return o.ok, o.msg, false
	case <-cctx.Done():
		if sess != nil {
			l.sess = nil
			go func() {
				<-done
				sess.Close(context.Background())
			}()
		}
		if ctx.Err() != nil {
			return false, "promise run cancelled: " + ctx.Err().Error(), false
		}
		return false, "", true
	}
}

// check senses once: natively for host checks, else promise_check of mod
// in sess.
func (r *Runner) check(ctx context.Context, ps *partState, s *Spec, mod *wasmhost.Module, sess *wasmhost.Session) (bool, string) {
	opts := s.Options
	if len(opts) == 0 || string(opts) == "null" {
		opts = json.RawMessage("{}")
	}
	if fn, ok := native(s); ok {
		return fn(ctx, r, ps.ref, opts)
	}
	_, checkName, _ := strings.Cut(s.Check, ":")
	in, err := json.Marshal(map[string]any{"promise": checkName, "name": s.Name, "options": opts, "context": ps.pctx})
	if err != nil {
		return false, err.Error()
	}
	raw, err := sess.Call(ctx, mod, "promise_check", in)
	if err != nil {
		return false, err.Error()
	}
	var out struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return false, fmt.Sprintf("module %q returned a malformed promise result: %v", mod.Name, err)
	}
	return out.OK, out.Message
}

// session returns the lane's WebAssembly session, opening it on first use:
// the partition and its software are mounted read-only, nothing else.
func (l *lane) session(r *Runner) (*wasmhost.Session, error) {
	if l.sess != nil {
		return l.sess, nil
	}
	if r.Host == nil {
		return nil, errors.New("no WebAssembly host to run promise checks (promise.Runner.Host is nil)")
	}
	p := l.part.ref
	mounts := []wasmhost.Mount{{HostPath: p.Path, ReadOnly: true}}
	if p.SoftwarePath != "" && p.SoftwarePath != p.Path {
		if _, err := os.Stat(p.SoftwarePath); err == nil {
			mounts = append(mounts, wasmhost.Mount{HostPath: p.SoftwarePath, ReadOnly: true})
		}
	}
	cfg := wasmhost.SessionConfig{Mounts: mounts, Credential: p.Credential, Home: p.Path, Log: r.Log, NetNS: p.NetNS}
	if p.Exec != nil {
		cfg.ExecHook, cfg.ExecStarted = p.Exec.Hook, p.Exec.Started
	}
	l.sess = r.Host.NewSession(cfg)
	return l.sess, nil
}

// module returns the module of a check: the one apply loaded, else the
// source recorded at apply, loaded once per runner. A module file that
// changed since apply is refused.
func (r *Runner) module(ctx context.Context, s *Spec) (*wasmhost.Module, error) {
	if s.live != nil {
		return s.live, nil
	}
	if r.Host == nil {
		return nil, errors.New("no WebAssembly host to run promise checks (promise.Runner.Host is nil)")
	}
	m := s.Module
	src := m.Source
	if src == "" {
		if m.Name != "promises" && m.Name != "cookbook" {
			return nil, fmt.Errorf("module %q of promise %q: its source was not recorded at apply; apply the instance again", m.Name, s.Name)
		}
		src = "builtin:cookbook"
	}
	g := wasmhost.Grants{Exec: m.AllowExec, Env: m.AllowEnv, Net: m.AllowNet, MemoryBytes: m.MemoryBytes, Timeout: time.Duration(m.Timeout)}
	key := fmt.Sprintf("%s|%s|%s|%v|%v|%v|%d|%s", m.Name, src, m.SHA256, g.Exec, g.Env, g.Net, g.MemoryBytes, g.Timeout)
	r.mu.Lock()
	defer r.mu.Unlock()
	if mod := r.modules[key]; mod != nil {
		return mod, nil
	}
	var wasm []byte
	var err error
	if name, ok := strings.CutPrefix(src, "builtin:"); ok {
		wasm, err = builtin.Module(name)
		g.Trusted = true
	} else {
		wasm, err = os.ReadFile(src)
		if err == nil && m.SHA256 != "" {
			sum := sha256.Sum256(wasm)
			if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, m.SHA256) {
				err = fmt.Errorf("%s changed since apply (sha256 %s, applied %s): apply the instance again", src, got, m.SHA256)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("module %q of promise %q: %w", m.Name, s.Name, err)
	}
	mod, err := r.Host.Load(ctx, m.Name, wasm, g)
	if err != nil {
		return nil, fmt.Errorf("promise %q: %w", s.Name, err)
	}
	if r.modules == nil {
		r.modules = map[string]*wasmhost.Module{}
	}
	r.modules[key] = mod
	return mod, nil
}
