package instance

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// freePort follows slapos.cookbook:free_port: the port of the previous
// install is kept (unless it was 0); otherwise ports from minimum up to
// maximum (excluded) are tried in order and the first one nothing listens
// on is taken; minimum = maximum gives that port; an ip that is not an IP
// address gives 0. A WebAssembly recipe cannot bind a socket, so a port is
// free when the host's tcp_probe finds nothing listening there, which
// needs allow_net = ["tcp://IP:*"].
func freePort(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	out := func(port int, why string) (recipe.Result, error) {
		return recipe.Result{Outputs: map[string]any{"port": strconv.Itoa(port)}, Messages: []string{why}}, nil
	}
	if prev, ok := ctx.PreviousOutput("port"); ok {
		if s := fmt.Sprint(prev); s != "0" && s != "" {
			if n, err := strconv.Atoi(s); err == nil {
				return out(n, "port kept from the previous install")
			}
		}
	}
	min, err := opts.Int("minimum", 1024)
	if err != nil {
		return recipe.Result{}, err
	}
	max, err := opts.Int("maximum", 49151)
	if err != nil {
		return recipe.Result{}, err
	}
	if min == max {
		return out(int(min), "minimum = maximum")
	}
	ipStr, err := opts.StringOr("ip", "")
	if err != nil {
		return recipe.Result{}, err
	}
	ip, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(ipStr), "[]"))
	if err != nil {
		return out(0, fmt.Sprintf("%q is not an IP address: port 0", ipStr))
	}
	for port := min; port < max; port++ {
		perr := ctx.TCPProbe(ip.String(), int(port), 300*time.Millisecond)
		if perr == nil {
			continue // something listens
		}
		if strings.Contains(perr.Error(), "not granted") {
			pat := "tcp://" + ip.String() + ":*"
			if ip.Is6() {
				pat = "tcp://[" + ip.String() + "]:*"
			}
			return recipe.Result{}, fmt.Errorf("free-port probes ports through the host: %v; grant it with allow_net = [%q] in the cookbook's module block", perr, pat)
		}
		return out(int(port), "first port nothing listens on")
	}
	return out(0, "no free port in the range")
}

// portCheck writes the executable promise of
// slapos.cookbook:check_port_listening: exit 127 with a message when
// nothing accepts connections on hostname:port.
func portCheck(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	path, err := opts.String("path")
	if err != nil {
		return recipe.Result{}, err
	}
	host, err := opts.String("hostname")
	if err != nil {
		return recipe.Result{}, err
	}
	port, err := opts.Int("port", 0)
	if err != nil || port < 1 || port > 65535 {
		return recipe.Result{}, fmt.Errorf("option \"port\" must be a port number (1-65535): %v", opts["port"])
	}
	path = fsx.Resolve(ctx, path)
	script := fmt.Sprintf(`#!/usr/bin/env python3
# Written by slapnode's cookbook (port-check, part %s): do not edit.
import socket
import sys

addr = %s, %d
try:
    socket.create_connection(addr, timeout=10).close()
except (socket.error, socket.timeout):
    sys.stderr.write("%%s on %%s isn't listening\n" %% addr)
    sys.exit(127)
`, ctx.Part, pyRepr(host), port)
	if err := fsx.WriteFile(ctx, path, []byte(script), 0o755); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": path}, Installed: []string{path}}, nil
}

// userinfo reports the partition user as slapos.cookbook:userinfo does
// (pw-name, pw-uid, pw-gid, pw-dir, pw-shell, gr-name, gr-gid). The recipe
// cannot read the user database from WebAssembly: it asks the host's id
// and getent, run as the partition user (allow_exec = ["id", "getent"]).
func userinfo(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	run := func(argv ...string) (string, error) {
		r, err := ctx.Run(argv, ctx.Dir(), nil, 30*time.Second)
		if err != nil {
			if strings.Contains(err.Error(), "not granted") {
				return "", fmt.Errorf("%w (userinfo asks the host: grant allow_exec = [\"id\", \"getent\"] in the cookbook's module block)", err)
			}
			return "", err
		}
		lines := recipe.Lines(r.Output)
		if len(lines) == 0 {
			return "", fmt.Errorf("%s printed nothing", strings.Join(argv, " "))
		}
		return lines[len(lines)-1], nil
	}
	uid, err := run("id", "-u")
	if err != nil {
		return recipe.Result{}, err
	}
	gid, err := run("id", "-g")
	if err != nil {
		return recipe.Result{}, err
	}
	pw, err := run("getent", "passwd", uid)
	if err != nil {
		return recipe.Result{}, err
	}
	f := strings.Split(pw, ":")
	if len(f) < 7 {
		return recipe.Result{}, fmt.Errorf("getent passwd %s: %q is not a passwd entry", uid, pw)
	}
	gr, err := run("getent", "group", gid)
	if err != nil {
		return recipe.Result{}, err
	}
	g := strings.Split(gr, ":")
	return recipe.Result{Outputs: map[string]any{
		"pw-name": f[0], "pw-uid": f[2], "pw-gid": f[3], "pw-dir": f[5], "pw-shell": f[6],
		"gr-name": g[0], "gr-gid": gid,
	}}, nil
}

// promisePlugin writes a promise plugin as slapos.cookbook:promise.plugin
// does: the paths, extra_config_dict (the config-* options), the module
// cleanup, then the import of RunPromise from module or file.
func promisePlugin(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	output, err := opts.String("output")
	if err != nil {
		return recipe.Result{}, err
	}
	module, _ := opts.StringOr("module", "")
	file, _ := opts.StringOr("file", "")
	class, _ := opts.StringOr("class", "")
	module, file, class = strings.TrimSpace(module), strings.TrimSpace(file), strings.TrimSpace(class)
	if (module == "") == (file == "") {
		return recipe.Result{}, fmt.Errorf("either 'module' or 'file' is required but not both")
	}
	if class == "RunPromise" {
		class = ""
	}
	if class != "" && !pyName(class) {
		return recipe.Result{}, fmt.Errorf("%q is not a valid class name", class)
	}
	var content string
	if module != "" {
		for _, p := range strings.Split(module, ".") {
			if !pyName(p) {
				return recipe.Result{}, fmt.Errorf("%q is not a valid module name", module)
			}
		}
		if class != "" {
			content = fmt.Sprintf("from %s import %s as RunPromise", module, class)
		} else {
			content = fmt.Sprintf("from %s import RunPromise", module)
		}
	} else {
		content = "def _(path):\n  global _\n  del _\n  with open(path) as f:\n    return compile(f.read(), path, 'exec')\nexec(_(" + pyRepr(fsx.Resolve(ctx, file)) + "))"
		if class != "" {
			content += "\n\nRunPromise = " + class
		}
	}
	paths, err := opts.StringList("python-path")
	if err != nil {
		return recipe.Result{}, err
	}
	config := map[string]string{}
	for k, v := range opts {
		name := fsx.Unmangle(k)
		if rest, ok := strings.CutPrefix(name, "config-"); ok {
			s, _ := scalar(v)
			config[rest] = s
		}
	}
	mode, err := opts.Mode("mode", 0o644)
	if err != nil {
		return recipe.Result{}, err
	}
	var b strings.Builder
	b.WriteString("# This script is auto generated by slapgrid, do not edit!\nimport sys\nsys.path[0:0] = (")
	for _, p := range paths {
		b.WriteString("\n  " + pyRepr(p) + ",")
	}
	b.WriteString(")\n\nextra_config_dict = {")
	for i, k := range fsx.SortedKeys(config) {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  " + pyRepr(k) + ": " + pyRepr(config[k]))
	}
	b.WriteString("}\n\n")
	b.WriteString(`# Imported modules of the slapos namespace (and pkg_resources, which
# declares namespaces) are dropped so that the plugin's own are imported
# from the paths above.
for module in list(sys.modules):
  if 'slapos' in module or 'pkg_resources' in module:
    del sys.modules[module]

`)
	b.WriteString(content + "\n")
	output = fsx.Resolve(ctx, output)
	if err := fsx.WriteFile(ctx, output, []byte(b.String()), mode); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": output, "output": output}, Installed: []string{output}}, nil
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case nil:
		return "", true
	default:
		return fmt.Sprint(x), true
	}
}

// pyName reports whether s is a Python identifier (ASCII).
func pyName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// pyRepr writes s as a Python string literal, as repr() would.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteByte(quote)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}
