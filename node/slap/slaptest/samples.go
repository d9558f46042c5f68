// Package slaptest loads the SLAP wire samples captured between SlapOS's
// slapos.slap client 1.24.0 and the real slapproxy, for the tests of the
// slap client and of slapnode's master.
package slaptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Sample is one captured HTTP exchange.
type Sample struct {
	Seq             int               `json:"seq"`
	Step            string            `json:"step"`
	Method          string            `json:"method"`
	Path            string            `json:"path"`
	Query           map[string]string `json:"query"`
	Form            map[string]string `json:"form"`
	RequestBodyRaw  string            `json:"request_body_raw"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    string            `json:"response_body"`
}

// Path is the samples file: the reference capture in shared/reference,
// found by walking up from this package (shared/ sits beside the
// repository), read in place rather than copied into the project.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "reference", "slap-wire-samples.jsonl")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if parent := filepath.Dir(dir); parent == dir {
			return filepath.Join("shared", "reference", "slap-wire-samples.jsonl")
		}
	}
}

// Load reads every sample, in capture order.
func Load() ([]Sample, error) {
	f, err := os.Open(Path())
	if err != nil {
		return nil, fmt.Errorf("the captured SLAP exchanges (shared/reference/slap-wire-samples.jsonl, beside the repository): %w", err)
	}
	defer f.Close()
	var out []Sample
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var s Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", Path(), n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}
