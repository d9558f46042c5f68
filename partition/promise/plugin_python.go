package promise

import (
	"context"
	_ "embed"
	"encoding/json"
	"path/filepath"
)

// pluginShim offers a plugin the GenericPromise API (plugin_shim.py).
//
//go:embed plugin_shim.py
var pluginShim string

// runPythonPlugin senses a plugin with the host's python3 through the
// shim, as the partition user, in the partition, with a clean environment,
// killed with its process group at the promise's timeout (check_command's
// machinery).
func runPythonPlugin(ctx context.Context, p *PartitionRef, o pluginOptions) (bool, string) {
	conf, err := json.Marshal(map[string]any{
		"path":             o.File,
		"partition-folder": p.Path,
		"log-folder":       filepath.Join(p.Path, ".slapgrid", "promise", "log"),
		"partition-id":     p.ID,
		"promise-timeout":  int(DefaultTimeout.Seconds()),
	})
	if err != nil {
		return false, err.Error()
	}
	opts, _ := json.Marshal(map[string]any{"command": []string{"python3", "-I", "-c", pluginShim, string(conf)}})
	return checkCommand(ctx, nil, p, opts)
}

// SaveSpecsWithPlugins is SaveSpecs recording whether the instance grants
// python3 to the etc/plugin promises slapnode does not run natively.
func SaveSpecsWithPlugins(partitionDir string, specs []Spec, python bool) error {
	return saveSpecs(partitionDir, specFile{Promises: specs, PythonPlugins: python})
}
