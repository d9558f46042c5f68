package local

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"syscall"

	"golang.org/x/sys/unix"
)

// Partition certificates, where SlapOS puts them: certificate_repository_path
// holds <partition>.crt and <partition>.key, mode 0400, owned by the
// partition's user, which its instance reads (slap-connection's cert-file
// and key-file). Root writes them, so it must not be led astray by
// anything planted in that directory: the directory must be root's and
// closed to others, every file is opened relative to it with openat2
// (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), and a certificate is replaced by
// renaming a new file over it — never by writing through an existing one,
// which could be a hard link to a file of root's.

var certNameRe = regexp.MustCompile(`^\.?[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// certDir opens the certificate repository and checks that only its owner
// (this process's user) can change it.
func certDir(repo string) (int, error) {
	fd, err := unix.Open(repo, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, fmt.Errorf("certificate repository %s: %w", repo, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("certificate repository %s: %w", repo, err)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("certificate repository %s is owned by uid %d with mode %o: it must be this node's (uid %d) and writable by it only (chown %d %s; chmod 0711 %s)",
			repo, st.Uid, st.Mode&0o7777, os.Geteuid(), os.Geteuid(), repo, repo)
	}
	return fd, nil
}

// openBeneath opens name in the directory dirfd without following any
// link, whatever the kernel (openat2 where it exists; a single path
// component with O_NOFOLLOW otherwise, which cannot leave the directory).
func openBeneath(dirfd int, name string, flags int, mode uint32) (int, error) {
	if !certNameRe.MatchString(name) {
		return -1, fmt.Errorf("%q is not a plain file name", name)
	}
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC), Mode: uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(dirfd, name, how)
	if errors.Is(err, unix.ENOSYS) {
		fd, err = unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	}
	return fd, err
}

// readBeneath returns the content of name in dirfd, with its owner and mode,
// or ok=false when it is missing or not a regular file.
func readBeneath(dirfd int, name string) (content []byte, st unix.Stat_t, ok bool) {
	fd, err := openBeneath(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, st, false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, false
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return b, st, err == nil
}

// writeBeneath replaces name in dirfd by a new file holding content, mode
// 0400, owned by uid:gid (uid < 0: this process's user).
func writeBeneath(dirfd int, name string, content []byte, uid, gid int) error {
	suffix := make([]byte, 6)
	rand.Read(suffix)
	tmp := "." + name + ".tmp" + hex.EncodeToString(suffix)
	fd, err := openBeneath(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o400)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), tmp)
	fail := func(err error) error {
		f.Close()
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fail(err)
		}
	}
	if err := unix.Fchmod(fd, 0o400); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	return unix.Fsync(dirfd)
}

// WritePartitionCertificate writes partition's certificate and key into
// repo as SlapOS does, owned by cred's user (nil: this process's), and
// tells whether anything changed. Files already holding that content,
// owner and mode are left alone.
func WritePartitionCertificate(repo, partition string, cred *syscall.Credential, cert, key string) (bool, error) {
	dirfd, err := certDir(repo)
	if err != nil {
		return false, err
	}
	defer unix.Close(dirfd)
	uid, gid := -1, -1
	if cred != nil && int(cred.Uid) != os.Geteuid() {
		uid, gid = int(cred.Uid), int(cred.Gid)
	}
	changed := false
	for _, f := range []struct{ name, content string }{{partition + ".crt", cert}, {partition + ".key", key}} {
		old, st, ok := readBeneath(dirfd, f.name)
		wantUID := uint32(os.Geteuid())
		if uid >= 0 {
			wantUID = uint32(uid)
		}
		if ok && bytes.Equal(old, []byte(f.content)) && st.Uid == wantUID && st.Mode&0o777 == 0o400 && st.Nlink == 1 {
			continue
		}
		if err := writeBeneath(dirfd, f.name, []byte(f.content), uid, gid); err != nil {
			return changed, fmt.Errorf("partition %s certificate %s/%s: %w", partition, repo, f.name, err)
		}
		changed = true
	}
	return changed, nil
}

// RemovePartitionCertificate removes a destroyed partition's certificate
// and key, as SlapOS does (a link planted there is removed, not followed).
func RemovePartitionCertificate(repo, partition string) error {
	dirfd, err := certDir(repo)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	for _, name := range []string{partition + ".crt", partition + ".key"} {
		if !certNameRe.MatchString(name) {
			return fmt.Errorf("%q is not a plain file name", name)
		}
		if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("partition %s certificate %s/%s: %w", partition, repo, name, err)
		}
	}
	return nil
}
