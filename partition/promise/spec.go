// Package promise runs a node's promises with SlapOS's semantics.
//
// A promise *senses* (one check, ok or failed with a message); the runner
// keeps the history of senses in the promise's log, as SlapOS's
// GenericPromise does, and decides from it the *test* result (failed when
// the latest sense failed) or the *anomaly* result (failed when the last
// failure_amount senses failed, optionally within latest_minute). Each
// result is written in SlapOS's format to
// <partition>/.slapgrid/promise/result/<title>.status.json so that SlapOS
// monitoring tools read it unchanged.
//
// Checks are WebAssembly calls (promise_check, docs/wasm-abi.md §5), except
// the host checks of the built-in module — check_command,
// check_service_running, check_free_disk_space — which need the host
// (a partition program, the supervisor, statfs) and run natively. Legacy
// executables in <partition>/etc/promise/ run as check_command promises,
// SlapOS promise plugins in <partition>/etc/plugin/ natively or with
// python3 (plugin.go).
//
// The runner works from the specs saved by apply in the partition's state
// directory, <root>/state/instance/<id>/promises.json (SaveSpecs), out of
// the partition user's reach (a spec names a module and its grants), runs every partition's
// promises concurrently on a bounded worker pool, honours each promise's
// periodicity unless forced, and kills a promise at its timeout. Scheduler
// runs them periodically in the node daemon and bangs on anomaly at most
// once per deployment; Metrics exports the results as OpenMetrics.
package promise

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// Defaults of a promise, as SlapOS has them.
const (
	DefaultEvery   = 2 * time.Minute  // GenericPromise periodicity
	DefaultTimeout = 20 * time.Second // [slapos] promise_timeout
)

// Duration is a time.Duration written in JSON as a string such as "2m0s".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string, or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration: want a string such as \"2m\" or a number of seconds: %w", err)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// ModuleRef says where the module of a check comes from, so that the runner
// can load it again without the profile.
type ModuleRef struct {
	Name string `json:"name"`
	// Source is "builtin:NAME" or the path of the .wasm file. Empty for a
	// module the runner cannot reload: its promises then run only with the
	// live module given by apply (FromPartition).
	Source      string   `json:"source,omitempty"`
	SHA256      string   `json:"sha256,omitempty"` // of the module loaded at apply; a changed file is refused
	AllowNet    []string `json:"allow_net,omitempty"`
	AllowExec   []string `json:"allow_exec,omitempty"`
	AllowEnv    []string `json:"allow_env,omitempty"`
	MemoryBytes uint64   `json:"memory_bytes,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
}

// Spec is one promise of a partition, as evaluated by apply.
type Spec struct {
	Name          string          `json:"name"`  // the promise's title
	Check         string          `json:"check"` // MODULE:NAME
	Module        ModuleRef       `json:"module"`
	Options       json.RawMessage `json:"options,omitempty"`
	Every         Duration        `json:"every"`
	Timeout       Duration        `json:"timeout"`
	Test          bool            `json:"test"`
	Anomaly       bool            `json:"anomaly"`
	FailureAmount int             `json:"failure_amount"`
	// LatestMinute, when > 0, ignores senses older than that many minutes
	// when deciding (GenericPromise's latest_minute).
	LatestMinute int `json:"latest_minute,omitempty"`

	live   *wasmhost.Module // the module apply loaded, when known
	legacy string           // path of an etc/promise executable
	plugin string           // path of an etc/plugin/*.py promise plugin
}

// SpecsPath is where apply saves the promises of a partition: its state
// directory (partition.Partition.StateDir), which only the node's user
// writes.
func SpecsPath(p partition.Partition) string {
	return filepath.Join(p.StateDir, "promises.json")
}

func needState(p partition.Partition) error {
	if p.StateDir == "" {
		return fmt.Errorf("partition %s has no state directory to keep its promises in", p.ID)
	}
	return nil
}

type specFile struct {
	Promises []Spec `json:"promises"`
}

// SaveSpecs records the promises of a partition after apply, atomically, for
// the runner, the CLI and the daemon. Saving different specs starts a new
// deployment (the scheduler may bang again); saving the same ones changes
// nothing.
func SaveSpecs(p partition.Partition, specs []Spec) error {
	if err := needState(p); err != nil {
		return err
	}
	if specs == nil {
		specs = []Spec{}
	}
	b, err := json.MarshalIndent(specFile{Promises: specs}, "", "  ")
	if err != nil {
		return fmt.Errorf("save promises of %s: %w", p.ID, err)
	}
	b = append(b, '\n')
	if old, err := os.ReadFile(SpecsPath(p)); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		return fmt.Errorf("save promises of %s: %w", p.ID, err)
	}
	return atomicfile.Write(SpecsPath(p), b, 0o600)
}

// LoadSpecs reads the promises apply saved for a partition; none (nil, nil)
// when it has not been applied with promises.
func LoadSpecs(p partition.Partition) ([]Spec, error) {
	if err := needState(p); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(SpecsPath(p))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("promises of %s: %w", p.ID, err)
	}
	var f specFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("promises of %s: %s is damaged (apply the instance again to rewrite it): %w", p.ID, SpecsPath(p), err)
	}
	for i := range f.Promises {
		f.Promises[i].defaults()
	}
	return f.Promises, nil
}

// defaults fills what an older or hand-written file may lack.
func (s *Spec) defaults() {
	if s.Every <= 0 {
		s.Every = Duration(DefaultEvery)
	}
	if s.Timeout <= 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	if s.FailureAmount < 1 {
		s.FailureAmount = 1
	}
}

// FromPartition converts the promises evaluated by the engine. The specs keep
// the modules apply loaded, so that promises of a profile's own module run
// right after apply; a built-in module is recorded as "builtin:cookbook".
// A latest_minute option, which the engine passes to the check, is taken
// out as the promise's LatestMinute.
func FromPartition(ps []partition.PromiseSpec) []Spec {
	out := make([]Spec, 0, len(ps))
	for _, p := range ps {
		s := Spec{Name: p.Name, Check: p.Check, Options: p.Options, Every: Duration(p.Every), Timeout: Duration(p.Timeout),
			Test: p.Test, Anomaly: p.Anomaly, FailureAmount: p.FailureAmount, live: p.Module}
		s.Options, s.LatestMinute = takeLatestMinute(s.Options)
		if m := p.Module; m != nil {
			s.Module = ModuleRef{Name: m.Name, SHA256: m.Digest, AllowNet: m.Grants.Net, AllowExec: m.Grants.Exec, AllowEnv: m.Grants.Env,
				MemoryBytes: m.Grants.MemoryBytes, Timeout: Duration(m.Grants.Timeout)}
			s.Module.Source = p.Source
			if s.Module.Source == "" && m.Grants.Trusted {
				// Only built-in modules are trusted (partition.Engine.module).
				s.Module.Source = "builtin:cookbook"
			}
		} else {
			s.Module.Name, _, _ = strings.Cut(p.Check, ":")
		}
		s.defaults()
		out = append(out, s)
	}
	return out
}

func takeLatestMinute(opts json.RawMessage) (json.RawMessage, int) {
	var m map[string]json.RawMessage
	if json.Unmarshal(opts, &m) != nil {
		return opts, 0
	}
	raw, ok := m["latest_minute"]
	if !ok {
		return opts, 0
	}
	var n float64
	if json.Unmarshal(raw, &n) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return opts, 0
		}
		if _, err := fmt.Sscanf(s, "%g", &n); err != nil {
			return opts, 0
		}
	}
	delete(m, "latest_minute")
	b, err := json.Marshal(m)
	if err != nil {
		return opts, 0
	}
	return b, int(n)
}

// legacySpecs turns the executables of <partition>/etc/promise into
// check_command promises named after the file, as SlapOS's WrapPromise:
// periodicity 2 min, test = the last run failed, anomaly = 3 consecutive
// failures, never a bang. Entries that are not regular executable files
// are reported, as SlapOS warns "Bad promise file".
func legacySpecs(partitionDir string, timeout time.Duration) ([]Spec, []string) {
	dir := filepath.Join(partitionDir, "etc", "promise")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	var specs []Spec
	var bad []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			bad = append(bad, p)
			continue
		}
		opts, _ := json.Marshal(map[string]any{"command": p})
		specs = append(specs, Spec{Name: e.Name(), Check: "promises:check_command",
			Module:  ModuleRef{Name: "promises", Source: "builtin:cookbook"},
			Options: opts, Every: Duration(DefaultEvery), Timeout: Duration(timeout),
			Test: true, Anomaly: true, FailureAmount: 3, legacy: p})
	}
	return specs, bad
}
