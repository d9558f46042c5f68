package recipe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Partition is the partition an instance part runs in (absent for software parts).
type Partition struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	User string `json:"user,omitempty"`
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
}

// Software is the software release being installed or instantiated.
type Software struct {
	Path string `json:"path"`
	URL  string `json:"url,omitempty"`
}

// Node identifies the slapnode node.
type Node struct {
	ID   string `json:"id"`
	Root string `json:"root"`
}

// CallContext is the "context" object of a call (docs/wasm-abi.md §4.1).
type CallContext struct {
	// Kind is "software" or "instance".
	Kind       string     `json:"kind"`
	Partition  *Partition `json:"partition,omitempty"`
	Software   Software   `json:"software"`
	ProfileDir string     `json:"profile_dir,omitempty"`
	CacheDir   string     `json:"cache_dir,omitempty"`
	Node       Node       `json:"node"`
}

// Previous is what the last successful install of a part returned and the
// options it ran with; set on update and uninstall.
type Previous struct {
	Options   Options        `json:"options"`
	Outputs   map[string]any `json:"outputs"`
	Installed []string       `json:"installed"`
}

// Context is what a recipe or promise knows about its call, and its access
// to the host functions. Its host methods are safe to call only during the
// call that received it.
type Context struct {
	CallContext
	// Entry is the entry point: "recipe_install", "recipe_update",
	// "recipe_uninstall" or "promise_check".
	Entry string
	// Name is the recipe or promise name.
	Name string
	// Part is the part name (recipes) or the promise block name (promises).
	Part string
	// Phase is "install", "update" or "uninstall" ("check" for promises).
	Phase string
	// Previous is nil on a first install.
	Previous *Previous

	host Host
}

// Dir returns the directory a part writes into by default: the partition
// directory for instance parts, the software directory for software parts.
func (c Context) Dir() string {
	if c.Partition != nil && c.Partition.Path != "" {
		return c.Partition.Path
	}
	return c.Software.Path
}

// PreviousOutput returns the named output of the previous install, if any.
func (c Context) PreviousOutput(name string) (any, bool) {
	if c.Previous == nil || c.Previous.Outputs == nil {
		return nil, false
	}
	v, ok := c.Previous.Outputs[name]
	return v, ok
}

// Level is a log level of the host's log function.
type Level int32

// Log levels, as docs/wasm-abi.md §6 numbers them.
const (
	Debug Level = 0
	Info  Level = 1
	Warn  Level = 2
	Error Level = 3
)

// Log logs an informational line through the host.
func (c Context) Log(format string, args ...any) { c.LogLevel(Info, format, args...) }

// LogLevel logs a line at level through the host.
func (c Context) LogLevel(level Level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.host != nil {
		c.host.Log(level, msg)
		return
	}
	platformLog(level, msg)
}

// callRaw sends an encoded request to a host function and returns its
// response as is.
func (c Context) callRaw(function string, direct func([]byte) ([]byte, error), req []byte) ([]byte, error) {
	var raw []byte
	var err error
	if c.host != nil {
		raw, err = c.host.Call(function, req)
	} else {
		raw, err = direct(req)
	}
	if err != nil {
		return nil, fmt.Errorf("host function %s: %w", function, err)
	}
	return raw, nil
}

// call sends one JSON request to a host function and decodes its response;
// a response "error" field becomes the returned error.
//
// direct is the platform's own binding of that function. It is passed by
// each method rather than looked up by name so that a module links (and
// therefore imports) only the host functions it actually calls: a module
// that imports slapnode.exec must be granted exec to load at all.
func (c Context) call(function string, direct func([]byte) ([]byte, error), req, resp any) error {
	raw, err := c.callRaw(function, direct, marshal(req))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("host function %s answered malformed JSON (%v): %.200s", function, err, raw)
	}
	return nil
}

type downloadRequest struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256,omitempty"`
	MD5    string `json:"md5,omitempty"`
}

// Downloaded describes a file the host downloaded into its cache.
type Downloaded struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Error  string `json:"error,omitempty"`
}

// Download fetches url (http(s), file:// or a path inside the profile
// directory) into the node's read-only download cache, verifying its
// SHA-256, and returns the cached file's path. The profile must grant the
// destination (allow_net) for network URLs.
func (c Context) Download(url, sha256 string) (string, error) {
	d, err := c.DownloadFile(url, sha256, "")
	return d.Path, err
}

// DownloadFile is Download with either checksum: exactly one of sha256 and
// md5sum must be set (SlapOS profiles often carry only an md5sum).
func (c Context) DownloadFile(url, sha256, md5sum string) (Downloaded, error) {
	if sha256 == "" && md5sum == "" {
		return Downloaded{}, fmt.Errorf("download %s: a sha256 (or md5sum) checksum is required", url)
	}
	var d Downloaded
	if err := c.call("download", platformDownload, downloadRequest{URL: url, SHA256: sha256, MD5: md5sum}, &d); err != nil {
		return Downloaded{}, err
	}
	if d.Error != "" {
		if strings.Contains(d.Error, url) {
			// The host's message already names the URL.
			return Downloaded{}, errors.New(d.Error)
		}
		return Downloaded{}, fmt.Errorf("download %s: %s", url, d.Error)
	}
	if d.Path == "" {
		return Downloaded{}, fmt.Errorf("download %s: the host returned no path", url)
	}
	return d, nil
}

type execRequest struct {
	Argv      []string          `json:"argv"`
	Dir       string            `json:"dir,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
}

// ExecResult is the outcome of a command run by the host.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
	Error    string `json:"error,omitempty"`
}

// Exec runs argv on the host (argv[0] must be granted by allow_exec) in dir
// with env added to a clean environment. The error is set when the command
// could not run or timed out; a command that ran and failed returns its
// non-zero ExitCode with a nil error (see Run).
func (c Context) Exec(argv []string, dir string, env map[string]string, timeout time.Duration) (ExecResult, error) {
	if len(argv) == 0 {
		return ExecResult{}, errors.New("exec: empty command")
	}
	var r ExecResult
	err := c.call("exec", platformExec, execRequest{Argv: argv, Dir: dir, Env: env, TimeoutMS: timeout.Milliseconds()}, &r)
	if err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, fmt.Errorf("exec %s: %s", strings.Join(argv, " "), r.Error)
	}
	return r, nil
}

// Run is Exec that also fails on a non-zero exit status, with the end of
// the command's output in the error.
func (c Context) Run(argv []string, dir string, env map[string]string, timeout time.Duration) (ExecResult, error) {
	r, err := c.Exec(argv, dir, env, timeout)
	if err != nil {
		return r, err
	}
	if r.ExitCode != 0 {
		return r, fmt.Errorf("command %s (in %s) exited with status %d:\n%s", strings.Join(argv, " "), dir, r.ExitCode, tail(r.Output, 4096))
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

type tcpProbeRequest struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

type probeResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// TCPProbe reports whether host:port accepts a TCP connection within timeout:
// nil when it does, else the reason.
func (c Context) TCPProbe(host string, port int, timeout time.Duration) error {
	var r probeResponse
	if err := c.call("tcp_probe", platformTCPProbe, tcpProbeRequest{Host: host, Port: port, TimeoutMS: timeout.Milliseconds()}, &r); err != nil {
		return err
	}
	if !r.OK {
		if r.Error == "" {
			r.Error = "not reachable"
		}
		return errors.New(r.Error)
	}
	return nil
}

// HTTPOptions tunes HTTPGet.
type HTTPOptions struct {
	Timeout time.Duration
	// Insecure skips TLS certificate verification.
	Insecure bool
	// MaxBytes caps the body returned (the host's default when 0).
	MaxBytes int
}

type httpGetRequest struct {
	URL       string `json:"url"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	Insecure  bool   `json:"insecure"`
	MaxBytes  int    `json:"max_bytes,omitempty"`
}

// HTTPResponse is the answer to HTTPGet.
type HTTPResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error,omitempty"`
}

// HTTPGet fetches url through the host (the destination must be granted).
// The error is set when no HTTP response was received.
func (c Context) HTTPGet(url string, o HTTPOptions) (HTTPResponse, error) {
	var r HTTPResponse
	if err := c.call("http_get", platformHTTPGet, httpGetRequest{URL: url, TimeoutMS: o.Timeout.Milliseconds(), Insecure: o.Insecure, MaxBytes: o.MaxBytes}, &r); err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, fmt.Errorf("GET %s: %s", url, r.Error)
	}
	return r, nil
}
