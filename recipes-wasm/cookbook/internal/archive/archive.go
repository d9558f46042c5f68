// Package archive unpacks the source archives recipes download: tar
// (plain, gzip, bzip2), zip, and — through the host's tar when the profile
// grants it — xz, zstd and lzma compressed tars, which the standard library
// cannot decode.
package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
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

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Format is a detected archive format.
type Format string

// Formats Unpack knows.
const (
	Tar      Format = "tar"
	TarGzip  Format = "tar.gz"
	TarBzip2 Format = "tar.bz2"
	TarXz    Format = "tar.xz"
	TarZstd  Format = "tar.zst"
	TarLzma  Format = "tar.lzma"
	Zip      Format = "zip"
)

// Detect identifies an archive by its first bytes, falling back to the
// file name for lzma (which has no magic number).
func Detect(file string) (Format, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 262)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return TarGzip, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return TarBzip2, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return TarXz, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return TarZstd, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Zip, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return Tar, nil
	case strings.HasSuffix(file, ".lzma") || strings.HasSuffix(file, ".tlz"):
		return TarLzma, nil
	}
	return "", fmt.Errorf("%s is not an archive slapnode can unpack (tar, tar.gz, tar.bz2, tar.xz, tar.zst, zip)", file)
}

// Options tune Unpack.
type Options struct {
	// Strip is "true" (remove the single top-level directory, error if
	// there is none), "false", or "" (auto: strip when the archive holds
	// exactly one top-level directory and nothing else).
	Strip string
}

// Unpack extracts file into dest, which it creates; an existing dest is
// replaced. ctx is used to run the host's tar for formats the standard
// library lacks.
func Unpack(ctx recipe.Context, file, dest string, o Options) error {
	format, err := Detect(file)
	if err != nil {
		return err
	}
	tmp := dest + ".unpack-tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Executables whose mode must be set: WASI has no chmod, so
	// Context.Chmod may have to ask the host (see recipe.Context.Chmod).
	execs := map[os.FileMode][]string{}
	switch format {
	case Tar, TarGzip, TarBzip2:
		err = untar(file, format, tmp, execs)
	case Zip:
		err = unzip(file, tmp, execs)
	default:
		err = hostTar(ctx, file, format, tmp)
	}
	if err == nil {
		err = ctx.ChmodGroups(execs)
	}
	if err != nil {
		return fmt.Errorf("unpacking %s (%s): %w", file, format, err)
	}
	root, err := stripRoot(tmp, o.Strip)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", file, err)
	}
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("replacing %s: %w", dest, err)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if err := os.Rename(root, dest); err != nil {
		return fmt.Errorf("moving the unpacked tree to %s: %w", dest, err)
	}
	return nil
}

// stripRoot returns the directory holding the archive's content after
// applying the strip rule.
func stripRoot(dir, strip string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	single := len(entries) == 1 && entries[0].IsDir()
	switch strip {
	case "", "auto":
		if single {
			return filepath.Join(dir, entries[0].Name()), nil
		}
		return dir, nil
	case "true":
		if !single {
			return "", fmt.Errorf("strip-top-level-dir is true but the archive has %d top-level entries, not one directory", len(entries))
		}
		return filepath.Join(dir, entries[0].Name()), nil
	case "false":
		return dir, nil
	}
	return "", fmt.Errorf("strip-top-level-dir must be true, false or auto, not %q", strip)
}

// safeJoin joins an archive member name under dir, refusing names that
// would land outside it.
func safeJoin(dir, name string) (string, error) {
	clean := path.Clean("/" + strings.ReplaceAll(name, "\\", "/"))
	if clean == "/" {
		return dir, nil
	}
	if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") {
		return "", fmt.Errorf("archive member %q leaves the destination", name)
	}
	return filepath.Join(dir, filepath.FromSlash(clean[1:])), nil
}

func untar(file string, format Format, dir string, execs map[os.FileMode][]string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	switch format {
	case TarGzip:
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	case TarBzip2:
		r = bzip2.NewReader(r)
	}
	tr := tar.NewReader(r)
	type dirTime struct {
		path string
		mode os.FileMode
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		target, err := safeJoin(dir, h.Name)
		if err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, mode})
		case tar.TypeReg, tar.TypeRegA:
			if err := writeMember(target, tr, mode, h.ModTime, execs); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("symbolic link %s -> %s: %w", h.Name, h.Linkname, err)
			}
		case tar.TypeLink:
			src, err := safeJoin(dir, h.Linkname)
			if err != nil {
				return err
			}
			// A copy rather than a hard link: the sandbox's file system
			// offers no link(2) across all hosts, and sources rarely care.
			in, err := os.Open(src)
			if err != nil {
				return fmt.Errorf("hard link %s -> %s: %w", h.Name, h.Linkname, err)
			}
			st, _ := in.Stat()
			err = writeMember(target, in, st.Mode().Perm(), h.ModTime, execs)
			in.Close()
			if err != nil {
				return err
			}
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
		default:
			// Devices and FIFOs have no place in a source tree.
		}
	}
	// Directory modes last, so a read-only directory does not block its content.
	for _, d := range dirs {
		if err := os.Chmod(d.path, d.mode|0o700); err != nil {
			return err
		}
	}
	return nil
}

// writeMember writes one regular file; it records in execs the files with
// execute bits, whose mode the caller makes sure of.
func writeMember(target string, r io.Reader, mode os.FileMode, mtime time.Time, execs map[os.FileMode][]string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	os.Remove(target)
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Chmod(target, mode|0o600); err != nil {
		return err
	}
	if mode&0o111 != 0 {
		execs[mode|0o600] = append(execs[mode|0o600], target)
	}
	// Keep member times: configure scripts compare them (make would otherwise
	// try to regenerate autotools output).
	if !mtime.IsZero() {
		os.Chtimes(target, mtime, mtime)
	}
	return nil
}

func unzip(file, dir string, execs map[os.FileMode][]string) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		target, err := safeJoin(dir, zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case zf.FileInfo().IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			link, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(string(link), target); err != nil {
				return err
			}
		default:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			perm := mode.Perm()
			if perm == 0 {
				perm = 0o644
			}
			err = writeMember(target, rc, perm, zf.Modified, execs)
			rc.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// hostTar unpacks through the host's tar (GNU tar detects xz/zstd/lzma and
// runs the decompressor). The cookbook carries no xz or zstd decoder: that
// would roughly double its size for a few archives.
func hostTar(ctx recipe.Context, file string, format Format, dir string) error {
	flag := map[Format]string{TarXz: "--xz", TarZstd: "--zstd", TarLzma: "--lzma"}[format]
	_, err := ctx.Run([]string{"tar", flag, "-xf", file, "-C", dir}, dir, nil, 30*time.Minute)
	if err != nil {
		return fmt.Errorf("%s archives are unpacked by the host's tar: grant it with allow_exec = [\"tar\", \"xz\"] (or \"zstd\") in the module block of the cookbook, or use a .tar.gz: %w", format, err)
	}
	return nil
}
