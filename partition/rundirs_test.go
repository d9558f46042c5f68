package partition

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// TestScanRunDirsHostile: what a partition user plants in etc/service
// neither hangs the apply (a FIFO with execute bits, which was read for
// its digest) nor makes it read without bound (a huge sparse file).
func TestScanRunDirsHostile(t *testing.T) {
	dir := t.TempDir()
	svc := filepath.Join(dir, "etc", "service")
	if err := os.MkdirAll(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(svc, "fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(svc, "fifo"), 0o755)
	os.WriteFile(filepath.Join(svc, "web"), []byte("#!/bin/sh\nexec sleep 1\n"), 0o755)
	big, err := os.OpenFile(filepath.Join(svc, "big"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(maxDigested + 1)
	big.Close()
	done := make(chan []runDirProgram, 1)
	go func() {
		out, err := scanRunDirs(&Partition{ID: "slappart0", Path: dir}, map[string]hcl.Range{})
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	var got []runDirProgram
	select {
	case got = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("scanning etc/service blocked on a FIFO planted there")
	}
	byName := map[string]runDirProgram{}
	for _, p := range got {
		byName[p.name] = p
	}
	if _, ok := byName["fifo"]; ok {
		t.Errorf("a FIFO became a service: %+v", got)
	}
	if p, ok := byName["web"]; !ok || p.digest == "" || !p.watch {
		t.Errorf("web: %+v", p)
	}
	if p, ok := byName["big"]; !ok || p.digest != "" {
		t.Errorf("big: %+v, want a service without digest", p)
	}
}
