// Package testenv gives a test binary the machine-wide state a node keeps
// outside its root (the registry of loopback blocks claimed by node roots)
// in a temporary directory of its own, so that tests neither read nor leave
// anything there.
package testenv

import (
	"os"
	"testing"
)

// LoopbackEnv names the registry of loopback blocks (node/format).
const LoopbackEnv = "SLAPNODE_LOOPBACK_DIR"

// Main runs the tests with a private loopback registry (unless the
// environment already names one) and removes it afterwards. Child
// processes the tests start inherit it.
func Main(m *testing.M) {
	dir := ""
	if os.Getenv(LoopbackEnv) == "" {
		if d, err := os.MkdirTemp("", "slnt-loopback"); err == nil {
			dir = d
			os.Chmod(d, 0o755)
			os.Setenv(LoopbackEnv, d)
		}
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
