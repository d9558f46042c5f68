package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/slapnode/slapnode/partition"
)

// ErrNoInstance is returned (wrapped) by Lookup when nothing on the node has
// the name asked for.
var ErrNoInstance = errors.New("no such instance or partition")

// Placed is an instance the node runs, as the node last recorded it: one
// applied locally (slapnode apply) or placed by a master.
type Placed struct {
	Name       string // instance name; a master's instance title
	Partition  string
	Software   string
	Type       string
	State      string
	Master     bool           // placed by a master (node run --master)
	Connection map[string]any // last published connection parameters
}

// Placements lists what the node at root runs, without opening it (no
// WebAssembly host): the local registry, then the partitions a master
// placed here. Connection parameters come from where apply publishes them
// (the registry, and connection.json in each partition's state directory).
func Placements(root string) ([]Placed, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	n := &Node{Root: abs}
	reg, err := n.load()
	if err != nil {
		return nil, err
	}
	var out []Placed
	seen := map[string]bool{}
	for _, rec := range reg.Instances {
		if rec.State == StateDestroyed {
			continue // a reservation (slapnode test), not an instance
		}
		seen[rec.Partition] = true
		out = append(out, Placed{Name: rec.Name, Partition: rec.Partition, Software: rec.Software, Type: rec.Type, State: rec.State,
			Connection: rec.Connection})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	conv, err := n.ConvergedPartitions()
	if err != nil {
		return nil, err
	}
	for _, c := range conv {
		if seen[c.ID] {
			continue
		}
		p := Placed{Name: c.Title, Partition: c.ID, Software: c.Software, Type: c.Type, State: c.State, Master: true}
		if b, err := os.ReadFile(filepath.Join(partition.StateDir(abs, c.ID), "connection.json")); err == nil {
			var conn map[string]any
			if json.Unmarshal(b, &conn) == nil {
				p.Connection = conn
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Lookup finds what name designates on the node at root: an instance name
// (as `slapnode apply --name` or a master's request gave it) or a partition
// id. Instance names win over partition ids.
func Lookup(root, name string) (*Placed, error) {
	all, err := Placements(root)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	for i := range all {
		if all[i].Partition == name {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %q on the node at %s", ErrNoInstance, name, root)
}
