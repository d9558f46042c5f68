package main

import (
	"errors"
	"fmt"

	"github.com/slapnode/slapnode/node/local"
)

func init() {
	register(&command{
		name:    "output",
		summary: "print the connection parameters of the node's instances (or of one)",
		usage: `Usage: slapnode output [NAME] [--root DIR] [--json]

Prints the connection parameters an instance last published — what apply
printed — without applying anything: NAME is an instance name (the --name
of 'slapnode apply', or the title a master's request gave it) or a partition
id. Without NAME, every instance of the node is listed with its parameters.

It reads the node root only, so it works without the daemon, on a
masterless node as on one run by a master ('slapnode info NAME' asks the
master instead).

Flags:
  --json       print the instances and their parameters as JSON
  --root DIR   node root

Examples:
  slapnode output helloweb
  slapnode output slappart0 --json | jq -r '.instances[0].connection.url'
  slapnode output
`,
		run: runOutput,
	})
}

// jsonOutput is output --json.
type jsonOutput struct {
	Instances []jsonPlaced `json:"instances"`
}

type jsonPlaced struct {
	Name         string `json:"name,omitempty"` // "" for a master's partition of unknown title
	Partition    string `json:"partition"`
	Software     string `json:"software"`
	SoftwareType string `json:"software_type"`
	State        string `json:"state"`
	// PlacedBy is "apply" (slapnode apply) or "master" (node run --master).
	PlacedBy   string         `json:"placed_by"`
	Connection map[string]any `json:"connection"`
}

func runOutput(env *cliEnv, args []string) error {
	fs := newFlags("output")
	root := rootFlag(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return withCode(exitUsage, errors.New("give at most one instance name or partition id (see 'slapnode help output')"))
	}
	var placed []local.Placed
	if len(pos) == 1 {
		p, err := local.Lookup(*root, pos[0])
		if errors.Is(err, local.ErrNoInstance) {
			return noInstance(*root, pos[0])
		}
		if err != nil {
			return err
		}
		placed = append(placed, *p)
	} else if placed, err = local.Placements(*root); err != nil {
		return err
	}
	if *asJSON {
		doc := jsonOutput{Instances: []jsonPlaced{}}
		for _, p := range placed {
			by := "apply"
			if p.Master {
				by = "master"
			}
			doc.Instances = append(doc.Instances, jsonPlaced{Name: p.Name, Partition: p.Partition, Software: p.Software,
				SoftwareType: p.Type, State: p.State, PlacedBy: by, Connection: connectionJSON(p.Connection)})
		}
		return env.writeJSON(doc)
	}
	if len(placed) == 0 {
		fmt.Fprintf(env.stdout, "no instance on the node at %s ('slapnode apply PROFILE' makes one)\n", *root)
		return nil
	}
	for i, p := range placed {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		name := p.Name
		if name == "" {
			name = p.Partition
		}
		conn := connectionJSON(p.Connection)
		if len(conn) == 0 {
			fmt.Fprintf(env.stdout, "%s (%s, %s) has published no connection parameters\n", name, p.Partition, p.State)
			continue
		}
		fmt.Fprintf(env.stdout, "connection parameters of %s (%s):\n", name, p.Partition)
		printConnection(env.stdout, conn)
	}
	return nil
}

// noInstance explains a name the node does not know, with the closest
// names it does.
func noInstance(root, name string) error {
	var names []string
	if all, err := local.Placements(root); err == nil {
		for _, p := range all {
			names = append(names, p.Partition)
			if p.Name != "" {
				names = append(names, p.Name)
			}
		}
	}
	hint := ""
	if s := closest(name, names); len(s) > 0 {
		hint = "; did you mean " + orList(s) + "?"
	}
	return fmt.Errorf("no instance or partition named %q on the node at %s%s (see 'slapnode output')", name, root, hint)
}
