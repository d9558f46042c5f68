package recipe

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// ABIVersion is the version of docs/wasm-abi.md this SDK implements.
const ABIVersion = 1

// Func is the signature of a recipe entry point (install, update, uninstall).
type Func func(ctx Context, opts Options) (Result, error)

// Recipe is one recipe of a module.
type Recipe struct {
	// Description is one sentence shown by slapnode describe/plan.
	Description string
	// Schema is the JSON Schema of the options (docs/wasm-abi.md §3). An empty
	// Schema means {"type":"object"}: options are passed unchecked.
	Schema string
	// Outputs lists output names known in advance (for slapnode plan).
	Outputs []string
	// Install creates the part. Required.
	Install Func
	// Update changes an installed part in place. When nil, an update runs
	// Install again with Context.Previous set, then removes the previous
	// install's Installed paths that the new one does not report: recipes
	// whose install simply overwrites what it made need nothing more.
	Update Func
	// Uninstall cleans up beyond the Installed paths, which the host removes
	// itself. When nil, uninstall does nothing in the guest.
	Uninstall Func
}

// CheckFunc is the signature of a promise check: ok and a human message.
type CheckFunc func(ctx Context, opts Options) (ok bool, message string)

// Promise is one promise check of a module.
type Promise struct {
	Description string
	// Schema is the JSON Schema of the promise's options.
	Schema string
	Check  CheckFunc
}

// Result is what a recipe returns (docs/wasm-abi.md §4.2).
type Result struct {
	// Outputs are published to the parts that reference this one. The host
	// also exposes every option under its name unless overridden here.
	Outputs map[string]any
	// Installed are the paths the host removes on uninstall.
	Installed []string
	// Messages are printed with -v and logged.
	Messages []string
}

// Registry holds the recipes and promises of one module. Most modules use
// the default registry through Register, RegisterPromise and SetModule.
type Registry struct {
	mu       sync.Mutex
	module   string
	version  string
	recipes  map[string]Recipe
	promises map[string]Promise
	// contexts is the last call context Dispatch decoded.
	contexts contextCache
}

// NewRegistry returns an empty registry for module name at version.
func NewRegistry(module, version string) *Registry {
	return &Registry{module: module, version: version, recipes: map[string]Recipe{}, promises: map[string]Promise{}}
}

var defaultRegistry = NewRegistry("module", "0.0.0")

// Default returns the registry the ABI exports serve.
func Default() *Registry { return defaultRegistry }

// SetModule names the module and its version in the description.
func SetModule(name, version string) { defaultRegistry.SetModule(name, version) }

// Register adds a recipe to the default registry. It panics on a programming
// error (empty name, duplicate, missing Install, schema that is not JSON) so
// that a broken module fails its first test rather than at deploy time.
func Register(name string, r Recipe) { defaultRegistry.Register(name, r) }

// RegisterPromise adds a promise check to the default registry; it panics on
// programming errors like Register.
func RegisterPromise(name string, p Promise) { defaultRegistry.RegisterPromise(name, p) }

// SetModule names the module and its version in the description.
func (g *Registry) SetModule(name, version string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.module, g.version = name, version
}

// Register adds a recipe; see the package-level Register.
func (g *Registry) Register(name string, r Recipe) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if name == "" {
		panic("recipe.Register: empty recipe name")
	}
	if _, dup := g.recipes[name]; dup {
		panic(fmt.Sprintf("recipe.Register: recipe %q registered twice", name))
	}
	if r.Install == nil {
		panic(fmt.Sprintf("recipe.Register: recipe %q has no Install function", name))
	}
	checkSchema("recipe", name, r.Schema)
	g.recipes[name] = r
}

// RegisterPromise adds a promise check; see the package-level RegisterPromise.
func (g *Registry) RegisterPromise(name string, p Promise) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if name == "" {
		panic("recipe.RegisterPromise: empty promise name")
	}
	if _, dup := g.promises[name]; dup {
		panic(fmt.Sprintf("recipe.RegisterPromise: promise %q registered twice", name))
	}
	if p.Check == nil {
		panic(fmt.Sprintf("recipe.RegisterPromise: promise %q has no Check function", name))
	}
	checkSchema("promise", name, p.Schema)
	g.promises[name] = p
}

func checkSchema(kind, name, schema string) {
	if schema == "" {
		return
	}
	// Checked, not decoded: Register runs in package initialisers, so at
	// every instantiation of the module, where decoding the cookbook's
	// 35 KB of schemas into maps took 4 ms
	// (docs/adr/0014-guest-json-without-reflection.md).
	r := &jsonReader{b: []byte(schema)}
	var err error
	if r.peek() != '{' {
		err = r.unexpected("an object")
	} else if err = r.skip(); err == nil {
		err = r.end()
	}
	if err != nil {
		panic(fmt.Sprintf("recipe: the schema of %s %q is not a JSON object: %v", kind, name, err))
	}
}

// RecipeNames returns the registered recipe names, sorted.
func (g *Registry) RecipeNames() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return sortedKeys(g.recipes)
}

// PromiseNames returns the registered promise names, sorted.
func (g *Registry) PromiseNames() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return sortedKeys(g.promises)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type describedRecipe struct {
	Description string          `json:"description"`
	Options     json.RawMessage `json:"options"`
	Outputs     []string        `json:"outputs,omitempty"`
}

type describedPromise struct {
	Description string          `json:"description"`
	Options     json.RawMessage `json:"options"`
}

type description struct {
	ABI      int                         `json:"abi"`
	Module   string                      `json:"module"`
	Version  string                      `json:"version"`
	Recipes  map[string]describedRecipe  `json:"recipes"`
	Promises map[string]describedPromise `json:"promises"`
}

func schemaOrObject(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage(`{"type":"object"}`)
	}
	return json.RawMessage(s)
}

// Describe returns the description JSON of docs/wasm-abi.md §3.
func (g *Registry) Describe() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := description{ABI: ABIVersion, Module: g.module, Version: g.version,
		Recipes: map[string]describedRecipe{}, Promises: map[string]describedPromise{}}
	for name, r := range g.recipes {
		d.Recipes[name] = describedRecipe{Description: r.Description, Options: schemaOrObject(r.Schema), Outputs: r.Outputs}
	}
	for name, p := range g.promises {
		d.Promises[name] = describedPromise{Description: p.Description, Options: schemaOrObject(p.Schema)}
	}
	return marshal(d)
}

func (g *Registry) recipe(name string) (Recipe, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.recipes[name]
	return r, ok
}

func (g *Registry) promise(name string) (Promise, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.promises[name]
	return p, ok
}
