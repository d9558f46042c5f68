// Package wasmhost runs slapnode recipes and promises compiled to WebAssembly.
//
// It is the host side of the contract in docs/wasm-abi.md: it compiles each
// module once per digest (on wazero, with an on-disk compilation cache),
// checks what the module imports against the grants of its profile `module`
// block, describes it, and calls its entry points with JSON inside a
// per-apply Session that gives the guest only its granted directories
// (confined with os.Root), its granted commands and its granted network
// destinations, under a memory limit and a per-call timeout.
package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/assemblyscript"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// ABIVersion is the major version of docs/wasm-abi.md this host implements.
const ABIVersion = 1

// Defaults and caps of docs/wasm-abi.md §7.
const (
	DefaultMemory         = 256 << 20
	DefaultTimeout        = 10 * time.Minute
	DefaultPromiseTimeout = 20 * time.Second
	MaxOutput             = 4 << 20  // result of one entry point
	MaxLogPerMessage      = 64 << 10 // one log call
	MaxLogPerCall         = 1 << 20  // all log output of one entry point call
	execOutputTail        = 64 << 10
	maxRequest            = 1 << 20 // request JSON of one host function call
	pageSize              = 65536
)

// DefaultPathDirs is where granted commands are looked up when Config.PathDirs
// is empty.
var DefaultPathDirs = []string{"/usr/local/bin", "/usr/bin", "/bin"}

// Config configures a Host.
type Config struct {
	// CacheDir holds wazero's compilation cache; empty keeps it in memory.
	// Nodes use MachineCacheDir, one per machine. A damaged entry is
	// detected when it is read and rebuilt.
	CacheDir string
	// InstallCacheDir is a compilation cache prepared when slapnode was
	// built or installed (InstallCacheDir, `slapnode cache compile`),
	// only ever read: before the first compilation, each of its entries
	// that CacheDir lacks is linked into CacheDir (linkInstallEntries), so
	// a machine whose cache is empty loads the built-in modules' machine
	// code instead of compiling it. Used only with CacheDir.
	InstallCacheDir string
	// Note, when set, receives what the host ignored and the user should
	// know (an install-time cache entry it did not trust).
	Note func(msg string)
	// DownloadDir is the content-addressed download cache
	// (<DownloadDir>/sha256/ab/abcd…); empty disables slapnode.download.
	DownloadDir string
	// PathDirs are the only directories where exec looks up granted commands;
	// nil means DefaultPathDirs.
	PathDirs []string
	// MemoryBudget bounds, in bytes, the sum of the memory limits of the
	// live guest instances of this host (memory.go); 0 means
	// $SLAPNODE_WASM_MEMORY, else DefaultMemoryBudget.
	MemoryBudget uint64
	// Logger, when set, receives every guest log line (host function log,
	// stdout and stderr of reactors, stderr of commands, exec output).
	// level: 0 debug, 1 info, 2 warn, 3 error. It may be called from several
	// goroutines at once.
	Logger func(module, part string, level int, msg string)
}

// Host loads and runs modules. One per process; safe for concurrent use.
type Host struct {
	cfg   Config
	cache wazero.CompilationCache
	dl    *downloader
	mem   *budget
	// live is held (read) while guest code runs, and (write) by Close:
	// closing an instance unmaps its memory, which must not happen under
	// a running guest.
	live sync.RWMutex

	seed sync.Once // links the install-time cache's entries (Config.InstallCacheDir)

	// loading counts the Loads in progress, which Close waits for.
	loading sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	classes  map[classKey]*class
	compiled map[compileKey]*compileEntry
}

// class is one wazero.Runtime per memory limit: the limit is runtime-wide in
// wazero, so modules with different limits cannot share a runtime. All
// classes share the compilation cache.
//
// Untrusted modules must stop at their time limit. They are rewritten at
// load with a fuel counter checked at function entries and loop headers
// (fuel.go, docs/adr/0013-fuel-counter-for-untrusted-modules.md) and run
// in runtimes without wazero's own check; a module the rewriter cannot
// handle runs in a runtime WithCloseOnContextDone ("interruptible"), whose
// check costs a call out to Go at every loop header of the guest (most of
// the per-call overhead: docs/benchmarks.md). The built-in modules, which
// are part of slapnode itself, run without either (docs/adr/0003): their
// calls cannot be interrupted, only their host functions (exec, downloads,
// probes) honour the deadline.
type class struct {
	classKey
	h  *Host
	rt wazero.Runtime
}

type classKey struct {
	pages         uint32
	interruptible bool
}

type compileKey struct {
	digest string
	class  classKey
}

type compileEntry struct {
	once sync.Once
	cm   wazero.CompiledModule
	err  error
}

// CacheDir is the directory of the compilation cache (Config.CacheDir),
// empty when it is kept in memory.
func (h *Host) CacheDir() string { return h.cfg.CacheDir }

// New creates a Host. The directories in cfg are created when missing.
func New(ctx context.Context, cfg Config) (*Host, error) {
	h := &Host{cfg: cfg, classes: map[classKey]*class{}, compiled: map[compileKey]*compileEntry{}}
	mb, err := memoryBudget(cfg.MemoryBudget)
	if err != nil {
		return nil, err
	}
	h.cfg.MemoryBudget = mb
	h.mem = newBudget(mb)
	if len(h.cfg.PathDirs) == 0 {
		h.cfg.PathDirs = DefaultPathDirs
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache %s: %w", cfg.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	if cfg.DownloadDir != "" {
		abs, err := filepath.Abs(cfg.DownloadDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: download cache: %w", err)
		}
		h.cfg.DownloadDir = abs
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("wasmhost: download cache: %w", err)
		}
		h.dl = &downloader{dir: abs, inflight: map[string]*flight{}}
	}
	return h, nil
}

// Close releases every runtime, compiled module and instance still open.
// Sessions must not be used afterwards.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	// Loads in progress (a background preload may still be compiling when
	// the process ends) finish first: they use the runtimes closed below,
	// and a compilation cannot be stopped. Later ones are refused.
	h.loading.Wait()
	h.live.Lock()
	defer h.live.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, c := range h.classes {
		errs = append(errs, c.rt.Close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

// class returns the runtime of a memory class, creating it on first use.
func (h *Host) class(ctx context.Context, pages uint32, interruptible bool) (*class, error) {
	key := classKey{pages, interruptible}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errors.New("wasmhost: host is closed")
	}
	if c := h.classes[key]; c != nil {
		return c, nil
	}
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(interruptible)
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: instantiate WASI: %w", err)
	}
	// AssemblyScript guests import env.abort/trace/seed.
	if _, err := assemblyscript.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: instantiate AssemblyScript support: %w", err)
	}
	if err := h.instantiateSlapnode(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	c := &class{classKey: key, h: h, rt: rt}
	h.classes[key] = c
	return c, nil
}

// compile compiles wasm once per (digest, class); concurrent loads of the
// same module wait for the first compilation (wazero's file cache only locks
// around its check and save, so two compilations would both do the work).
func (h *Host) compile(ctx context.Context, c *class, digest string, wasm []byte) (wazero.CompiledModule, error) {
	h.mu.Lock()
	k := compileKey{digest, c.classKey}
	e := h.compiled[k]
	if e == nil {
		e = &compileEntry{}
		h.compiled[k] = e
	}
	h.mu.Unlock()
	e.once.Do(func() {
		h.seed.Do(h.linkInstallCache)
		e.cm, e.err = c.rt.CompileModule(ctx, wasm)
		if isCacheEntryError(e.err) && h.cfg.CacheDir != "" {
			// A damaged entry (a disk error, a truncated write): drop
			// the entries and compile again, which writes a sound one.
			if err := purgeCacheEntries(h.cfg.CacheDir); err != nil {
				e.err = fmt.Errorf("%w (and removing the damaged compilation cache entries: %v)", e.err, err)
				return
			}
			e.cm, e.err = c.rt.CompileModule(ctx, wasm)
		}
	})
	if e.err != nil {
		// Do not cache failures: a cancelled context must not poison the key.
		h.mu.Lock()
		if h.compiled[k] == e {
			delete(h.compiled, k)
		}
		h.mu.Unlock()
	}
	return e.cm, e.err
}

// linkInstallCache links the install-time cache's entries into the
// compilation cache, and drops links there that are no longer trusted,
// once per host, just before its first compilation (an apply whose parts
// are all unchanged compiles nothing and does not get here). A failure
// only costs a compilation: it is noted, not returned.
func (h *Host) linkInstallCache() {
	if h.cfg.CacheDir == "" {
		return
	}
	skipped, err := linkInstallEntries(h.cfg.InstallCacheDir, h.cfg.CacheDir)
	if h.cfg.Note == nil {
		return
	}
	if err != nil && h.cfg.InstallCacheDir == "" {
		h.cfg.Note(fmt.Sprintf("compilation cache %s: checking its links to an install-time cache: %v", h.cfg.CacheDir, err))
		return
	}
	if err != nil {
		h.cfg.Note(fmt.Sprintf("install-time compilation cache %s not used: %v", h.cfg.InstallCacheDir, err))
		return
	}
	if len(skipped) > 0 {
		h.cfg.Note(fmt.Sprintf("install-time compilation cache %s: %d entries ignored: %s", h.cfg.InstallCacheDir, len(skipped), strings.Join(skipped, ", ")))
	}
}

// Grants are what a profile `module` block allows a module (docs/profiles.md §2).
type Grants struct {
	Exec        []string      // allow_exec: command names (or absolute paths)
	Env         []string      // allow_env: variable names, or prefixes ending in * (execenv.go)
	Net         []string      // allow_net: scheme://host:port patterns
	MemoryBytes uint64        // 0 = DefaultMemory
	Timeout     time.Duration // per call; 0 = DefaultTimeout (DefaultPromiseTimeout for promise_check)
	// Trusted marks built-in modules: their imports are not checked at load
	// (the cookbook imports every host function; every call still is), and
	// their calls run without the per-loop time-limit check (see class).
	Trusted bool
}

// Description is the parsed abi_describe JSON (docs/wasm-abi.md §3).
type Description struct {
	ABI      int              `json:"abi"`
	Module   string           `json:"module"`
	Version  string           `json:"version"`
	Recipes  map[string]Entry `json:"recipes"`
	Promises map[string]Entry `json:"promises"`
}

// Entry describes one recipe or promise.
type Entry struct {
	Description string          `json:"description"`
	Options     json.RawMessage `json:"options"` // JSON Schema; nil when undeclared
	Outputs     []string        `json:"outputs"`
}

// Module is a loaded, compiled and described module with its grants.
type Module struct {
	Name        string
	Digest      string // sha256 of the wasm bytes, hex
	Description Description
	// Command is true for a WASI command module (§1.2): each call runs
	// _start in a fresh instance.
	Command bool
	// Described is false for a command module that did not answer
	// `describe`: its options go unchecked and it serves every recipe name.
	Described bool
	// Imports lists the slapnode host functions the module imports.
	Imports []string
	// Grants are the grants given to Load with defaults applied.
	Grants Grants

	fueled  bool // rewritten with a fuel counter (fuel.go)
	net     []netPattern
	env     []envPattern
	pages   uint64 // what one instance holds of the memory budget
	class   *class
	cm      wazero.CompiledModule
	exports map[string]bool
}

// Has reports whether the module serves entry ("recipe_install",
// "recipe_update", "recipe_uninstall", "promise_check"). Command modules
// serve every entry.
func (m *Module) Has(entry string) bool {
	if m.Command {
		return true
	}
	return m.exports[entry]
}

// slapnodeImports are the host functions of docs/wasm-abi.md §6.
var slapnodeImports = map[string]bool{
	"log": true, "response": true, "download": true, "exec": true, "tcp_probe": true, "http_get": true,
	"chmod": true, "write_file": true, "mkdir": true,
}

var entryPoints = []string{"recipe_install", "recipe_update", "recipe_uninstall", "promise_check"}

// Load compiles (once per digest), checks and describes a module.
func (h *Host) Load(ctx context.Context, name string, wasm []byte, g Grants) (*Module, error) {
	if name == "" {
		return nil, errors.New("wasmhost: Load: empty module name")
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("wasmhost: host is closed")
	}
	h.loading.Add(1)
	h.mu.Unlock()
	defer h.loading.Done()
	sum := sha256.Sum256(wasm)
	m := &Module{Name: name, Digest: hex.EncodeToString(sum[:]), Grants: g}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("module %q: "+format, append([]any{name}, args...)...)
	}
	// refuse words import refusals as docs/wasm-abi.md §6 shows them.
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("module %q "+format, append([]any{name}, args...)...)
	}
	if m.Grants.MemoryBytes == 0 {
		m.Grants.MemoryBytes = DefaultMemory
	}
	pages64 := (m.Grants.MemoryBytes + pageSize - 1) / pageSize
	if pages64 > 65536 {
		return nil, fail("memory %d bytes is above the 4 GiB a wasm32 module can address: lower memory", m.Grants.MemoryBytes)
	}
	for _, p := range g.Net {
		np, err := parseNetPattern(p)
		if err != nil {
			return nil, fail("allow_net: %w", err)
		}
		m.net = append(m.net, np)
	}
	for _, e := range g.Exec {
		if e == "" || (strings.Contains(e, "/") && !filepath.IsAbs(e)) {
			return nil, fail("allow_exec entry %q must be a command name or an absolute path", e)
		}
	}
	for _, e := range g.Env {
		p, err := parseEnvPattern(e)
		if err != nil {
			return nil, fail("%w", err)
		}
		m.env = append(m.env, p)
	}
	// Untrusted modules get a fuel counter; those the rewriter cannot
	// handle keep wazero's per-loop check.
	interruptible := false
	compileKey := m.Digest
	if !g.Trusted {
		fueled, err := instrument(wasm)
		switch {
		case err == nil:
			m.fueled = true
			wasm = fueled
			compileKey += "+fuel"
		case errors.Is(err, errNotInstrumented):
			interruptible = true
		default:
			return nil, refuse("%v", err)
		}
	}
	c, err := h.class(ctx, uint32(pages64), interruptible)
	if err != nil {
		return nil, err
	}
	m.class = c
	cm, err := h.compile(ctx, c, compileKey, wasm)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "over limit") {
			hint = " (raise memory in its module block: Go guests need at least 4MiB)"
		}
		return nil, fail("compile (sha256 %s, memory limit %d pages): %w%s", m.Digest, pages64, err, hint)
	}
	m.cm = cm
	// An instance holds its limit of the node's budget, or the maximum
	// its memory declares when that is lower.
	m.pages = pages64
	if md, ok := cm.ExportedMemories()["memory"]; ok {
		if max, ok := md.Max(); ok && uint64(max) < m.pages {
			m.pages = uint64(max)
		}
	}
	if m.pages > h.mem.limit {
		return nil, fail("memory limit of %d MiB exceeds the node's WebAssembly memory budget of %d MiB: lower memory in its module block or raise %s", m.pages*pageSize>>20, h.mem.limit*pageSize>>20, MemoryBudgetEnv)
	}

	// Imports: unknown ones are refused for every module, ungranted ones for
	// untrusted modules (the exec/download checks need no description;
	// tcp_probe/http_get do, see below).
	var unknown []string
	imported := map[string]bool{}
	for _, f := range cm.ImportedFunctions() {
		mod, fn, _ := f.Import()
		switch mod {
		case "slapnode":
			if fn == fuelImport && m.fueled {
				continue // added by instrument
			}
			if !slapnodeImports[fn] {
				unknown = append(unknown, "slapnode."+fn)
			} else if !imported[fn] {
				imported[fn] = true
				m.Imports = append(m.Imports, fn)
			}
		case wasi_snapshot_preview1.ModuleName:
		case "env":
			if fn != "abort" && fn != "trace" && fn != "seed" {
				unknown = append(unknown, "env."+fn)
			}
		default:
			unknown = append(unknown, mod+"."+fn)
		}
	}
	sort.Strings(m.Imports)
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, refuse("imports %s, which this host does not provide (docs/wasm-abi.md §6 lists the slapnode functions)", strings.Join(unknown, ", "))
	}
	if len(cm.ImportedMemories()) > 0 {
		return nil, refuse("imports its memory; a module must define and export its own memory")
	}
	if !g.Trusted {
		if imported["exec"] && len(g.Exec) == 0 {
			return nil, refuse("imports slapnode.exec but its module block grants no exec: add allow_exec = [...]")
		}
		if imported["download"] && len(g.Net) == 0 {
			return nil, refuse("imports slapnode.download but its module block grants no network: add allow_net = [\"https://host\"]")
		}
	}

	exports := cm.ExportedFunctions()
	m.exports = map[string]bool{}
	for n := range exports {
		m.exports[n] = true
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return nil, fail("exports no memory named \"memory\" (docs/wasm-abi.md §1)")
	}
	switch {
	case m.exports["abi_version"]:
		if err := checkReactorExports(exports); err != nil {
			return nil, fail("%w", err)
		}
		if err := h.describeReactor(ctx, m); err != nil {
			return nil, fail("%w", err)
		}
	case m.exports["_start"]:
		m.Command = true
		if err := h.describeCommand(ctx, m); err != nil {
			return nil, fail("%w", err)
		}
	default:
		return nil, fail("exports neither abi_version (reactor) nor _start (command): not a slapnode module (docs/wasm-abi.md §1)")
	}
	if !g.Trusted && len(g.Net) == 0 && len(m.Description.Promises) == 0 {
		for _, fn := range []string{"tcp_probe", "http_get"} {
			if imported[fn] {
				return nil, refuse("imports slapnode.%s but its module block grants no network: add allow_net = [\"tcp://host:port\"] (promises need none: their host/port/url options are their grants)", fn)
			}
		}
	}
	return m, nil
}

type signature struct {
	params, results []api.ValueType
}

var reactorSignatures = map[string]signature{
	"abi_version":      {nil, []api.ValueType{api.ValueTypeI32}},
	"abi_alloc":        {[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	"abi_describe":     {nil, []api.ValueType{api.ValueTypeI64}},
	"_initialize":      {nil, nil},
	"recipe_install":   {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	"recipe_update":    {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	"recipe_uninstall": {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	"promise_check":    {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
}

func checkReactorExports(exports map[string]api.FunctionDefinition) error {
	for _, req := range []string{"abi_alloc", "abi_describe"} {
		if exports[req] == nil {
			return fmt.Errorf("is a reactor (exports abi_version) but does not export %s (docs/wasm-abi.md §1.1)", req)
		}
	}
	for n, want := range reactorSignatures {
		d := exports[n]
		if d == nil {
			continue
		}
		if !sameTypes(d.ParamTypes(), want.params) || !sameTypes(d.ResultTypes(), want.results) {
			return fmt.Errorf("export %s has signature %s, want %s (docs/wasm-abi.md §1.1)",
				n, sigString(d.ParamTypes(), d.ResultTypes()), sigString(want.params, want.results))
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sigString(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		var s []string
		for _, t := range ts {
			s = append(s, api.ValueTypeName(t))
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return name(params) + " -> " + name(results)
}
