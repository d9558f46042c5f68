package main

import (
	"runtime/debug"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/local"
)

// The daemon's metrics observe the converge loop.
var _ local.ConvergeObserver = (*daemon.Metrics)(nil)

// buildVersion is the version and VCS revision the daemon's metrics export
// (slapnode_build_info).
func buildVersion() (v, revision string) {
	v = version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v, revision
}
