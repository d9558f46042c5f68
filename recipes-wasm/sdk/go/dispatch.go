package recipe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// Host is the guest's view of the host functions of docs/wasm-abi.md §6.
// Under GOOS=wasip1 it is the "slapnode" import module; in native tests it is
// a local implementation such as recipetest.Host.
type Host interface {
	// Log writes one log line.
	Log(level Level, message string)
	// Call invokes the host function named function ("download", "exec",
	// "tcp_probe", "http_get") with a JSON request and returns its JSON
	// response. An error means the request could not be delivered at all.
	Call(function string, request []byte) ([]byte, error)
}

// Entry points of docs/wasm-abi.md §1.1 that take an input.
const (
	EntryInstall   = "recipe_install"
	EntryUpdate    = "recipe_update"
	EntryUninstall = "recipe_uninstall"
	EntryCheck     = "promise_check"
)

type recipeInput struct {
	Recipe   string      `json:"recipe"`
	Part     string      `json:"part"`
	Phase    string      `json:"phase"`
	Options  Options     `json:"options"`
	Context  CallContext `json:"context"`
	Previous *Previous   `json:"previous"`
}

// RecipeOutput is the JSON a recipe entry point answers (docs/wasm-abi.md §4.2).
type RecipeOutput struct {
	Outputs   map[string]any `json:"outputs"`
	Installed []string       `json:"installed"`
	Messages  []string       `json:"messages"`
	Error     string         `json:"error"`
}

type promiseInput struct {
	Promise string      `json:"promise"`
	Name    string      `json:"name"`
	Options Options     `json:"options"`
	Context CallContext `json:"context"`
}

// CheckOutput is the JSON promise_check answers (docs/wasm-abi.md §5).
type CheckOutput struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Dispatch runs one entry point of the default registry: entry is one of the
// Entry* constants, input the call's JSON. It always returns the output JSON:
// failures, including panics in the recipe, are reported in its error field
// (or as a failed check) rather than trapping, so the host gets a message it
// can show.
func Dispatch(entry string, input []byte, host Host) []byte {
	return defaultRegistry.Dispatch(entry, input, host)
}

// Dispatch runs one entry point of g; see the package-level Dispatch.
func (g *Registry) Dispatch(entry string, input []byte, host Host) []byte {
	return g.appendDispatch(nil, entry, input, host)
}

// appendDispatch is Dispatch writing the output at the end of dst: the
// WebAssembly exports pass the previous call's output buffer, which the
// host has copied by then (docs/wasm-abi.md §2), to save its allocation
// and growth.
func (g *Registry) appendDispatch(dst []byte, entry string, input []byte, host Host) []byte {
	if entry == EntryCheck {
		return appendCheckOutput(dst, g.check(input, host))
	}
	out := g.runRecipe(entry, input, host)
	if dst == nil {
		dst = make([]byte, 0, 256)
	}
	b, err := appendRecipeOutput(dst, out)
	if err != nil {
		// Only a recipe's own outputs can fail to encode (a NaN, a
		// channel); reported like encoding/json reported it before.
		return marshal(out)
	}
	return b
}

func (g *Registry) runRecipe(entry string, input []byte, host Host) (out RecipeOutput) {
	out = RecipeOutput{Outputs: map[string]any{}, Installed: []string{}, Messages: []string{}}
	// Numbers are decoded exactly (int64 when integral), see Options.
	in, err := decodeRecipeInput(input, &g.contexts)
	if err != nil {
		out.Error = fmt.Sprintf("%s: malformed input JSON: %v", entry, err)
		return out
	}
	r, ok := g.recipe(in.Recipe)
	if !ok {
		out.Error = fmt.Sprintf("module %s has no recipe %q (it has: %s)", g.module, in.Recipe, strings.Join(g.RecipeNames(), ", "))
		return out
	}
	fn := r.Install
	phase := "install"
	switch entry {
	case EntryInstall:
	case EntryUpdate:
		phase = "update"
		if r.Update != nil {
			fn = r.Update
		}
	case EntryUninstall:
		phase = "uninstall"
		fn = r.Uninstall
		if fn == nil {
			return out
		}
	default:
		out.Error = fmt.Sprintf("unknown entry point %q", entry)
		return out
	}
	ctx := Context{CallContext: in.Context, Entry: entry, Name: in.Recipe, Part: in.Part, Phase: phase, Previous: in.Previous, host: host}
	if in.Options == nil {
		in.Options = Options{}
	}
	res, err := safeCall(func() (Result, error) { return fn(ctx, in.Options) })
	if err != nil {
		out.Error = fmt.Sprintf("part %q (recipe %s): %v", in.Part, in.Recipe, err)
		out.Messages = append(out.Messages, res.Messages...)
		return out
	}
	if res.Outputs != nil {
		out.Outputs = res.Outputs
	}
	if res.Installed != nil {
		out.Installed = res.Installed
	}
	if entry == EntryUpdate && r.Update == nil && in.Previous != nil {
		// Update ran Install again in place of the host's uninstall+install:
		// remove what the previous install made and this one no longer does
		// (an output file that moved), as that uninstall would have.
		for _, msg := range removeStale(in.Previous.Installed, out.Installed) {
			out.Messages = append(out.Messages, msg)
		}
	}
	if res.Messages != nil {
		out.Messages = res.Messages
	}
	return out
}

// removeStale removes the paths of old that are neither in current nor an
// ancestor or descendant of a path in it, and describes what it did.
func removeStale(old, current []string) []string {
	var msgs []string
	for _, p := range old {
		p = filepath.Clean(p)
		if p == "/" || p == "." {
			continue
		}
		keep := false
		for _, c := range current {
			c = filepath.Clean(c)
			if p == c || strings.HasPrefix(c, p+"/") || strings.HasPrefix(p, c+"/") {
				keep = true
				break
			}
		}
		if keep {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			msgs = append(msgs, fmt.Sprintf("could not remove %s, installed by the previous version of this part: %v", p, err))
		} else {
			msgs = append(msgs, "removed "+p+", installed by the previous version of this part")
		}
	}
	return msgs
}

// safeCall turns a panic into an error so one broken recipe reports instead
// of trapping the instance the other parts share.
func safeCall(fn func() (Result, error)) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}

func (g *Registry) check(input []byte, host Host) (out CheckOutput) {
	in, err := decodePromiseInput(input, &g.contexts)
	if err != nil {
		return CheckOutput{Message: fmt.Sprintf("promise_check: malformed input JSON: %v", err)}
	}
	if in.Options == nil {
		in.Options = Options{}
	}
	p, ok := g.promise(in.Promise)
	if !ok {
		return CheckOutput{Message: fmt.Sprintf("module %s has no promise %q (it has: %s)", g.module, in.Promise, strings.Join(g.PromiseNames(), ", "))}
	}
	ctx := Context{CallContext: in.Context, Entry: EntryCheck, Name: in.Promise, Part: in.Name, Phase: "check", host: host}
	defer func() {
		if r := recover(); r != nil {
			out = CheckOutput{Message: fmt.Sprintf("promise %s panicked: %v", in.Promise, r)}
		}
	}()
	ok, msg := p.Check(ctx, in.Options)
	return CheckOutput{OK: ok, Message: msg}
}

// marshal encodes v as JSON without HTML escaping (paths and commands with
// & or < stay readable in logs). Every value the SDK encodes is plain data,
// so an error here is a bug in a recipe's outputs; it is reported as JSON.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		msg, _ := json.Marshal(fmt.Sprintf("cannot encode the result as JSON: %v", err))
		fmt.Fprintf(&b, `{"outputs":{},"installed":[],"messages":[],"error":%s,"ok":false,"message":%s}`, msg, msg)
		return b.Bytes()
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
