// Package slaptest loads the SLAP wire samples captured between SlapOS's
// slapos.slap client 1.24.0 and the real slapproxy, for the tests of the
// slap client and of slapnode's master.
package slaptest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
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

// samples is the capture, kept in the repository (testdata) so that the
// tests run in any clone; shared/reference/slap-wire-samples.jsonl is its
// origin, documented in slap-wire-protocol.md there.
//
//go:embed testdata/slap-wire-samples.jsonl
var samples []byte

// Load reads every sample, in capture order.
func Load() ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(samples))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var s Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("testdata/slap-wire-samples.jsonl:%d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}
