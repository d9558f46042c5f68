// Package memtrim hands back to the kernel the pages of the slapnode
// binary that a long-running command does not use.
//
// slapnode is one binary for every command. When it starts, the
// initialisers of all its packages run — the WebAssembly runtime, the HCL
// parser, the schema compiler… — and the kernel maps each page they touch
// with its neighbours (fault-around: 64 KB at a time), so that a process
// that then only serves the master or supervises services keeps about
// 10 MB of code and read-only data resident that it never uses again.
// ReleaseCode asks the kernel to reclaim those pages once the command is
// set up; what the command goes on using comes back on first use.
package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseCode asks the kernel to reclaim the resident pages of the
// running executable's read-only mappings (MADV_PAGEOUT: its code and
// read-only data). It never discards content: those pages are clean copies
// of the file, read back on the next access. The kernel skips pages other
// processes map, and does nothing for a binary the caller could not write
// (a non-root user running a binary owned by root): then nothing changes.
// It returns how many bytes of mappings it advised.
func ReleaseCode() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var advised int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-01077000 r-xp 00000000 fd:01 1234  /path/to/slapnode
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.ContainsRune(fields[1], 'w') {
			continue
		}
		var lo, hi uintptr
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil || hi <= lo {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_PAGEOUT); errno != 0 {
			return advised, fmt.Errorf("madvise(MADV_PAGEOUT) on %s: %w", fields[0], errno)
		}
		advised += int64(hi - lo)
	}
	return advised, sc.Err()
}
