// Package recipetest runs slapnode Go recipes and promises in ordinary
// (native) go tests. Host is a local implementation of the host functions of
// docs/wasm-abi.md §6 that does the real work (downloads into a cache
// directory with checksum verification, runs commands, probes ports, fetches
// URLs) without slapnode's sandbox; Env drives recipes through the same JSON
// entry points the WebAssembly exports use, so the tests exercise the SDK's
// encoding as well as the recipe logic.
package recipetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// LogEntry is one line a recipe logged.
type LogEntry struct {
	Level   recipe.Level
	Message string
}

// Host implements recipe.Host on the local machine.
type Host struct {
	// CacheDir receives downloads, content-addressed like the node's cache.
	CacheDir string
	// ProfileDir resolves relative download paths.
	ProfileDir string
	// AllowExec, when non-nil, lists the commands exec may run (argv[0]);
	// others are refused with the host's message, for testing that path.
	AllowExec []string
	// AllowEnv is the module's allow_env: the environment variables exec
	// may pass beyond the host's defaults. The host's rule applies in any
	// case (execenv.go): PATH is the host's, loader and interpreter hooks
	// (LD_PRELOAD, PYTHONPATH…) pass only when named exactly here.
	AllowEnv []string
	// Mounts are the directories the call is granted (New sets them):
	// exec's dir and HOME/TMPDIR must lie inside. nil: not checked.
	Mounts []string
	// Writable are the read-write mounts (New: the partition directory,
	// or the software directory after AsSoftware): chmod acts only inside
	// them, as the host's does. nil: not checked.
	Writable []string
	// T, when set, receives the log lines too.
	T testing.TB

	mu    sync.Mutex
	logs  []LogEntry
	calls []string
}

// Log records a log line.
func (h *Host) Log(level recipe.Level, message string) {
	h.mu.Lock()
	h.logs = append(h.logs, LogEntry{level, message})
	h.mu.Unlock()
	if h.T != nil {
		h.T.Logf("guest log [%d]: %s", level, message)
	}
}

// Logs returns the lines logged so far.
func (h *Host) Logs() []LogEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.logs)
}

// Calls returns the names of the host functions called so far, in order.
func (h *Host) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// Call serves one host function request.
func (h *Host) Call(function string, request []byte) ([]byte, error) {
	h.mu.Lock()
	h.calls = append(h.calls, function)
	h.mu.Unlock()
	var resp any
	var err error
	switch function {
	case "download":
		resp, err = h.download(request)
	case "exec":
		resp, err = h.exec(request)
	case "tcp_probe":
		resp, err = h.tcpProbe(request)
	case "http_get":
		resp, err = h.httpGet(request)
	case "chmod":
		resp, err = h.chmod(request)
	case "write_file":
		resp, err = h.writeFile(request)
	case "mkdir":
		resp, err = h.mkdir(request)
	default:
		return nil, fmt.Errorf("recipetest: unknown host function %q", function)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

func errResponse(format string, args ...any) map[string]any {
	return map[string]any{"error": fmt.Sprintf(format, args...)}
}

func (h *Host) download(request []byte) (any, error) {
	var req struct {
		URL    string `json:"url"`
		SHA256 string `json:"sha256"`
		MD5    string `json:"md5"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("download: bad request: %v", err)
	}
	var want string
	var sum hash.Hash
	switch {
	case req.SHA256 != "":
		want, sum = strings.ToLower(req.SHA256), sha256.New()
	case req.MD5 != "":
		want, sum = strings.ToLower(req.MD5), md5.New()
	default:
		return errResponse("a checksum (sha256 or md5) is required"), nil
	}
	data, err := h.fetch(req.URL)
	if err != nil {
		return errResponse("%v", err), nil
	}
	sum.Write(data)
	if got := hex.EncodeToString(sum.Sum(nil)); got != want {
		return errResponse("checksum mismatch for %s: expected %s, got %s", req.URL, want, got), nil
	}
	s := sha256.Sum256(data)
	hexsum := hex.EncodeToString(s[:])
	dir := filepath.Join(h.CacheDir, "sha256", hexsum[:2])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, hexsum)
	if err := os.WriteFile(path, data, 0o444); err != nil && !errors.Is(err, os.ErrPermission) {
		return nil, err
	}
	return map[string]any{"path": path, "sha256": hexsum, "size": len(data)}, nil
}

func (h *Host) fetch(url string) ([]byte, error) {
	switch {
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		resp, err := http.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return io.ReadAll(resp.Body)
	case strings.HasPrefix(url, "file://"):
		return os.ReadFile(strings.TrimPrefix(url, "file://"))
	case strings.Contains(url, "://"):
		return nil, fmt.Errorf("unsupported URL scheme in %s", url)
	}
	if !filepath.IsAbs(url) {
		url = filepath.Join(h.ProfileDir, url)
	}
	return os.ReadFile(url)
}

func (h *Host) exec(request []byte) (any, error) {
	var req struct {
		Argv      []string          `json:"argv"`
		Dir       string            `json:"dir"`
		Env       map[string]string `json:"env"`
		TimeoutMS int64             `json:"timeout_ms"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("exec: bad request: %v", err)
	}
	if len(req.Argv) == 0 {
		return errResponse("empty argv"), nil
	}
	if strings.Contains(req.Argv[0], "/") && !filepath.IsAbs(req.Argv[0]) {
		// Like slapnode's host: commands are names looked up in PATH, or
		// absolute paths, never relative to the working directory.
		return map[string]any{"exit_code": -1, "error": fmt.Sprintf("%s is a relative path: commands are looked up in PATH only (run it through a granted sh)", req.Argv[0])}, nil
	}
	if h.AllowExec != nil && !slices.Contains(h.AllowExec, req.Argv[0]) {
		return map[string]any{"exit_code": -1, "error": fmt.Sprintf("%s is not granted: add it to the module's allow_exec", req.Argv[0])}, nil
	}
	if req.Dir != "" && h.Mounts != nil && (!filepath.IsAbs(req.Dir) || !within(h.Mounts, req.Dir)) {
		return map[string]any{"exit_code": -1, "error": fmt.Sprintf("exec: dir %q is not inside a directory granted to this call", req.Dir)}, nil
	}
	keys := make([]string, 0, len(req.Env))
	for k, v := range req.Env {
		if why := h.checkEnv(k, v); why != "" {
			return map[string]any{"exit_code": -1, "error": "exec " + req.Argv[0] + ": " + why}, nil
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	cmd.Dir = req.Dir
	home := os.Getenv("HOME")
	if len(h.Writable) > 0 {
		home = h.Writable[0] // the host's HOME: the session's read-write mount
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"}
	for _, k := range keys {
		if k == "HOME" || k == "LANG" {
			cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		}
		cmd.Env = append(cmd.Env, k+"="+req.Env[k])
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	output := out.Bytes()
	if len(output) > 64<<10 {
		output = output[len(output)-64<<10:]
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return map[string]any{"exit_code": -1, "output": string(output), "error": fmt.Sprintf("timed out after %s", timeout)}, nil
	case errors.As(err, &exitErr):
		return map[string]any{"exit_code": exitErr.ExitCode(), "output": string(output)}, nil
	case err != nil:
		return map[string]any{"exit_code": -1, "error": err.Error()}, nil
	}
	return map[string]any{"exit_code": 0, "output": string(output)}, nil
}

func (h *Host) tcpProbe(request []byte) (any, error) {
	var req struct {
		Host      string `json:"host"`
		Port      int    `json:"port"`
		TimeoutMS int64  `json:"timeout_ms"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("tcp_probe: bad request: %v", err)
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(req.Host, strconv.Itoa(req.Port)), timeout)
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error()}, nil
	}
	c.Close()
	return map[string]any{"ok": true}, nil
}

func (h *Host) httpGet(request []byte) (any, error) {
	var req struct {
		URL       string `json:"url"`
		TimeoutMS int64  `json:"timeout_ms"`
		Insecure  bool   `json:"insecure"`
		MaxBytes  int64  `json:"max_bytes"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("http_get: bad request: %v", err)
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if req.MaxBytes <= 0 {
		req.MaxBytes = 64 << 10
	}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: req.Insecure}, // the promise asked for it
	}}
	resp, err := client.Get(req.URL)
	if err != nil {
		return map[string]any{"status": 0, "body": "", "error": err.Error()}, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, req.MaxBytes))
	return map[string]any{"status": resp.StatusCode, "body": string(body)}, nil
}

// Env is a scratch node for one test: temporary partition, software,
// profile and cache directories, a Host, and the parts installed so far.
type Env struct {
	T        testing.TB
	Host     *Host
	Registry *recipe.Registry
	// Context is sent with every call; tests may change it (Kind, Partition…).
	Context recipe.CallContext

	previous map[string]*recipe.Previous
}

// New returns an Env for an instance partition under t.TempDir(), serving the
// default registry (the recipes the test binary registered).
func New(t testing.TB) *Env {
	t.Helper()
	root := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"instance/slappart0", "software/0123abcd", "profile", "cache/download"} {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs[d] = p
	}
	return &Env{
		T: t,
		Host: &Host{CacheDir: dirs["cache/download"], ProfileDir: dirs["profile"], T: t,
			Mounts:   []string{dirs["instance/slappart0"], dirs["software/0123abcd"], dirs["profile"], dirs["cache/download"]},
			Writable: []string{dirs["instance/slappart0"]}},
		Registry: recipe.Default(),
		Context: recipe.CallContext{
			Kind:       "instance",
			Partition:  &recipe.Partition{ID: "slappart0", Path: dirs["instance/slappart0"], User: "slapuser0", IPv4: "127.0.0.1", IPv6: "::1"},
			Software:   recipe.Software{Path: dirs["software/0123abcd"], URL: filepath.Join(dirs["profile"], "software.hcl")},
			ProfileDir: dirs["profile"],
			CacheDir:   dirs["cache/download"],
			Node:       recipe.Node{ID: "local", Root: root},
		},
		previous: map[string]*recipe.Previous{},
	}
}

// Dir is the partition directory (instance kind) or the software directory.
func (e *Env) Dir() string {
	if e.Context.Partition != nil {
		return e.Context.Partition.Path
	}
	return e.Context.Software.Path
}

// Path joins elems under Dir.
func (e *Env) Path(elems ...string) string {
	return filepath.Join(append([]string{e.Dir()}, elems...)...)
}

// AsSoftware turns the Env into a software-profile context (no partition).
func (e *Env) AsSoftware() *Env {
	if p := e.Context.Partition; p != nil && e.Host.Mounts != nil {
		e.Host.Mounts = slices.DeleteFunc(e.Host.Mounts, func(d string) bool { return d == p.Path })
		e.Host.Writable = []string{e.Context.Software.Path}
	}
	e.Context.Kind = "software"
	e.Context.Partition = nil
	return e
}

func (e *Env) run(entry, phase, part, name string, opts map[string]any, prev *recipe.Previous) recipe.RecipeOutput {
	e.T.Helper()
	in := map[string]any{"recipe": name, "part": part, "phase": phase, "options": opts, "context": e.Context}
	if prev != nil {
		in["previous"] = prev
	}
	raw, err := json.Marshal(in)
	if err != nil {
		e.T.Fatalf("recipetest: options of part %s are not JSON: %v", part, err)
	}
	outRaw := e.Registry.Dispatch(entry, raw, e.Host)
	var out recipe.RecipeOutput
	if err := json.Unmarshal(outRaw, &out); err != nil {
		e.T.Fatalf("recipetest: %s of part %s answered malformed JSON %s: %v", entry, part, outRaw, err)
	}
	return out
}

// Install runs recipe_install for part with opts and remembers the result
// as the part's previous state when it succeeds.
func (e *Env) Install(part, name string, opts map[string]any) recipe.RecipeOutput {
	e.T.Helper()
	out := e.run(recipe.EntryInstall, "install", part, name, opts, nil)
	e.remember(part, opts, out)
	return out
}

// Update runs recipe_update for part with opts and the previous state.
func (e *Env) Update(part, name string, opts map[string]any) recipe.RecipeOutput {
	e.T.Helper()
	out := e.run(recipe.EntryUpdate, "update", part, name, opts, e.previous[part])
	e.remember(part, opts, out)
	return out
}

// Uninstall runs recipe_uninstall for part and then, as the host does,
// removes the paths its install reported.
func (e *Env) Uninstall(part, name string) recipe.RecipeOutput {
	e.T.Helper()
	prev := e.previous[part]
	var opts map[string]any
	if prev != nil {
		opts = prev.Options
	}
	out := e.run(recipe.EntryUninstall, "uninstall", part, name, opts, prev)
	if out.Error == "" && prev != nil {
		for _, p := range prev.Installed {
			if err := os.RemoveAll(p); err != nil {
				e.T.Fatalf("recipetest: removing %s: %v", p, err)
			}
		}
		delete(e.previous, part)
	}
	return out
}

func (e *Env) remember(part string, opts map[string]any, out recipe.RecipeOutput) {
	if out.Error != "" {
		return
	}
	e.previous[part] = &recipe.Previous{Options: opts, Outputs: out.Outputs, Installed: out.Installed}
}

// MustInstall is Install that fails the test on a recipe error.
func (e *Env) MustInstall(part, name string, opts map[string]any) recipe.RecipeOutput {
	e.T.Helper()
	out := e.Install(part, name, opts)
	if out.Error != "" {
		e.T.Fatalf("install of part %s (%s) failed: %s", part, name, out.Error)
	}
	return out
}

// MustFail runs Install and fails the test unless it fails with an error
// containing every one of wants.
func (e *Env) MustFail(part, name string, opts map[string]any, wants ...string) recipe.RecipeOutput {
	e.T.Helper()
	out := e.Install(part, name, opts)
	if out.Error == "" {
		e.T.Fatalf("install of part %s (%s) succeeded, want an error containing %q", part, name, wants)
	}
	for _, w := range wants {
		if !strings.Contains(out.Error, w) {
			e.T.Fatalf("install of part %s (%s) failed with %q, want it to contain %q", part, name, out.Error, w)
		}
	}
	return out
}

// Check runs promise_check for promise name with opts.
func (e *Env) Check(name string, opts map[string]any) recipe.CheckOutput {
	e.T.Helper()
	raw, err := json.Marshal(map[string]any{"promise": name, "name": name, "options": opts, "context": e.Context})
	if err != nil {
		e.T.Fatalf("recipetest: options of promise %s are not JSON: %v", name, err)
	}
	var out recipe.CheckOutput
	if err := json.Unmarshal(e.Registry.Dispatch(recipe.EntryCheck, raw, e.Host), &out); err != nil {
		e.T.Fatalf("recipetest: promise %s answered malformed JSON: %v", name, err)
	}
	return out
}

// ReadFile returns the content of path, failing the test if it is unreadable.
func (e *Env) ReadFile(path string) string {
	e.T.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.T.Fatal(err)
	}
	return string(b)
}

// WriteFile writes content to path (creating directories), failing the test
// on error.
func (e *Env) WriteFile(path, content string) {
	e.T.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.T.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		e.T.Fatal(err)
	}
}

// pathMode is the request of chmod and mkdir.
type pathMode struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// pathModeRequest decodes a chmod or mkdir request and applies the real
// host's rules to it: permission bits only, an absolute path, inside a
// read-write mount (writableCheck). It returns the clean path, or the
// response refusing the request; where says the refusal is about where
// the path is.
func (h *Host) pathModeRequest(op string, request []byte) (r pathMode, p string, refused map[string]any, where bool, err error) {
	if err = json.Unmarshal(request, &r); err != nil {
		return r, "", nil, false, err
	}
	if r.Mode&^0o777 != 0 {
		return r, "", errResponse("%s %s: mode %#o: only permission bits (0777) may be set", op, r.Path, r.Mode), false, nil
	}
	if !filepath.IsAbs(r.Path) {
		return r, "", errResponse("%s %s: give an absolute path", op, r.Path), true, nil
	}
	p = filepath.Clean(r.Path)
	if refused = h.writableCheck(op, r.Path, p); refused != nil {
		return r, "", refused, true, nil
	}
	return r, p, nil, false, nil
}

// writableCheck applies the real host's rules for chmod and write_file to
// the clean absolute path p (docs/wasm-abi.md §6): inside a read-write
// mount but not the mount itself nor .slapnode, and no link on the way.
// It returns the error response, or nil.
func (h *Host) writableCheck(op, path, p string) map[string]any {
	if h.Writable == nil {
		return nil
	}
	mount := ""
	for _, d := range h.Writable {
		if within([]string{d}, p) && len(d) > len(mount) {
			mount = filepath.Clean(d)
		}
	}
	if mount == "" {
		return errResponse("%s %s: outside the directories this recipe is granted", op, path)
	}
	rel, _ := filepath.Rel(mount, p)
	if rel == "." {
		return errResponse("%s %s: the mount's directory itself keeps the mode the node gave it", op, path)
	}
	if first, _, _ := strings.Cut(filepath.ToSlash(rel), "/"); first == ".slapnode" {
		return errResponse("%s %s: the node's state is not the recipe's", op, path)
	}
	// No link on the way either (the host resolves without following).
	for d := filepath.Dir(p); d != mount && len(d) > len(mount); d = filepath.Dir(d) {
		if fi, err := os.Lstat(d); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return errResponse("%s %s: refusing to follow a symbolic link (a component of the name is a link)", op, path)
		}
	}
	return nil
}

// mkdir does what the real host's slapnode.mkdir does: chmod's rules for
// where (a path elsewhere is left to the guest: fallback), the missing
// parents made 0755, the directory itself with mode less group and other
// write; an existing directory left as it is.
func (h *Host) mkdir(request []byte) (any, error) {
	r, p, refused, where, err := h.pathModeRequest("mkdir", request)
	if err != nil || refused != nil {
		if where {
			refused["fallback"] = true // the guest looks for itself
		}
		return refused, err
	}
	var missing []string
	for d := p; ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err == nil {
			if !fi.IsDir() {
				return errResponse("mkdir %s: %s exists and is not a directory", r.Path, d), nil
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			return errResponse("mkdir %s: %v", r.Path, err), nil
		}
		missing = append(missing, d)
	}
	created := 0
	for i := len(missing) - 1; i >= 0; i-- {
		perm := os.FileMode(0o755)
		if i == 0 {
			perm = 0o700
		}
		if err := os.Mkdir(missing[i], perm); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return errResponse("mkdir %s: %v", r.Path, err), nil
		}
		created++
		if i == 0 {
			if err := os.Chmod(missing[i], os.FileMode(r.Mode&^0o022)); err != nil {
				return errResponse("mkdir %s: %v", r.Path, err), nil
			}
		}
	}
	return map[string]any{"created": created}, nil
}

// writeFile does what the real host's slapnode.write_file does: chmod's
// rules for where, then a temporary file beside the target, its mode
// (group and other write bits dropped), a rename over the target.
func (h *Host) writeFile(request []byte) (any, error) {
	head, data, ok := bytes.Cut(request, []byte("\n"))
	if !ok {
		return errResponse("write_file: bad request: no newline after the JSON header"), nil
	}
	var r struct {
		Path string `json:"path"`
		Mode uint32 `json:"mode"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal(head, &r); err != nil {
		return nil, err
	}
	if int64(len(data)) != r.Size {
		return errResponse("write_file %s: the request carries %d bytes, its header says %d", r.Path, len(data), r.Size), nil
	}
	if r.Mode&^0o777 != 0 {
		return errResponse("write_file %s: mode %#o: only permission bits (0777) may be set", r.Path, r.Mode), nil
	}
	if !filepath.IsAbs(r.Path) {
		return errResponse("write_file %s: give an absolute path", r.Path), nil
	}
	p := filepath.Clean(r.Path)
	if refused := h.writableCheck("write_file", r.Path, p); refused != nil {
		return refused, nil
	}
	if _, err := os.Lstat(filepath.Dir(p)); errors.Is(err, fs.ErrNotExist) {
		return map[string]any{"error": fmt.Sprintf("write_file %s: %s does not exist", r.Path, filepath.Dir(p)), "missing_dir": true}, nil
	}
	tmp := p + ".slapnode-tmp"
	if fi, err := os.Lstat(tmp); err == nil && !fi.Mode().IsRegular() {
		return errResponse("write_file %s: %s is not a regular file", r.Path, tmp), nil
	}
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Chmod(tmp, os.FileMode(r.Mode&^0o022))
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return errResponse("write_file %s: %v", r.Path, err), nil
	}
	return map[string]any{}, nil
}

// chmod does what the real host's slapnode.chmod does (docs/wasm-abi.md
// §6): permission bits only, inside the read-write mounts but never on a
// mount itself or on .slapnode, never through a symbolic link, never on a
// hard link to a file of another owner, and without write bits for group
// and others (0777 gives 0755).
func (h *Host) chmod(request []byte) (any, error) {
	r, p, refused, _, err := h.pathModeRequest("chmod", request)
	if err != nil || refused != nil {
		return refused, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return errResponse("chmod %s: %v", r.Path, err), nil
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return errResponse("chmod %s: refusing to follow a symbolic link", r.Path), nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() && st.Nlink > 1 && int(st.Uid) != os.Geteuid() {
		return errResponse("chmod %s: a hard link (%d links) to a file of uid %d: refusing to change it", r.Path, st.Nlink, st.Uid), nil
	}
	if err := os.Chmod(p, os.FileMode(r.Mode&^0o022)); err != nil {
		return errResponse("chmod %s: %v", r.Path, err), nil
	}
	return map[string]any{}, nil
}
