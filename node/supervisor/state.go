package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// persisted is the desired state of one partition, as written under
// StateDir/partitions/<partition>.json.
type persisted struct {
	Partition string
	Requested string        // started | stopped
	Stopped   []string      `json:",omitempty"` // services stopped one by one
	Specs     []ServiceSpec // desired services
}

func (s *Supervisor) statePath(partition string) string {
	return filepath.Join(s.opts.StateDir, "partitions", partition+".json")
}

// persist writes the partition's desired state atomically: a reader (the
// next daemon, after a crash at any point) sees the old or the new file,
// never a torn one.
func (s *Supervisor) persist(partition, requested string, stopped []string, specs []ServiceSpec) error {
	if s.opts.StateDir == "" {
		return nil
	}
	b, err := json.MarshalIndent(persisted{Partition: partition, Requested: requested, Stopped: stopped, Specs: specs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state of partition %s: %w", partition, err)
	}
	if err := writeAtomic(s.statePath(partition), append(b, '\n')); err != nil {
		return fmt.Errorf("saving state of partition %s: %w", partition, err)
	}
	return nil
}

func (s *Supervisor) unpersist(partition string) error {
	if s.opts.StateDir == "" {
		return nil
	}
	if err := os.Remove(s.statePath(partition)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forgetting partition %s: %w", partition, err)
	}
	return syncDir(filepath.Dir(s.statePath(partition)))
}

// writeAtomic writes data to a temporary file next to path, fsyncs it,
// renames it over path and fsyncs the directory so the rename is durable.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// loadAll reads every persisted partition, sorted by name. A file that
// cannot be read is an error naming it: silently dropping a partition
// would leave its services down after a restart.
func (s *Supervisor) loadAll() ([]persisted, error) {
	dir := filepath.Join(s.opts.StateDir, "partitions")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading supervisor state: %w", err)
	}
	var out []persisted
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", p, err))
			continue
		}
		var st persisted
		if err := json.Unmarshal(b, &st); err != nil {
			errs = append(errs, fmt.Errorf("%s is not a supervisor state file (move it away to continue): %w", p, err))
			continue
		}
		if st.Partition != strings.TrimSuffix(name, ".json") || (st.Requested != PartitionStarted && st.Requested != PartitionStopped) {
			errs = append(errs, fmt.Errorf("%s: partition %q, requested %q do not match the file (move it away to continue)", p, st.Partition, st.Requested))
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, errors.Join(errs...)
}

// PersistedLogPaths returns the log files of a partition's service (all of
// its services when service is "") from the desired state persisted under
// stateDir, for reading logs while no supervisor runs.
func PersistedLogPaths(stateDir, partition, service string) ([]string, error) {
	if !validName(partition) {
		return nil, fmt.Errorf("partition %q: %w", partition, ErrNotFound)
	}
	p := filepath.Join(stateDir, "partitions", partition+".json")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("partition %q: %w (no state in %s)", partition, ErrNotFound, stateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s is not a supervisor state file: %w", p, err)
	}
	var out []string
	for _, sp := range st.Specs {
		if service == "" || sp.Name == service {
			out = append(out, specLogPath(sp))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("service %q of partition %q: %w", service, partition, ErrNotFound)
	}
	return out, nil
}
