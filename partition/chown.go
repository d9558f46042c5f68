package partition

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// chownTree gives everything under dir to uid:gid, except the engine's own
// state (.slapnode), which stays with the node. Recipes run inside the node
// process, so what they create belongs to the node's user; services run as
// the partition's user and must own their files, as in SlapOS where the
// instance's buildout runs as that user.
//
// The walk goes through an os.Root of dir and never follows symlinks, so a
// partition user who swaps a directory for a symlink while it runs cannot
// make it change anything outside the partition.
func chownTree(dir string, uid, gid int) error {
	return walkRoot(dir, func(root *os.Root, rel string, st os.FileInfo) (bool, error) {
		if rel == ".slapnode" {
			return false, nil
		}
		if err := root.Lchown(rel, uid, gid); err != nil {
			return false, fmt.Errorf("chown %s: %w", path.Join(dir, rel), err)
		}
		return true, nil
	})
}

// walkRoot calls fn for dir and everything below it, through an os.Root of
// dir, never following symlinks; fn returning false skips a directory's
// contents.
func walkRoot(dir string, fn func(root *os.Root, rel string, st os.FileInfo) (bool, error)) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var walk func(rel string) error
	walk = func(rel string) error {
		st, err := root.Lstat(rel)
		if err != nil {
			return err
		}
		descend, err := fn(root, rel, st)
		if err != nil || !descend || !st.IsDir() {
			return err
		}
		d, err := root.Open(rel)
		if err != nil {
			return err
		}
		entries, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return err
		}
		for _, ent := range entries {
			if err := walk(path.Join(rel, ent.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(".")
}

// ownerOf reports a file's owner.
func ownerOf(st os.FileInfo) (uint32, uint32) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid, s.Gid
	}
	return 0, 0
}

// shareTree makes a software directory readable by every partition user:
// directories a+rx, files a+r (a+x when anyone may execute them). Recipes
// create through WASI, which gives new files 0600 and directories 0700; a
// software release, like SlapOS's, is read by the partitions' users. Group
// and world write bits are never added. Symlinks are left alone.
func shareTree(dir string) error {
	return walkRoot(dir, func(root *os.Root, rel string, st os.FileInfo) (bool, error) {
		if st.Mode()&fs.ModeSymlink != 0 {
			return false, nil
		}
		mode := st.Mode().Perm()
		want := mode | 0o444
		if st.IsDir() || mode&0o111 != 0 {
			want |= 0o111
		}
		if want != mode {
			if err := root.Chmod(rel, want); err != nil {
				return false, fmt.Errorf("chmod %s: %w", path.Join(dir, rel), err)
			}
		}
		return true, nil
	})
}
