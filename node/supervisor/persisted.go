package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Persisted returns the desired state the supervisor keeps for a
// partition under stateDir — its requested state and service specs — as
// the daemon would restore it; found is false when it holds none. A plan
// compares what an apply would hand over with it, without a daemon.
func Persisted(stateDir, partition string) (requested string, specs []ServiceSpec, found bool, err error) {
	if !validName(partition) {
		return "", nil, false, fmt.Errorf("partition %q: %w", partition, ErrNotFound)
	}
	p := filepath.Join(stateDir, "partitions", partition+".json")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil {
		return "", nil, false, fmt.Errorf("%s is not a supervisor state file: %w", p, err)
	}
	return st.Requested, st.Specs, true, nil
}
