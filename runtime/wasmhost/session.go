package wasmhost

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// Mount grants the guest one host directory, visible at the same path.
type Mount struct {
	HostPath string
	ReadOnly bool
}

// SessionConfig says what the guests of one session may touch.
type SessionConfig struct {
	// Mounts are the directories the guest sees, at their host paths. With no
	// mount the guest has no file system at all; with at least one, the
	// host's download cache is added read-only.
	Mounts []Mount
	// Credential, when set, is the user and group exec runs commands as.
	Credential *syscall.Credential
	// ExecHook runs before each granted command starts; it may adjust cmd
	// (e.g. set SysProcAttr.UseCgroupFD/CgroupFD to start it in a cgroup).
	// An error refuses the command.
	ExecHook func(cmd *exec.Cmd) error
	// ExecStarted runs right after a command started (e.g. to move pid into
	// a cgroup); an error kills the command.
	ExecStarted func(pid int) error
	// ProfileDir is where download accepts file:// URLs and plain paths
	// (relative ones are relative to it); the read-only mounts too (the
	// directories of the files a profile extends).
	ProfileDir string
	// Home is HOME for commands and their default directory; empty means
	// the first read-write mount.
	Home string
	// Log, when set, receives every guest log line as "LEVEL module/part: msg".
	Log io.Writer
	// NetNS, when set, is the network namespace (name or path) tcp_probe,
	// http_get and download connect from: the partition's.
	NetNS string
}

// Session serves one apply of one partition (or one software install): it
// keeps one live instance per module for every part of that apply and is
// never shared with another partition. Calls to different modules may run
// concurrently; calls to the same module are serialised (an instance is
// single-threaded).
type Session struct {
	h   *Host
	cfg SessionConfig

	fsOnce sync.Once
	fsc    wazero.FSConfig
	roots  []*rootFS
	fsErr  error

	mu     sync.Mutex
	closed bool
	slots  map[*Module]*slot
	logMu  sync.Mutex // serialises writes to cfg.Log
}

type slot struct {
	mu   sync.Mutex
	inst *instance
	idle *list.Element // in Host.mem.idle while inst is between calls (guarded by Host.mem.mu)
}

// NewSession starts a session. Mounts are opened on the first call.
func (h *Host) NewSession(cfg SessionConfig) *Session {
	return &Session{h: h, cfg: cfg, slots: map[*Module]*slot{}}
}

// Close closes every instance and mount of the session. It waits for calls
// in progress.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	slots := s.slots
	s.slots = nil
	s.mu.Unlock()
	var errs []error
	for _, sl := range slots {
		sl.mu.Lock()
		s.h.mem.markBusy(sl)
		if sl.inst != nil {
			errs = append(errs, sl.inst.close(ctx))
			sl.inst = nil
		}
		sl.mu.Unlock()
	}
	for _, r := range s.roots {
		errs = append(errs, r.close())
	}
	return errors.Join(errs...)
}

// fs builds the guest file system once per session.
func (s *Session) fs() (wazero.FSConfig, error) {
	s.fsOnce.Do(func() {
		if len(s.cfg.Mounts) == 0 {
			return
		}
		mounts := append([]Mount(nil), s.cfg.Mounts...)
		seen := map[string]bool{}
		for _, m := range mounts {
			seen[filepath.Clean(m.HostPath)] = true
		}
		if s.h.cfg.DownloadDir != "" && !seen[s.h.cfg.DownloadDir] {
			mounts = append(mounts, Mount{HostPath: s.h.cfg.DownloadDir, ReadOnly: true})
		}
		fsc := wazero.NewFSConfig()
		done := map[string]bool{}
		for _, m := range mounts {
			p := filepath.Clean(m.HostPath)
			if !filepath.IsAbs(m.HostPath) {
				s.fsErr = fmt.Errorf("mount %q: not an absolute path", m.HostPath)
				return
			}
			if done[p] {
				s.fsErr = fmt.Errorf("mount %q: mounted twice", m.HostPath)
				return
			}
			done[p] = true
			r, err := newRootFS(p, m.ReadOnly)
			if err != nil {
				s.fsErr = fmt.Errorf("mount %q: %w", m.HostPath, err)
				return
			}
			if c := s.cfg.Credential; c != nil {
				r.owner = int(c.Uid) // hard links of other owners are refused (rootfs.go)
			}
			// A refusal is said even when guest logs are not shown:
			// the guest only sees an errno.
			r.warn = func(msg string) {
				w := s.cfg.Log
				if w == nil {
					w = os.Stderr
				}
				s.logMu.Lock()
				fmt.Fprintf(w, "WARN slapnode: %s\n", msg)
				s.logMu.Unlock()
			}
			s.roots = append(s.roots, r)
			fsc = fsc.(sysfs.FSConfig).WithSysFSMount(r, p)
		}
		s.fsc = fsc
	})
	return s.fsc, s.fsErr
}

// home is HOME and the default directory of commands.
func (s *Session) home() string {
	if s.cfg.Home != "" {
		return s.cfg.Home
	}
	for _, m := range s.cfg.Mounts {
		if !m.ReadOnly {
			return m.HostPath
		}
	}
	return "/"
}

// inMounts reports whether p lies inside one of the session's mounts.
func (s *Session) inMounts(p string) bool {
	for _, m := range s.cfg.Mounts {
		if within(m.HostPath, p) {
			return true
		}
	}
	return false
}

// within reports whether p is dir or below it, lexically.
func within(dir, p string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(p))
	return err == nil && filepath.IsLocal(rel)
}

// Call runs one entry point of m ("recipe_install", "recipe_update",
// "recipe_uninstall" or "promise_check") with input JSON and returns the
// guest's output JSON (validated as JSON, at most MaxOutput bytes; the
// engine interprets its "error" field). A trap, timeout or malformed result
// is an error and the instance is discarded; the next call gets a fresh one.
// The input is not kept once Call returns: the caller may reuse it.
func (s *Session) Call(ctx context.Context, m *Module, entry string, input []byte) ([]byte, error) {
	return s.call(ctx, m, entry, "", false, input, nil)
}

// CallPart is Call for a caller that knows the part the input names (its
// "part" field as JSON decodes it): the input is not decoded to find it,
// which was most of the host's cost of a call. A promise_check input is
// still decoded, for the network its options grant.
func (s *Session) CallPart(ctx context.Context, m *Module, entry, part string, input []byte) ([]byte, error) {
	return s.call(ctx, m, entry, part, true, input, nil)
}

// CallPartInto is CallPart that decodes the result into v, as
// json.Unmarshal does, straight from the guest's memory: the result is
// neither copied nor scanned once more to check it. A result that is not
// JSON is the error CallPart gives (and the instance is discarded); a JSON
// result that v cannot hold is a *ResultError.
func (s *Session) CallPartInto(ctx context.Context, m *Module, entry, part string, input []byte, v any) error {
	_, err := s.call(ctx, m, entry, part, true, input, v)
	return err
}

// ResultError is a result that is JSON but not what the caller decodes
// it into (json.Unmarshal's error): the call itself went well.
type ResultError struct{ Err error }

func (e *ResultError) Error() string { return e.Err.Error() }
func (e *ResultError) Unwrap() error { return e.Err }

// call runs entry; with into set, it decodes the result there and
// returns no bytes.
func (s *Session) call(ctx context.Context, m *Module, entry, part string, named bool, input []byte, into any) ([]byte, error) {
	st := &callState{h: s.h, s: s, m: m, entry: entry, part: part}
	var in struct {
		Part    string `json:"part"`
		Name    string `json:"name"`
		Options struct {
			Host string          `json:"host"`
			Port json.RawMessage `json:"port"`
			URL  string          `json:"url"`
		} `json:"options"`
	}
	if !named || entry == "promise_check" {
		// The input is the engine's own JSON; a decoding failure only
		// loses the part name in logs, the guest still gets the bytes.
		_ = json.Unmarshal(input, &in)
		if !named {
			st.part = in.Part
			if st.part == "" {
				st.part = in.Name
			}
		}
	}
	st.net = m.net
	timeout := m.Grants.Timeout
	if entry == "promise_check" {
		st.net = append(append([]netPattern(nil), m.net...), promiseGrants(in.Options.Host, in.Options.Port, in.Options.URL)...)
		if timeout == 0 {
			timeout = DefaultPromiseTimeout
		}
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	fail := func(err error) error {
		if st.part != "" {
			return fmt.Errorf("module %q %s (part %q): %w", m.Name, entry, st.part, err)
		}
		return fmt.Errorf("module %q %s: %w", m.Name, entry, err)
	}
	if !m.Has(entry) {
		return nil, fail(fmt.Errorf("the module does not export %s", entry))
	}
	if uint64(len(input)) > 1<<31 {
		return nil, fail(errors.New("input too large"))
	}
	fsc, err := s.fs()
	if err != nil {
		return nil, fail(err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fail(errors.New("session is closed"))
	}
	if m.Command {
		s.mu.Unlock()
		out, err := s.h.runCommand(ctx, m, st, fsc, timeout, []string{m.Name, entry}, input)
		if err != nil {
			return nil, fail(err)
		}
		if into != nil {
			if err := json.Unmarshal(out, into); err != nil {
				return nil, &ResultError{err} // out is JSON: runCommand checked it
			}
			return nil, nil
		}
		return out, nil
	}
	sl := s.slots[m]
	if sl == nil {
		sl = &slot{}
		s.slots[m] = sl
	}
	s.mu.Unlock()

	sl.mu.Lock()
	defer sl.mu.Unlock()
	s.h.mem.markBusy(sl)
	if sl.inst == nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, fail(errors.New("session is closed"))
		}
		inst, err := s.h.instantiate(ctx, m, st, fsc, timeout)
		if err != nil {
			return nil, fail(err)
		}
		sl.inst = inst
	}
	out, err := sl.inst.callEntry(ctx, st, timeout, entry, input, into)
	var rerr error
	if _, ok := err.(*ResultError); ok {
		// The instance answered well-formed JSON: it is kept.
		rerr, err = err, nil
	}
	if err != nil {
		// Never reuse an instance that trapped, timed out or misbehaved.
		sl.inst.close(context.WithoutCancel(ctx))
		sl.inst = nil
		return nil, fail(err)
	}
	if !s.h.mem.markIdle(sl) {
		// Another instantiation waits for memory: give this one's back
		// rather than keep it idle (its next call re-creates it).
		sl.inst.close(context.WithoutCancel(ctx))
		sl.inst = nil
	}
	if rerr != nil {
		return nil, rerr
	}
	return out, nil
}

// promiseGrants turns a promise's own host/port/url options into network
// grants (docs/wasm-abi.md §6).
func promiseGrants(host string, port json.RawMessage, rawURL string) []netPattern {
	var out []netPattern
	if host != "" && len(port) > 0 {
		var p string
		var n json.Number
		if json.Unmarshal(port, &n) == nil {
			p = n.String()
		} else if json.Unmarshal(port, &p) != nil {
			p = ""
		}
		if _, err := strconv.ParseUint(p, 10, 16); err == nil {
			out = append(out, netPattern{raw: "promise option", scheme: "tcp", host: normHost(host), port: p})
		}
	}
	if rawURL != "" {
		if u, err := url.Parse(rawURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
			out = append(out, netPattern{raw: "promise option", scheme: u.Scheme, host: normHost(u.Hostname()), port: urlPort(u)})
		}
	}
	return out
}

// instance is one live reactor instance.
type instance struct {
	m     *Module
	mod   api.Module
	pages uint64 // held from the memory budget until close
	out   *router
	// fns caches exported functions: each ExportedFunction call allocates
	// a new call engine with its own stack, which dominated a warm call.
	fns map[string]api.Function
}

func (h *Host) moduleConfig(fsc wazero.FSConfig, out *router) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module per runtime
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(out.stdout).WithStderr(out.stderr)
	if fsc != nil {
		cfg = cfg.WithFSConfig(fsc)
	}
	return cfg
}

// instantiate creates a reactor instance and runs its _initialize. The
// instance holds m.pages of the memory budget until it is closed.
func (h *Host) instantiate(ctx context.Context, m *Module, st *callState, fsc wazero.FSConfig, timeout time.Duration) (*instance, error) {
	out := newRouter()
	cfg := h.moduleConfig(fsc, out)
	if m.exports["_initialize"] {
		cfg = cfg.WithStartFunctions("_initialize")
	} else {
		cfg = cfg.WithStartFunctions()
	}
	out.cur.Store(st)
	defer out.end()
	cctx, cancel := context.WithTimeout(withState(ctx, st), timeout)
	defer cancel()
	mod, err := h.instantiateModule(cctx, m, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", explain(ctx, cctx, timeout, err, m, nil))
	}
	inst := &instance{m: m, mod: mod, pages: m.pages, out: out, fns: map[string]api.Function{}}
	if err := st.takeFault(); err != nil {
		inst.close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	return inst, nil
}

// instantiateModule takes m.pages from the memory budget and instantiates
// m with its memory in its own mapping (memory.go). On error the pages
// are given back; on success the caller closes the module with
// closeModule (or instance.close).
func (h *Host) instantiateModule(ctx context.Context, m *Module, cfg wazero.ModuleConfig) (api.Module, error) {
	if err := h.mem.acquire(ctx, m.pages); err != nil {
		return nil, err
	}
	h.live.RLock()
	mod, err := m.class.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, allocator), m.cm, cfg)
	h.live.RUnlock()
	if err != nil {
		if mod != nil {
			mod.Close(context.WithoutCancel(ctx))
		}
		h.mem.release(m.pages)
		return nil, err
	}
	return mod, nil
}

// close closes the instance and gives its memory back to the budget. Only
// the instance's owner (its slot, under the slot's lock, or whoever
// detached it from the slot) calls it, once.
func (i *instance) close(ctx context.Context) error {
	err := i.mod.Close(ctx)
	i.m.class.h.mem.release(i.pages)
	return err
}

// call runs one exported function under the call's timeout with st as the
// state host functions see.
func (i *instance) call(ctx context.Context, st *callState, timeout time.Duration, name string, args ...uint64) ([]uint64, error) {
	fn := i.fns[name]
	if fn == nil {
		if fn = i.mod.ExportedFunction(name); fn == nil {
			return nil, fmt.Errorf("the module does not export %s", name)
		}
		i.fns[name] = fn
	}
	i.out.cur.Store(st)
	defer i.out.end()
	cctx, cancel := context.WithTimeout(withState(ctx, st), timeout)
	defer cancel()
	h := i.m.class.h
	h.live.RLock()
	res, err := fn.Call(cctx, args...)
	h.live.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, explain(ctx, cctx, timeout, err, i.m, i.mod))
	}
	if err := st.takeFault(); err != nil {
		return nil, err
	}
	return res, nil
}

// callEntry writes input through abi_alloc, calls entry and reads its
// result, or decodes it into into when set (resultInto).
func (i *instance) callEntry(ctx context.Context, st *callState, timeout time.Duration, entry string, input []byte, into any) ([]byte, error) {
	res, err := i.call(ctx, st, timeout, "abi_alloc", uint64(len(input)))
	if err != nil {
		return nil, err
	}
	ptr := uint32(res[0])
	if !i.mod.Memory().Write(ptr, input) {
		return nil, fmt.Errorf("abi_alloc(%d) returned %#x: the buffer does not fit in the guest's %d bytes of memory",
			len(input), ptr, i.mod.Memory().Size())
	}
	res, err = i.call(ctx, st, timeout, entry, uint64(ptr), uint64(len(input)))
	if err != nil {
		return nil, err
	}
	if into != nil {
		return nil, i.resultInto(res[0], into)
	}
	return i.result(res[0])
}

// result copies a packed ptr<<32|len result out of guest memory (the view
// is only valid until the next guest call) and checks it is JSON.
func (i *instance) result(packed uint64) ([]byte, error) {
	b, err := i.resultView(packed)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(b)
	if err := checkJSON(out); err != nil {
		return nil, err
	}
	return out, nil
}

// resultInto decodes a packed ptr<<32|len result into v where it lies in
// guest memory (json.Unmarshal copies what it keeps, and no guest code
// runs meanwhile): the same errors as result for a result that is out of
// bounds or not JSON, a *ResultError for JSON that v cannot hold.
func (i *instance) resultInto(packed uint64, v any) error {
	b, err := i.resultView(packed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		if !json.Valid(b) {
			return checkJSON(b)
		}
		return &ResultError{err}
	}
	return nil
}

// resultView is the result's bytes in guest memory, valid until the next
// guest call.
func (i *instance) resultView(packed uint64) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if n > MaxOutput {
		return nil, fmt.Errorf("result of %d bytes exceeds the %d MiB output cap", n, MaxOutput>>20)
	}
	b, ok := i.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("result pointer %#x length %d lies outside the guest's %d bytes of memory", ptr, n, i.mod.Memory().Size())
	}
	return b, nil
}

func checkJSON(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	var v any
	err := json.Unmarshal(b, &v)
	snippet := b
	if len(snippet) > 64 {
		snippet = snippet[:64]
	}
	return fmt.Errorf("result is not valid JSON (%v): %q", err, snippet)
}

// explain turns a wazero error into one that says what happened.
func explain(parent, cctx context.Context, timeout time.Duration, err error, m *Module, mod api.Module) error {
	var ee *sys.ExitError
	isExit := errors.As(err, &ee)
	switch {
	case errors.Is(err, errBudget):
		return err // says itself what it waited for
	case parent.Err() != nil:
		return fmt.Errorf("interrupted (%w)", parent.Err())
	case errors.Is(cctx.Err(), context.DeadlineExceeded) || (isExit && ee.ExitCode() == sys.ExitCodeDeadlineExceeded):
		return fmt.Errorf("timed out after %s (the module's timeout; raise timeout in its module block if the work is legitimate)", timeout)
	case isExit:
		return fmt.Errorf("exited with code %d", ee.ExitCode())
	}
	if mod != nil {
		limit := uint64(m.class.pages) * pageSize
		// A failed memory.grow is not an error in wasm: the guest traps
		// later, so name the likely cause when memory is (nearly) full.
		if size := uint64(mod.Memory().Size()); size >= limit-limit/8 {
			return fmt.Errorf("trapped with its memory at the %d MiB limit (raise memory in its module block if the work is legitimate): %w", limit>>20, err)
		}
	}
	return fmt.Errorf("trapped: %w", err)
}

// describeReactor checks abi_version and parses abi_describe in a
// throw-away instance with no file system.
func (h *Host) describeReactor(ctx context.Context, m *Module) error {
	st := &callState{h: h, m: m, entry: "describe"}
	timeout := m.Grants.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	inst, err := h.instantiate(ctx, m, st, nil, timeout)
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	defer inst.close(context.WithoutCancel(ctx))
	res, err := inst.call(ctx, st, timeout, "abi_version")
	if err != nil {
		return err
	}
	if v := int32(res[0]); v != ABIVersion {
		return fmt.Errorf("abi_version() returned %d but this host implements ABI %d (docs/wasm-abi.md): rebuild the module with a matching SDK", v, ABIVersion)
	}
	res, err = inst.call(ctx, st, timeout, "abi_describe")
	if err != nil {
		return err
	}
	b, err := inst.result(res[0])
	if err != nil {
		return fmt.Errorf("abi_describe: %w", err)
	}
	m.Described = true
	return parseDescription(b, &m.Description)
}

func parseDescription(b []byte, d *Description) error {
	if err := json.Unmarshal(b, d); err != nil {
		return fmt.Errorf("description: %w", err)
	}
	if d.ABI != ABIVersion {
		return fmt.Errorf("description declares abi %d but this host implements ABI %d", d.ABI, ABIVersion)
	}
	for _, group := range []map[string]Entry{d.Recipes, d.Promises} {
		for name, e := range group {
			if len(e.Options) > 0 {
				var v any
				if err := json.Unmarshal(e.Options, &v); err != nil {
					return fmt.Errorf("description of %q: options: %w", name, err)
				}
				if _, ok := v.(map[string]any); !ok {
					if _, ok := v.(bool); !ok {
						return fmt.Errorf("description of %q: options must be a JSON Schema (an object or a boolean)", name)
					}
				}
			}
		}
	}
	return nil
}

// describeCommand runs a command module with argv describe; a non-zero exit
// means it declares nothing (docs/wasm-abi.md §1.2).
func (h *Host) describeCommand(ctx context.Context, m *Module) error {
	st := &callState{h: h, m: m, entry: "describe"}
	timeout := m.Grants.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	out, err := h.runCommand(ctx, m, st, nil, timeout, []string{m.Name, "describe"}, nil)
	if err != nil {
		var ce *commandExit
		if errors.As(err, &ce) {
			return nil
		}
		return fmt.Errorf("describe: %w", err)
	}
	m.Described = true
	return parseDescription(out, &m.Description)
}

// commandExit is a command module's non-zero exit.
type commandExit struct {
	code   uint32
	stderr string
}

func (e *commandExit) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("exited with code %d", e.code)
	}
	return fmt.Sprintf("exited with code %d: %s", e.code, e.stderr)
}

// runCommand runs _start of a command module in a fresh instance.
func (h *Host) runCommand(ctx context.Context, m *Module, st *callState, fsc wazero.FSConfig, timeout time.Duration, args []string, input []byte) ([]byte, error) {
	out := newRouter()
	stdout := &cappedBuffer{max: MaxOutput}
	stderrTail := &tailBuffer{max: 4096}
	cfg := h.moduleConfig(fsc, out).
		WithArgs(args...).
		WithStdin(bytes.NewReader(input)).
		WithStdout(stdout).
		WithStderr(io.MultiWriter(out.stderr, stderrTail))
	out.cur.Store(st)
	cctx, cancel := context.WithTimeout(withState(ctx, st), timeout)
	defer cancel()
	// _start runs inside the instantiation.
	mod, err := h.instantiateModule(cctx, m, cfg)
	out.end()
	if mod != nil {
		mod.Close(context.WithoutCancel(ctx))
		h.mem.release(m.pages)
	}
	// A guest whose stdout hit the cap usually exits non-zero after its
	// write failed: report the cause, not the symptom.
	if stdout.overflow {
		return nil, fmt.Errorf("output exceeds the %d MiB output cap", MaxOutput>>20)
	}
	if err != nil {
		var ee *sys.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil && cctx.Err() == nil &&
			ee.ExitCode() != sys.ExitCodeDeadlineExceeded && ee.ExitCode() != sys.ExitCodeContextCanceled {
			return nil, &commandExit{code: ee.ExitCode(), stderr: string(bytes.TrimSpace(stderrTail.Bytes()))}
		}
		return nil, explain(ctx, cctx, timeout, err, m, nil)
	}
	if err := st.takeFault(); err != nil {
		return nil, err
	}
	b := stdout.buf.Bytes()
	if err := checkJSON(b); err != nil {
		return nil, err
	}
	return b, nil
}

// cappedBuffer collects a command's stdout up to max bytes.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.overflow = true
		return 0, errors.New("output cap exceeded")
	}
	return c.buf.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.b)
}

// router sends a guest's stdout and stderr, line by line, to the log of the
// call in progress.
type router struct {
	cur            atomic.Pointer[callState]
	stdout, stderr *lineWriter
}

func newRouter() *router {
	r := &router{}
	r.stdout = &lineWriter{r: r, level: 1}
	r.stderr = &lineWriter{r: r, level: 2}
	return r
}

// end flushes partial lines at the end of a call and detaches the call.
func (r *router) end() {
	r.stdout.flush()
	r.stderr.flush()
	r.cur.Store(nil)
}

type lineWriter struct {
	r     *router
	level int
	mu    sync.Mutex
	buf   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) >= MaxLogPerMessage {
		w.emit(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) emit(line []byte) {
	if st := w.r.cur.Load(); st != nil {
		st.log(w.level, string(line))
	}
}
