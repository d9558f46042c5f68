package partition

import (
	"errors"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nofollow"
)

// missingInstalled returns the first path a part recorded as installed
// that is not there any more, "" when all are. zc.buildout does the same
// for every unchanged part on every run (buildout.py, install: "The
// options are the same, but are all of the installed files still
// there?"), and installs the part again when one is gone: a SlapOS user
// who deletes a rendered file, or sees a disk lose it, expects the next
// run to make it again.
func (r *run) missingInstalled(rec *PartRecord) string {
	if len(rec.Installed) == 0 {
		return ""
	}
	d, err := r.targetDir()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// The target directory itself is gone, and all it held.
			return rec.Installed[0]
		}
		return "" // cannot tell: not a reason to reinstall
	}
	return missingPath(d, r.t.Dir, rec.Installed)
}

// missingPath returns the first of paths (below dir, opened as d) that does
// not exist. Each is looked up below d without following any link (the
// target directory of an instance is its partition user's, who could plant
// one to make root look elsewhere): a link is itself a file that exists,
// and a link on the way to a path leaves the path alone (what is behind it
// is not the part's any more; uninstall leaves it alone too). Only a path
// that is certainly absent counts as missing; an error that says nothing
// about it (a permission denied) does not.
func missingPath(d *nofollow.Dir, dir string, paths []string) string {
	for _, p := range paths {
		rel, err := filepath.Rel(dir, filepath.Clean(p))
		if err != nil || !filepath.IsLocal(rel) {
			continue // never recorded (install refuses paths outside)
		}
		fd, err := d.OpenPath(rel)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return p
		}
	}
	return ""
}

// missingReason is the reason a plan and an apply give for reinstalling a
// part whose installed file is gone.
func missingReason(path string) string {
	return "installed file " + path + " is missing"
}

// targetDir opens the target directory once per run.
func (r *run) targetDir() (*nofollow.Dir, error) {
	if !r.dirOpened {
		r.dirOpened = true
		r.dir, r.dirErr = nofollow.Open(r.t.Dir)
	}
	return r.dir, r.dirErr
}

func (r *run) closeTargetDir() {
	if r.dir != nil {
		r.dir.Close()
		r.dir = nil
	}
	r.dirOpened = false
}
