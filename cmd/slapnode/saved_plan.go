package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/node/local"
)

// savedPlanVersion marks a file written by plan -out, and its format.
const savedPlanVersion = 1

// savedPlan is what `plan -out FILE` writes and `apply FILE` reads: the
// plan, what it was computed from (the basis: digests of the profiles, the
// journals, the instance's record, the supervisor's and the promises'
// state), and the options to compute it again. It holds the parameters,
// which may be secrets: the file is written 0600.
type savedPlan struct {
	Version int               `json:"slapnode_plan"`
	Created time.Time         `json:"created"`
	Root    string            `json:"root"`
	Profile string            `json:"profile"`
	Options savedOptions      `json:"options"`
	Basis   map[string]string `json:"basis"`
	Plan    jsonPlan          `json:"plan"`
}

type savedOptions struct {
	Name          string         `json:"name,omitempty"`
	Type          string         `json:"software_type,omitempty"`
	State         string         `json:"state"`
	Params        map[string]any `json:"parameters"`
	Strings       bool           `json:"strings,omitempty"`
	Force         bool           `json:"force,omitempty"`
	Recheck       bool           `json:"recheck,omitempty"`
	Release       bool           `json:"release,omitempty"`
	DownloadCache string         `json:"download_cache,omitempty"`
	Offline       bool           `json:"offline,omitempty"`
}

// writeSavedPlan saves a plan for apply.
func writeSavedPlan(path, root, profilePath string, a *applyFlags, params map[string]any, strs bool, res *local.ApplyResult) error {
	prof, err := filepath.Abs(profilePath)
	if strings.Contains(profilePath, "://") {
		prof, err = profilePath, nil
	}
	if err != nil {
		return err
	}
	dc := a.downloadCache
	if dc != "" {
		if dc, err = filepath.Abs(dc); err != nil {
			return err
		}
	}
	sp := savedPlan{Version: savedPlanVersion, Created: time.Now().UTC(), Root: root, Profile: prof,
		Options: savedOptions{Name: a.name, Type: a.typ, State: a.state, Params: params, Strings: strs, Force: a.force,
			Recheck: a.recheck, Release: a.release, DownloadCache: dc, Offline: a.offline},
		Basis: res.Basis, Plan: planJSON(res)}
	return atomicfile.WriteJSON(path, sp, 0o600)
}

// readSavedPlan reads FILE when it is a saved plan; (nil, nil) when it is
// something else (a profile).
func readSavedPlan(path string) (*savedPlan, error) {
	if strings.Contains(path, "://") || strings.HasSuffix(path, ".hcl") || strings.HasSuffix(path, ".cfg") {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil // not ours to report: the profile loader says it
	}
	defer f.Close()
	head := make([]byte, 32)
	n, _ := f.Read(head)
	if !bytes.HasPrefix(bytes.TrimSpace(head[:n]), []byte("{")) {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sp savedPlan
	if err := json.Unmarshal(b, &sp); err != nil || sp.Version == 0 {
		return nil, nil
	}
	if sp.Version != savedPlanVersion {
		return nil, fmt.Errorf("%s is a plan of format %d, which this slapnode does not read (it reads %d): make it again with 'slapnode plan -out'", path, sp.Version, savedPlanVersion)
	}
	return &sp, nil
}

// flags applies a saved plan's options.
func (sp *savedPlan) flags(a *applyFlags) {
	o := sp.Options
	a.name, a.typ, a.state, a.force, a.recheck, a.release = o.Name, o.Type, o.State, o.Force, o.Recheck, o.Release
	a.downloadCache, a.offline = o.DownloadCache, o.Offline
	a.root = sp.Root
}

// stale compares a saved plan's basis with the node's now and says what
// changed since, or nil when nothing did.
func (sp *savedPlan) stale(path string, now map[string]string) error {
	var changed []string
	seen := map[string]bool{}
	for k, v := range sp.Basis {
		seen[k] = true
		if now[k] != v {
			changed = append(changed, k)
		}
	}
	for k := range now {
		if !seen[k] {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	sort.Strings(changed)
	return fmt.Errorf("the plan in %s is stale: %s changed since it was made (%s); nothing was applied — make a new plan with 'slapnode plan %s ... -out %s'",
		path, strings.Join(changed, ", "), sp.Created.Format(time.RFC3339), sp.Profile, path)
}

// setFlags lists the flags given on a command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

var errPlanFlags = errors.New("a saved plan carries the options it was made with: give none of --name, --type, --param, --params, --state, --force, --recheck, --release with it (only --root, --json, --wait, --settle)")
