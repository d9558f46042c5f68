package partition

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nofollow"
)

// chownTree gives everything under dir to uid:gid. Recipes run inside the
// node process, so what they create belongs to the node's user; services
// run as the partition's user and must own their files, as in SlapOS where
// the instance's buildout runs as that user.
//
// The partition user owns dir and may have planted anything in it, so the
// walk never follows a link (package nofollow: each file is opened
// O_PATH|O_NOFOLLOW beneath its parent and changed through that
// descriptor, a symlink itself rather than its target), and a file of
// another owner with more than one link is given away only when every one
// of its links is inside dir: otherwise it is a hard link to a file
// elsewhere (`ln /etc/x dir/x`), left as it is and reported in skipped.
func chownTree(dir string, uid, gid int) (skipped []string, err error) {
	d, err := nofollow.OpenNoFollow(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return chownDir(d, dir, uid, gid)
}

// chownPaths gives paths under dir (the partition) to uid:gid as soon as a
// part made them, so that what the part's later commands run as the
// partition user (sh, git, pip, hooks) may write there: each path, the
// directories between dir and it, and what a directory holds. Nothing is
// followed (package nofollow), and paths outside dir are ignored; the
// final chownTree of the apply still gives everything else.
func chownPaths(dir string, paths []string, uid, gid int) (skipped []string, err error) {
	d, err := nofollow.OpenNoFollow(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	done := map[string]bool{}
	for _, p := range paths {
		rel, err := filepath.Rel(dir, filepath.Clean(p))
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || rel == ".slapnode" || strings.HasPrefix(rel, ".slapnode/") {
			continue
		}
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			anc := strings.Join(parts[:i], "/")
			if done[anc] {
				continue
			}
			done[anc] = true
			if err := chownOne(d, anc, uid, gid); err != nil {
				return skipped, err
			}
		}
		if done[rel] {
			continue
		}
		done[rel] = true
		st, err := d.Lstat(rel)
		if err != nil {
			continue // not made (an option naming a path to be)
		}
		if !st.IsDir() {
			if err := chownOne(d, rel, uid, gid); err != nil {
				return skipped, err
			}
			continue
		}
		sub, err := d.OpenDir(rel)
		if err != nil {
			if errors.Is(err, nofollow.ErrSymlink) {
				continue
			}
			return skipped, err
		}
		s, err := chownDir(sub, filepath.Join(dir, rel), uid, gid)
		sub.Close()
		skipped = append(skipped, s...)
		if err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

// chownOne gives one entry below d to uid:gid unless it is a file with
// more than one link (a hard link maybe to a file elsewhere: the final
// chownTree decides).
func chownOne(d *nofollow.Dir, rel string, uid, gid int) error {
	fd, err := d.OpenPath(rel)
	if err != nil {
		return nil // gone meanwhile, or not made
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil
	}
	if int(st.Uid) == uid && int(st.Gid) == gid || st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		return nil
	}
	if err := nofollow.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", d.Path(rel), err)
	}
	return nil
}

// chownDir is chownTree on an opened directory (named name in messages).
func chownDir(d *nofollow.Dir, dir string, uid, gid int) (skipped []string, err error) {
	type inode struct{ dev, ino uint64 }
	type linked struct {
		rels  []string
		nlink uint64
		owner uint32
	}
	multi := map[inode]*linked{}
	var order []inode
	err = d.Walk(func(e nofollow.Entry) (bool, error) {
		if e.Rel == ".slapnode" {
			// An older version's state, migrated from there: it stays
			// the node's until removed.
			return false, nil
		}
		st := e.Stat
		if int(st.Uid) == uid && int(st.Gid) == gid {
			return true, nil
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
			k := inode{st.Dev, st.Ino}
			l := multi[k]
			if l == nil {
				l = &linked{nlink: uint64(st.Nlink), owner: st.Uid}
				multi[k] = l
				order = append(order, k)
			}
			l.rels = append(l.rels, e.Rel)
			return false, nil
		}
		if err := nofollow.Fchown(e.Fd, uid, gid); err != nil {
			return false, fmt.Errorf("chown %s: %w", d.Path(e.Rel), err)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range order {
		l := multi[k]
		if int(l.owner) == uid || uint64(len(l.rels)) == l.nlink {
			// The partition user's own, or every link is in here: a file
			// a recipe linked twice. Re-checked on the descriptor that is
			// changed, in case a link was added since.
			if err := chownIfAllLinks(d, l.rels[0], k.dev, k.ino, uint64(len(l.rels)), uid, gid); err != nil {
				return skipped, err
			}
			continue
		}
		skipped = append(skipped, fmt.Sprintf("%s left to uid %d: it is a hard link (%d links, %d in the partition) to a file outside the partition",
			filepath.Join(dir, l.rels[0]), l.owner, l.nlink, len(l.rels)))
	}
	return skipped, nil
}

func chownIfAllLinks(d *nofollow.Dir, rel string, dev, ino, seen uint64, uid, gid int) error {
	fd, err := d.OpenPath(rel)
	if err != nil {
		return nil // gone meanwhile
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil
	}
	if st.Dev != dev || st.Ino != ino || (uint64(st.Nlink) != seen && int(st.Uid) != uid) {
		return nil
	}
	if err := nofollow.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", d.Path(rel), err)
	}
	return nil
}

// preparePartitionDir creates the partition directory if needed, 0750 and
// owned by the partition's user. Its parent is the node's (the instance
// root); the directory itself is opened without following a link.
func preparePartitionDir(part Partition) error {
	if err := os.MkdirAll(filepath.Dir(part.Path), 0o750); err != nil {
		return fmt.Errorf("partition directory: %w", err)
	}
	parent, err := nofollow.Open(filepath.Dir(part.Path))
	if err != nil {
		return fmt.Errorf("partition directory: %w", err)
	}
	defer parent.Close()
	d, err := parent.MkdirAll(filepath.Base(part.Path), 0o750)
	if err != nil {
		return fmt.Errorf("partition directory: %w", err)
	}
	defer d.Close()
	if err := d.Chmod(".", 0o750); err != nil {
		return err
	}
	if c := part.Credential; c != nil {
		if err := d.Lchown(".", int(c.Uid), int(c.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// ownerOf reports a file's owner.
func ownerOf(st os.FileInfo) (uint32, uint32) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid, s.Gid
	}
	return 0, 0
}

// shareTree makes a software directory readable by every partition user,
// and nothing more: directories a+rx, files a+r (a+x when anyone may
// execute them). Recipes create through WASI, which gives new files 0600
// and directories 0700; a software release, like SlapOS's, is read by the
// partitions' users. It also takes away what would let one partition reach
// root or another partition through the shared tree: group and world write
// bits (a build's 0777 directory would let any partition user replace a
// binary every partition runs), and the setuid and setgid bits of files
// (the build runs as root, so a setuid file it leaves — a `make install`
// of a setuid helper — would be a root program for every partition user).
// Only the node's user writes a software directory.
//
// What is not the node's user's, in a directory others could write, was
// put there by someone else while the tree was open: a partition user who
// wrote into a directory the build made writable by others (a tarball's
// 0777 directory) before this pass closed it. Such entries are removed —
// kept, they would be programs every partition runs and their owner
// changes at will — and listed in removed (relative to dir). A foreign
// directory is first given to the node's user and closed (0700), through
// the descriptor the walk checked, so that its owner cannot keep filling
// it while it is removed; a foreign file or link is only unlinked (it may
// be a hard link to its owner's file, or to another partition's). Elsewhere a foreign owner comes from the build
// itself (tar run as root keeps an archive's owners, which may be a
// partition user's uid): the entry is given to the node's user and shared
// like the rest. The walk follows no link (package nofollow): symlinks are
// left alone unless foreign.
func shareTree(dir string) (removed []string, err error) {
	d, err := nofollow.OpenNoFollow(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	euid, egid := os.Geteuid(), os.Getegid()
	var foreign []string
	// open: the directories others could write into, as found (before
	// this pass closed them).
	open := map[string]bool{}
	err = d.Walk(func(e nofollow.Entry) (bool, error) {
		st := e.Stat
		typ := st.Mode & unix.S_IFMT
		if typ == unix.S_IFDIR {
			open[e.Rel] = st.Mode&0o002 != 0 || st.Mode&0o020 != 0 && int(st.Gid) != egid
		}
		if int(st.Uid) != euid && e.Rel != "." {
			if open[path.Dir(e.Rel)] {
				// Only a directory is taken over before it is removed: a
				// file is merely unlinked, since it may be a hard link to
				// a file of its owner's, or of another partition's, which
				// must stay as it is.
				if typ == unix.S_IFDIR {
					if err := nofollow.Fchown(e.Fd, euid, egid); err != nil {
						return false, fmt.Errorf("chown %s: %w", d.Path(e.Rel), err)
					}
					if err := nofollow.Fchmod(e.Fd, 0o700); err != nil {
						return false, fmt.Errorf("chmod %s: %w", d.Path(e.Rel), err)
					}
				}
				foreign = append(foreign, e.Rel)
				return false, nil
			}
			if err := nofollow.Fchown(e.Fd, euid, egid); err != nil {
				return false, fmt.Errorf("chown %s: %w", d.Path(e.Rel), err)
			}
			if err := unix.Fstat(e.Fd, st); err != nil {
				return false, fmt.Errorf("stat %s: %w", d.Path(e.Rel), err)
			}
		}
		if typ == unix.S_IFLNK {
			return false, nil
		}
		mode := fs.FileMode(st.Mode & 0o777)
		want := (mode | 0o444) &^ 0o022
		if typ == unix.S_IFDIR || mode&0o111 != 0 {
			want |= 0o111
		}
		// The sticky bit stays, and a directory keeps its setgid bit
		// (new files take its group); a file loses setuid and setgid.
		keep := fs.FileMode(0)
		if st.Mode&unix.S_ISVTX != 0 {
			keep |= fs.ModeSticky
		}
		if typ == unix.S_IFDIR && st.Mode&unix.S_ISGID != 0 {
			keep |= fs.ModeSetgid
		}
		cur := mode
		for bit, m := range map[uint32]fs.FileMode{unix.S_ISUID: fs.ModeSetuid, unix.S_ISGID: fs.ModeSetgid, unix.S_ISVTX: fs.ModeSticky} {
			if st.Mode&bit != 0 {
				cur |= m
			}
		}
		if want|keep != cur {
			if err := nofollow.Fchmod(e.Fd, want|keep); err != nil {
				return false, fmt.Errorf("chmod %s: %w", d.Path(e.Rel), err)
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, rel := range foreign {
		if err := d.RemoveAll(rel); err != nil {
			return removed, fmt.Errorf("removing %s, which is not the node's: %w", d.Path(rel), err)
		}
		removed = append(removed, rel)
	}
	return removed, nil
}

// partPaths are the paths under dir a part's options, outputs and
// installed list name (what a part made is named there: mkdirectory's
// directories, a template's output, a build's location).
func partPaths(dir string, opts map[string]cty.Value, outputs json.RawMessage, installed []string) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if filepath.IsAbs(s) && within(dir, s) && filepath.Clean(s) != filepath.Clean(dir) {
			out = append(out, filepath.Clean(s))
		}
	}
	var walkCty func(v cty.Value)
	walkCty = func(v cty.Value) {
		if v.IsNull() || !v.IsKnown() {
			return
		}
		switch {
		case v.Type() == cty.String:
			add(v.AsString())
		case v.CanIterateElements():
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				walkCty(e)
			}
		}
	}
	for _, v := range opts {
		walkCty(v)
	}
	var walkAny func(v any)
	walkAny = func(v any) {
		switch x := v.(type) {
		case string:
			add(x)
		case []any:
			for _, e := range x {
				walkAny(e)
			}
		case map[string]any:
			for _, e := range x {
				walkAny(e)
			}
		}
	}
	var o any
	if json.Unmarshal(outputs, &o) == nil {
		walkAny(o)
	}
	for _, p := range installed {
		add(p)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// giveBeforeExec is the hook run before a recipe's command starts in an
// instance whose commands run as the partition user: the command's
// directory, the directories between the partition and it, and what it
// holds are given to that user first, so that it works in what the recipe
// just made there (a build's location, an unpacked source tree). nil for
// a target whose commands run as the node's user.
func giveBeforeExec(t *Target) func(*exec.Cmd) error {
	c := t.Credential
	if c == nil || t.Kind != "instance" {
		return nil
	}
	return func(cmd *exec.Cmd) error {
		if cmd.Dir == "" || !within(t.Dir, cmd.Dir) {
			return nil
		}
		_, err := chownPaths(t.Dir, []string{cmd.Dir}, int(c.Uid), int(c.Gid))
		return err
	}
}

// execHooks runs give (the command's directory given to the partition
// user) and then the confiner's Hook, which rewrites the command to start
// inside the partition; nil when there is neither.
func execHooks(give func(*exec.Cmd) error, c Confiner) func(*exec.Cmd) error {
	if c == nil {
		return give
	}
	if give == nil {
		return c.Hook
	}
	return func(cmd *exec.Cmd) error {
		if err := give(cmd); err != nil {
			return err
		}
		return c.Hook(cmd)
	}
}
