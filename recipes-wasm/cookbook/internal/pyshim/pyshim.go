// Package pyshim runs the Python code of SlapOS profiles (the init,
// install and update code of slapos.recipe.build, the hooks of
// slapos.recipe.cmmi) with the host's python3, outside the WebAssembly
// sandbox: the cookbook writes a small Python file of its own (shim.py,
// embedded here) next to the part and runs it through the exec host
// function, which therefore needs allow_exec = ["python3"].
package pyshim

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

//go:embed shim.py
var source []byte

// Source returns the shim's Python source (for tests and documentation).
func Source() []byte { return source }

// Python is the command the shim runs with: the host's python3, granted by
// the module block.
const Python = "python3"

// Grant says how to grant what the shim needs; errors end with it.
const Grant = `Python code runs with the host's python3, outside the WebAssembly sandbox: grant it with allow_exec = ["python3"] in the cookbook's module block`

// Request is one run of the shim.
type Request struct {
	// Mode is "build" (slapos.recipe.build code) or "hook" (a cmmi hook).
	Mode string `json:"mode"`
	// Name is the part (section) name: self.name, and the code's file name
	// in tracebacks.
	Name string `json:"name"`
	// Options are the section's options: buildout's strings, and the
	// objects SlapOS's buildout lets an option hold (a whole
	// ${slap-configuration:configuration} is a dict): see Values.
	Options map[string]any `json:"options"`
	// Buildout holds the other sections the code may read.
	Buildout map[string]map[string]string `json:"buildout,omitempty"`
	// DefaultLocation is the location when the options set none (build).
	DefaultLocation string `json:"default_location,omitempty"`
	// Script and Function name a hook (hook mode).
	Script   string `json:"script,omitempty"`
	Function string `json:"function,omitempty"`
	// Environment is the environment option, unparsed (NAME=VALUE lines or
	// a section name), or an object.
	Environment any `json:"environment,omitempty"`
}

// Result is what the shim returns: the options after the code ran.
type Result struct {
	// Options are strings, or the objects the code set (SlapOS's buildout
	// accepts any value its dumps serialises: lists, dicts, numbers).
	Options map[string]any `json:"options"`
	Error   string         `json:"error"`
}

// Run writes the shim and the request next to the part (in ctx.Dir(), the
// partition or software directory, which the command's user may write) and
// runs python3 on them in dir with env.
func Run(ctx recipe.Context, req Request, dir string, env map[string]string, timeout time.Duration) (Result, error) {
	sum := sha256.Sum256(source)
	base := ctx.Dir()
	shim := filepath.Join(base, ".slapnode-shim-"+hex.EncodeToString(sum[:6])+".py")
	if b, err := os.ReadFile(shim); err != nil || string(b) != string(source) {
		if err := fsx.WriteFile(ctx, shim, source, 0o644); err != nil {
			return Result{}, fmt.Errorf("writing the Python shim: %w", err)
		}
	}
	tag := strings.NewReplacer("/", "_", " ", "_").Replace(ctx.Part)
	in := filepath.Join(base, ".slapnode-shim-"+tag+".in.json")
	out := filepath.Join(base, ".slapnode-shim-"+tag+".out.json")
	data, err := json.Marshal(req)
	if err != nil {
		return Result{}, err
	}
	if err := fsx.WriteFile(ctx, in, data, 0o644); err != nil {
		return Result{}, err
	}
	defer os.Remove(in)
	os.Remove(out)
	defer os.Remove(out)
	r, err := ctx.Exec([]string{Python, shim, in, out}, dir, env, timeout)
	if err != nil {
		if strings.Contains(err.Error(), "not granted") {
			return Result{}, fmt.Errorf("%w. %s", err, Grant)
		}
		return Result{}, err
	}
	var res Result
	b, rerr := os.ReadFile(out)
	if rerr == nil {
		if err := json.Unmarshal(b, &res); err != nil {
			return Result{}, fmt.Errorf("the Python shim answered malformed JSON: %v", err)
		}
	}
	if r.ExitCode != 0 || res.Error != "" {
		msg := res.Error
		if msg == "" {
			msg = fmt.Sprintf("python3 exited with status %d", r.ExitCode)
		}
		if t := strings.TrimSpace(r.Output); t != "" {
			msg += ":\n" + tail(t, 4096)
		}
		return res, errors.New(msg)
	}
	if rerr != nil {
		return Result{}, fmt.Errorf("the Python shim wrote no result: %v\n%s", rerr, tail(r.Output, 4096))
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Strings turns recipe options into buildout's strings, under their
// buildout names (mangled names decoded: `__2dextends` is `-extends`):
// lists become lines, booleans true/false, numbers their decimal form;
// objects are left out (they are not buildout options), and so are the
// options named in skip.
func Strings(opts recipe.Options, skip ...string) map[string]string {
	out := map[string]string{}
	for k, v := range opts {
		if contains(skip, k) {
			continue
		}
		if s, ok := String(v); ok {
			out[fsx.Unmangle(k)] = s
		}
	}
	return out
}

// Values is Strings, keeping the options that are objects (or lists of
// objects) as they are: SlapOS's buildout hands such a value, a whole
// ${slap-configuration:configuration}, to Python code as a dict.
func Values(opts recipe.Options, skip ...string) map[string]any {
	out := map[string]any{}
	for k, v := range opts {
		if contains(skip, k) {
			continue
		}
		if s, ok := String(v); ok {
			out[fsx.Unmangle(k)] = s
		} else {
			out[fsx.Unmangle(k)] = v
		}
	}
	return out
}

// Any is a map of strings as Request.Options.
func Any(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// String is one option value as buildout's string; ok is false for objects.
func String(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case int64:
		return fmt.Sprint(x), true
	case float64:
		return fmt.Sprint(x), true
	case []any:
		var lines []string
		for _, e := range x {
			s, ok := String(e)
			if !ok {
				return "", false
			}
			lines = append(lines, s)
		}
		return strings.Join(lines, "\n"), true
	}
	return "", false
}

// Sections reads the "buildout" option: section name → its options.
func Sections(opts recipe.Options, key string) (map[string]map[string]string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("option %q must be an object of sections (name = { option = value }), not %s", key, recipe.TypeName(v))
	}
	out := map[string]map[string]string{}
	for name, sec := range m {
		sm, ok := sec.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("option %q: section %q must be an object of options, not %s", key, name, recipe.TypeName(sec))
		}
		out[name] = Strings(recipe.Options(sm))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
