package promise

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nsexec"
)

// SlapOS promise plugins (PARTITION/etc/plugin/*.py) are Python classes
// run by slapgrid's promise launcher. slapnode runs the plugins of
// slapos.toolbox that real profiles use as native checks with the same
// options (extra_config_dict, from the plugin's config-* options), and any
// other plugin with the host's python3 through an embedded shim offering
// GenericPromise's API, when the instance grants python3
// (plugin_python.go).

// pluginPrefix is the package of slapos.toolbox's plugins.
const pluginPrefix = "slapos.promise.plugin."

// checkPluginName is the native check running a plugin.
const checkPluginName = "check_plugin"

func init() { nativeChecks[checkPluginName] = checkPlugin }

// pluginOptions are the options of a plugin spec.
type pluginOptions struct {
	File   string            `json:"file"`
	Module string            `json:"module,omitempty"`
	Class  string            `json:"class,omitempty"`
	Config map[string]string `json:"config"`
	Python bool              `json:"python,omitempty"` // python3 is granted for plugins run by the shim
}

// nativePlugins are the slapos.toolbox plugins slapnode runs itself. Each
// senses as the plugin's sense() does; the periodicity and failure counts
// come from pluginSettings.
var nativePlugins = map[string]func(ctx context.Context, r *Runner, p *PartitionRef, conf map[string]string) (bool, string){
	"check_socket_listening": pluginSocketListening,
	"check_url_available":    pluginURLAvailable,
	"check_file_state":       pluginFileState,
	"check_command_execute":  pluginCommandExecute,
}

// pluginSettings are what a plugin's __init__ sets: its periodicity
// (the `frequency` option, in minutes), the failures that make an anomaly,
// and whether it counts in test or anomaly mode.
func pluginSettings(module string, conf map[string]string) (every time.Duration, failures int, test, anomaly bool) {
	num := func(key string, def float64) float64 {
		if v, err := strconv.ParseFloat(strings.TrimSpace(conf[key]), 64); err == nil && v > 0 {
			return v
		}
		return def
	}
	every = time.Duration(num("frequency", 2) * float64(time.Minute))
	failures, test, anomaly = 1, true, true
	switch strings.TrimPrefix(module, pluginPrefix) {
	case "check_socket_listening":
		failures = int(num("failure-amount", 3))
	case "check_url_available":
		failures = 3
	case "check_file_state":
		failures = int(num("failure-amount", 1))
		if truthy(conf["perdiodic-only"]) {
			test = false
		}
		if v := strings.ToLower(strings.TrimSpace(conf["report-anomaly"])); v == "false" || v == "no" || v == "0" {
			anomaly = false
		}
	case "check_command_execute":
		failures = int(num("failure_amount", 1))
	}
	return every, max(failures, 1), test, anomaly
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1":
		return true
	}
	return false
}

// pluginSpecs turns the plugins of PARTITION/etc/plugin into specs named
// after the file (title NAME for NAME.py), as slapgrid's launcher lists
// them: *.py files but __init__.py. A file that cannot be read as a plugin
// is a spec that fails saying why. python says whether the instance grants
// python3 to plugins slapnode does not run natively.
func pluginSpecs(partitionDir string, timeout time.Duration, python bool) []Spec {
	dir := filepath.Join(partitionDir, "etc", "plugin")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	root, err := os.OpenRoot(partitionDir)
	if err != nil {
		return nil
	}
	defer root.Close()
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".py") && !strings.HasPrefix(n, "__init__") && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var specs []Spec
	for _, n := range names {
		path := filepath.Join(dir, n)
		o := pluginOptions{File: path, Config: map[string]string{}, Python: python}
		s := Spec{Name: strings.TrimSuffix(n, ".py"), Check: "promises:" + checkPluginName,
			Module: ModuleRef{Name: "promises", Source: "builtin:cookbook"},
			Every:  Duration(DefaultEvery), Timeout: Duration(timeout), Test: true, Anomaly: true, FailureAmount: 1, plugin: path}
		// Through the partition's root: a link planted there cannot make
		// the node read a file outside it.
		if src, err := root.ReadFile(filepath.Join("etc", "plugin", n)); err == nil {
			if p, err := ParsePlugin(path, src); err == nil {
				o.Module, o.Class, o.Config = p.Module, p.Class, p.Config
				every, failures, test, anomaly := pluginSettings(p.Module, p.Config)
				s.Every, s.FailureAmount, s.Test, s.Anomaly = Duration(every), failures, test, anomaly
			}
		}
		s.Options, _ = json.Marshal(o)
		specs = append(specs, s)
	}
	return specs
}

// checkPlugin senses a plugin: natively for slapos.toolbox's common
// plugins, else with python3 through the shim when granted.
func checkPlugin(ctx context.Context, r *Runner, p *PartitionRef, raw json.RawMessage) (bool, string) {
	var o pluginOptions
	if err := json.Unmarshal(raw, &o); err != nil {
		return false, fmt.Sprintf("plugin options: %v", err)
	}
	if o.Class == "" {
		if name, ok := strings.CutPrefix(o.Module, pluginPrefix); ok {
			if fn := nativePlugins[name]; fn != nil {
				return fn(ctx, r, p, o.Config)
			}
		}
	}
	if !o.Python {
		what := "it defines its own promise"
		if o.Module != "" {
			what = "it imports " + o.Module
		}
		return false, fmt.Sprintf("%s: %s, which slapnode does not run natively, and python3 is not granted to this instance (allow_exec = [\"python3\"] on its cookbook module runs it with the host's python3)", o.File, what)
	}
	ok, msg := runPythonPlugin(ctx, p, o)
	if !ok && strings.HasPrefix(o.Module, pluginPrefix) && strings.Contains(msg, "No module named 'slapos") {
		msg += ": " + missingToolbox(o.Module)
	}
	return ok, msg
}

// missingToolbox says why a slapos.toolbox plugin could not be imported:
// slapnode runs some natively, the others need slapos.toolbox installed
// for the host's python3 (or the module does not exist: check_port_listening
// is a slapos.cookbook recipe, not a plugin).
func missingToolbox(module string) string {
	names := make([]string, 0, len(nativePlugins))
	for n := range nativePlugins {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprintf("slapnode runs natively the slapos.toolbox plugins %s; %s needs slapos.toolbox installed for the host's python3 (for a TCP port, check_socket_listening with config-host and config-port does what a check_port_listening would)",
		strings.Join(names, ", "), module)
}

// pluginSocketListening is check_socket_listening: a TCP connection to
// host:port, or a Unix socket at pathname (or in the abstract namespace).
func pluginSocketListening(ctx context.Context, _ *Runner, p *PartitionRef, conf map[string]string) (bool, string) {
	const usage = "Address must be specified in 1 of the following 3 forms: (host, port), path or abstract"
	host, port, path, abstract := conf["host"], conf["port"], conf["pathname"], conf["abstract"]
	var network, addr, shown string
	switch {
	case host != "":
		if path != "" || abstract != "" || port == "" {
			return false, usage
		}
		if _, err := strconv.Atoi(port); err != nil {
			return false, fmt.Sprintf("ValueError: invalid literal for int() with base 10: %q", port)
		}
		network, addr = "tcp", net.JoinHostPort(host, port)
		shown = fmt.Sprintf("('%s', %s)", host, port)
	case (path == "") == (abstract == ""):
		return false, usage
	case path != "":
		network, addr, shown = "unix", path, fmt.Sprintf("'%s'", path)
	default:
		network, addr, shown = "unix", "@"+abstract, fmt.Sprintf("'\\x00%s'", abstract)
	}
	c, err := dialAs(ctx, p, network, addr)
	if err != nil {
		return false, socketError(err)
	}
	c.Close()
	return true, "socket connection OK " + shown
}

// socketError words a dial error as Python's socket module would.
func socketError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		name := map[syscall.Errno]string{syscall.ECONNREFUSED: "ConnectionRefusedError", syscall.ENOENT: "FileNotFoundError",
			syscall.EACCES: "PermissionError", syscall.ETIMEDOUT: "TimeoutError"}[errno]
		if name == "" {
			name = "OSError"
		}
		return fmt.Sprintf("%s: [Errno %d] %s", name, int(errno), pyStrerror(errno))
	}
	return "OSError: " + err.Error()
}

func pyStrerror(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// dialAs connects from the partition's network namespace and, for a Unix
// socket, with the partition user's file system identity, so that a
// plugin cannot make the node reach what its partition could not.
func dialAs(ctx context.Context, p *PartitionRef, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread may change namespace or identity: it is never given
		// back to the scheduler (it ends with this goroutine).
		runtime.LockOSThread()
		if network == "unix" && p.Credential != nil {
			unix.Setfsgid(int(p.Credential.Gid))
			unix.Setfsuid(int(p.Credential.Uid))
		}
		if network != "unix" && p.NetNS != "" {
			fd, err := unix.Open(nsexec.Path(p.NetNS), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				done <- result{err: fmt.Errorf("network namespace %s: %w", p.NetNS, err)}
				return
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				done <- result{err: fmt.Errorf("entering network namespace %s: %w", p.NetNS, err)}
				return
			}
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// readAs reads a file with the partition user's file system identity.
func readAs(p *PartitionRef, path string) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if p.Credential != nil {
			unix.Setfsgid(int(p.Credential.Gid))
			unix.Setfsuid(int(p.Credential.Uid))
		}
		b, err := os.ReadFile(path)
		done <- result{b, err}
	}()
	r := <-done
	return r.b, r.err
}

// pluginURLAvailable is check_url_available: a GET of url answers
// http-code (200), unless ignore-code; verify, ca-cert-file, cert-file and
// key-file, username and password, allow-redirects and timeout as the
// plugin has them.
func pluginURLAvailable(ctx context.Context, _ *Runner, p *PartitionRef, conf map[string]string) (bool, string) {
	url := conf["url"]
	intOr := func(key string, def int) int {
		if v, err := strconv.Atoi(strings.TrimSpace(conf[key])); err == nil {
			return v
		}
		return def
	}
	promiseTimeout := intOr("promise-timeout", 20)
	timeout := intOr("timeout", max(1, min(5, promiseTimeout-1)))
	expected := intOr("http-code", 200)
	ignore := intOr("ignore-code", 0) == 1
	tlsConf := &tls.Config{InsecureSkipVerify: intOr("verify", 0) == 0}
	if ca := conf["ca-cert-file"]; ca != "" {
		b, err := readAs(p, ca)
		if err != nil {
			return false, fmt.Sprintf("ERROR: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		tlsConf.RootCAs, tlsConf.InsecureSkipVerify = pool, false
	}
	if cf, kf := conf["cert-file"], conf["key-file"]; cf != "" && kf != "" {
		cb, err := readAs(p, cf)
		if err != nil {
			return false, fmt.Sprintf("ERROR: %v", err)
		}
		kb, err := readAs(p, kf)
		if err != nil {
			return false, fmt.Sprintf("ERROR: %v", err)
		}
		cert, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			return false, fmt.Sprintf("ERROR: %v", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	client := &http.Client{
		Timeout: time.Duration(timeout) * time.Second,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsConf, DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialAs(ctx, p, network, addr)
			}},
	}
	if intOr("allow-redirects", 1) == 0 {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Sprintf("ERROR: %v", err)
	}
	kind := "non-authenticated"
	if u, pw := conf["username"], conf["password"]; u != "" && pw != "" {
		req.SetBasicAuth(u, pw)
		kind = "authenticated"
	}
	resp, err := client.Do(req)
	if err != nil {
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			return false, fmt.Sprintf("ERROR SSL error while accessing '%s': %v", url, err)
		}
		return false, fmt.Sprintf("ERROR connection not possible while accessing '%s'", url)
	}
	resp.Body.Close()
	switch {
	case ignore:
		return true, fmt.Sprintf("%s request to '%s' succeeded (return code ignored)", kind, url)
	case resp.StatusCode == expected:
		return true, fmt.Sprintf("%s request to '%s' succeeded (returned expected code %d)", kind, url, expected)
	}
	return false, fmt.Sprintf("%s request to '%s' failed (returned %d, expected %d)", kind, url, resp.StatusCode, expected)
}

// pluginFileState is check_file_state: filename is absent, empty or
// not-empty (read as the partition user).
func pluginFileState(_ context.Context, _ *Runner, p *PartitionRef, conf map[string]string) (bool, string) {
	name, state, url := conf["filename"], conf["state"], strings.TrimSpace(conf["url"])
	b, err := readAs(p, name)
	exists := err == nil || !errors.Is(err, os.ErrNotExist)
	if state == "absent" {
		if exists {
			return false, fmt.Sprintf("ERROR '%s' not absent", name)
		}
		return true, fmt.Sprintf("OK '%s' state '%s'", name, state)
	}
	if !exists {
		return false, fmt.Sprintf("ERROR '%s' not present", name)
	}
	if err != nil {
		return false, fmt.Sprintf("ERROR %v during opening and reading file '%s'", err, name)
	}
	switch {
	case state == "empty" && len(b) > 0:
		msg := fmt.Sprintf("ERROR '%s' not empty", name)
		if url != "" {
			msg += ", content available at " + url
		}
		return false, msg
	case state == "not-empty" && len(b) == 0:
		return false, fmt.Sprintf("ERROR '%s' empty", name)
	}
	return true, fmt.Sprintf("OK '%s' state '%s'", name, state)
}

// pluginCommandExecute is check_command_execute: command run by the
// shell, as the partition user, in the partition; exit 0 is success.
func pluginCommandExecute(ctx context.Context, r *Runner, p *PartitionRef, conf map[string]string) (bool, string) {
	command := conf["command"]
	opts, _ := json.Marshal(map[string]any{"command": []string{"/bin/sh", "-c", command}})
	ok, out := checkCommand(ctx, r, p, opts)
	if ok {
		return true, fmt.Sprintf("OK '%s' run with success", command)
	}
	if ctx.Err() != nil {
		return false, out
	}
	return false, fmt.Sprintf("ERROR '%s' run with failure, output: %s", command, out)
}
