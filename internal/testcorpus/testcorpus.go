// Package testcorpus finds the public SlapOS corpus that tests read in
// place: shared/corpus beside the repository (../shared/corpus from its
// root). The corpus is large and third-party, so it is not part of the
// repository: a clone without it still passes its tests, which skip the
// corpus checks with one line saying what is missing. Under CI=true its
// absence is a failure, so CI keeps running them.
package testcorpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns shared/corpus/<name> (e.g. "slapos", "schema"), found by
// walking up from the working directory (a package directory under go
// test). Without it the test is skipped, or fails under CI=true.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	if d, ok := Find(name); ok {
		return d
	}
	msg := "SlapOS corpus not found: shared/corpus/" + name + " beside the repository (../shared/corpus/" + name + " from its root); corpus tests skipped"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + " (CI=true: the corpus is required)")
	}
	tb.Skip(msg)
	return ""
}

// Find is Dir without the test: the directory and whether it exists.
func Find(name string) (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		c := filepath.Join(dir, "shared", "corpus", name)
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
