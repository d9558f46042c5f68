package bincache

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Files of a software directory that never go into an archive: the
// completion marker is written by the installer once a release is complete
// (after unpacking too), so an archive never claims completeness by itself.
var archiveExclude = map[string]bool{".completed": true}

// stateDir is the engine's per-target state (parts journal). It records
// absolute paths of the directory it was built in, so it is dropped when an
// archive is unpacked elsewhere, and it is not searched for those paths.
const stateDir = ".slapnode"

// packResult says what pack found while writing the archive.
type packResult struct {
	Files int
	// Relocatable is false when a file or symlink (outside the engine
	// state) contains the absolute path of the directory: unpacked
	// anywhere else it would point at the wrong place.
	Relocatable bool
}

// pack writes dir as a gzip-compressed tar to w, entries relative to dir.
// Symlinks are stored as symlinks; special files are refused.
func pack(w io.Writer, dir string) (packResult, error) {
	res := packResult{Relocatable: true}
	dir = filepath.Clean(dir)
	needle := []byte(dir + "/")
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return res, err
	}
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if archiveExclude[rel] {
			return nil
		}
		inState := rel == stateDir || strings.HasPrefix(rel, stateDir+"/")
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
			if !inState && bytes.Contains([]byte(link+"/"), needle) {
				res.Relocatable = false
			}
		case fi.IsDir(), fi.Mode().IsRegular():
		default:
			return fmt.Errorf("%s is a %s: only files, directories and symlinks can be cached", p, fi.Mode().Type())
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		// Owners are those of the node that unpacks, not of the builder.
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var dst io.Writer = tw
		var scan *needleWriter
		if !inState && res.Relocatable {
			scan = &needleWriter{needle: needle}
			dst = io.MultiWriter(tw, scan)
		}
		if _, err := io.Copy(dst, f); err != nil {
			return fmt.Errorf("archiving %s: %w", p, err)
		}
		if scan != nil && scan.found {
			res.Relocatable = false
		}
		res.Files++
		return nil
	})
	if err != nil {
		return res, err
	}
	if err := tw.Close(); err != nil {
		return res, err
	}
	return res, gz.Close()
}

// needleWriter looks for needle in a stream, across write boundaries.
type needleWriter struct {
	needle []byte
	tail   []byte
	found  bool
}

func (n *needleWriter) Write(p []byte) (int, error) {
	if n.found {
		return len(p), nil
	}
	buf := append(n.tail, p...)
	if bytes.Contains(buf, n.needle) {
		n.found = true
		return len(p), nil
	}
	keep := len(n.needle) - 1
	if len(buf) > keep {
		buf = buf[len(buf)-keep:]
	}
	n.tail = append(n.tail[:0], buf...)
	return len(p), nil
}

// unpack extracts a pack archive into dir (which must exist and be empty).
// Every operation goes through os.Root, so no entry — not even one placed
// under a symlink planted by an earlier entry — can write outside dir.
func unpack(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("archive is not gzip-compressed: %w", err)
	}
	defer gz.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirMeta struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		name := path.Clean(strings.TrimSuffix(hdr.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q leaves the software directory", hdr.Name)
		}
		name = filepath.FromSlash(name)
		// Set-id bits from another machine are never wanted.
		mode := fs.FileMode(hdr.Mode).Perm()
		if parent := filepath.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
			}
			// Applied last: a read-only directory would refuse its contents.
			dirs = append(dirs, dirMeta{name, mode, hdr.ModTime})
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o200)
			if err != nil {
				return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
			if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
			}
		default:
			return fmt.Errorf("archive entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := root.Chmod(d.name, d.mode); err != nil {
			return err
		}
		if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}
