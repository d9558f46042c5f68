// Package nsexec starts a program confined the way a partition's
// processes are: in its cgroups, in its network namespace, as its user.
//
// ThroughShim (shim.go) is the complete way: the command starts as a
// re-execution of the current binary that joins every cgroup and the
// namespace, drops to the user, and only then executes the program, so
// that nothing the program runs is ever outside them.
//
// Wrap is the older way for a network namespace alone: the program is
// started through nsenter(1), which enters the namespace as the caller,
// then sets the user and group and executes the program — in the same
// process, so a pid (and its cgroup placement) stays valid. nsenter runs as
// root with the environment the caller gives the program: that environment
// must not come from the partition (LD_PRELOAD would run in nsenter, as
// root); ThroughShim has no such caveat.
package nsexec

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// Path is the file of a network namespace: a name as `ip netns` names them
// (under /run/netns), or a path kept as it is.
func Path(ns string) string {
	if filepath.IsAbs(ns) {
		return ns
	}
	return filepath.Join("/run/netns", ns)
}

// Wrap returns the program and argv to start instead of exe args so that it
// runs in namespace ns as cred, and the credential the wrapper itself must
// be started with (none: nsenter drops to cred itself). With ns empty it
// changes nothing.
func Wrap(ns, exe string, args []string, cred *syscall.Credential) (string, []string, *syscall.Credential, error) {
	if ns == "" {
		return exe, append([]string{exe}, args...), cred, nil
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return "", nil, nil, fmt.Errorf("running in network namespace %s needs nsenter (util-linux): %w", ns, err)
	}
	argv := []string{nsenter, "--net=" + Path(ns)}
	if cred != nil {
		argv = append(argv, "--setgid", strconv.Itoa(int(cred.Gid)), "--setuid", strconv.Itoa(int(cred.Uid)))
	}
	return nsenter, append(append(argv, "--", exe), args...), nil, nil
}
