package promise

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/partition"
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

// pluginGrantFile is where apply records whether the instance grants
// python3 to its plugins: beside the saved specs, out of the plugins' reach.
func pluginGrantFile(p partition.Partition) string {
	return filepath.Join(p.StateDir, "plugins.json")
}

type pluginGrantRecord struct {
	Python3 bool `json:"python3"`
}

// SavePluginGrant records, after apply, whether the instance grants
// python3 to the etc/plugin promises the node does not run natively, for
// `slapnode promise run` and the daemon.
func SavePluginGrant(p partition.Partition, python bool) error {
	if err := needState(p); err != nil {
		return err
	}
	path := pluginGrantFile(p)
	if !python {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(pluginGrantRecord{Python3: true})
	return atomicfile.Write(path, b, 0o600)
}

// pluginGrant reads what SavePluginGrant recorded (no record: no grant).
func pluginGrant(p partition.Partition) bool {
	if p.StateDir == "" {
		return false
	}
	b, err := os.ReadFile(pluginGrantFile(p))
	if err != nil {
		return false
	}
	var r pluginGrantRecord
	return json.Unmarshal(b, &r) == nil && r.Python3
}
