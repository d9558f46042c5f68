// Package fsuser runs file operations of a root process with the file
// system identity of another user: a partition's directory is its user's,
// who may plant links to files only root can read or write, and root
// opening a path there as that user gets exactly the user's rights (the
// kernel refuses what the user could not do), with no path check of its
// own to race against.
package fsuser

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn with the filesystem identity (fsuid/fsgid) and the
// supplementary groups of uid when the process is root, on a locked OS
// thread. With uid < 0 it just runs fn. Changing fsuid away from 0 also
// drops the capabilities that would bypass the checks, and changing it
// back restores them; the groups are changed for this thread only (a raw
// setgroups, not Go's all-threads one), so that the caller's own groups
// (root's) grant nothing meanwhile. If the identity cannot be restored,
// the thread is not unlocked: it keeps the user's identity and dies with
// the goroutine, and no other goroutine runs on it.
func Do(uid, gid int, groups []int, fn func() error) error {
	if uid < 0 {
		return fn()
	}
	runtime.LockOSThread()
	euid, egid := os.Geteuid(), os.Getegid()
	saved, err := unix.Getgroups()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading the process's groups: %w", err)
	}
	if groups == nil {
		groups = []int{}
	}
	if err := unix.Setgroups(groups); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("taking the groups of uid %d: %w", uid, err)
	}
	// These calls return the previous id; they fail only for a bad id.
	_, _ = unix.SetfsgidRetGid(gid)
	_, _ = unix.SetfsuidRetUid(uid)
	err = fn()
	_, _ = unix.SetfsuidRetUid(euid)
	_, _ = unix.SetfsgidRetGid(egid)
	restored := unix.Setgroups(saved) == nil
	// An invalid id (-1) changes nothing and returns the current one.
	if u, _ := unix.SetfsuidRetUid(-1); u == euid && restored {
		if g, _ := unix.SetfsgidRetGid(-1); g == egid {
			runtime.UnlockOSThread()
		}
	}
	return err
}

// Ids gives Do's arguments for a credential: (-1, -1, nil), which changes
// nothing, unless the process is root and uid is another user's.
func Ids(uid, gid uint32, groups []uint32) (int, int, []int) {
	if os.Geteuid() != 0 || int(uid) == os.Geteuid() {
		return -1, -1, nil
	}
	g := make([]int, len(groups))
	for i, x := range groups {
		g[i] = int(x)
	}
	return int(uid), int(gid), g
}
