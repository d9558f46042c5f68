package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func rssFileKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// The test binary is this user's own file, so the kernel pages out its
// code: the process's file-backed resident set shrinks, and the test goes
// on running, its code read back as it is used.
func TestReleaseCode(t *testing.T) {
	before := rssFileKiB(t)
	advised, err := ReleaseCode()
	if err != nil {
		t.Fatal(err)
	}
	if advised == 0 {
		t.Fatal("no mapping of the executable found in /proc/self/maps")
	}
	after := rssFileKiB(t)
	t.Logf("RssFile %d kB -> %d kB (%d MB of mappings advised)", before, after, advised>>20)
	if after >= before {
		t.Errorf("RssFile did not shrink: %d kB -> %d kB", before, after)
	}
}
