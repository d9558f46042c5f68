// Package nsexec starts a program confined the way a partition's
// processes are: in its cgroups, in its network namespace, as its user.
//
// ThroughShim (shim.go) rewrites a command so that it starts as a
// re-execution of the current binary that joins every cgroup and the
// namespace, drops to the user, and only then executes the program, so
// that nothing the program runs is ever outside them, and the program's
// environment never reaches the privileged shim. (An older Wrap started
// commands through nsenter(1), which ran as root with the program's
// environment: an LD_PRELOAD given to a promise command ran as root. It
// is gone; every caller uses the shim.)
package nsexec

import "path/filepath"

// Path is the file of a network namespace: a name as `ip netns` names them
// (under /run/netns), or a path kept as it is.
func Path(ns string) string {
	if filepath.IsAbs(ns) {
		return ns
	}
	return filepath.Join("/run/netns", ns)
}
