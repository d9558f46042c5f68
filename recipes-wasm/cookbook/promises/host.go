package promises

import (
	"fmt"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Host checks need what a WebAssembly guest cannot have: the supervisor's
// state, a partition program run as the partition user, statfs (absent from
// WASI preview 1). The node's promise runner (package promise of slapnode)
// runs them natively. They are declared here so that a profile's
// `check = "cookbook:check_command"` (or "promises:…") is known and its
// options are validated against one schema, at apply, like every other check.
var hostChecks = []struct {
	name, description, schema string
}{
	{"check_command", "An executable of the partition exits 0 within the promise timeout, run as the partition user (SlapOS's legacy etc/promise executables).",
		`{"type":"object","required":["command"],"properties":{
			"command":{"type":["string","array"],"items":{"type":"string"},"description":"path (relative to the partition) or argv"},
			"env":{"type":"object","additionalProperties":{"type":"string"}}}}`},
	{"check_service_running", "A service of the partition is RUNNING (or SCHEDULED, for a job) in the node's supervisor.",
		`{"type":"object","required":["service"],"properties":{
			"service":{"type":"string"},
			"partition":{"type":"string","description":"default: the promise's own partition"}}}`},
	{"check_free_disk_space", "The file system holding a path has at least some free space.",
		`{"type":"object","properties":{
			"path":{"type":"string","description":"default: the partition"},
			"min_free":{"type":["integer","string"],"description":"bytes, or a size such as \"500MiB\" (default 1GiB)"},
			"min_free_percent":{"type":["number","string"],"minimum":0,"maximum":100}}}`},
}

func registerHostChecks(g *recipe.Registry) {
	for _, h := range hostChecks {
		name := h.name
		g.RegisterPromise(name, recipe.Promise{
			Description: h.description,
			Schema:      h.schema,
			// Reached only when a host calls promise_check itself instead of
			// handing the check to slapnode's promise runner.
			Check: func(recipe.Context, recipe.Options) (bool, string) {
				return false, fmt.Sprintf("%s is run by the node's promise runner, not inside WebAssembly: run it with 'slapnode promise run'", name)
			},
		})
	}
}
