package buildout

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadExtendsNotAFile: `extends` naming a device or a FIFO is refused
// with the position of the extends, instead of reading /dev/zero until
// memory runs out or blocking on the FIFO forever; a file larger than
// MaxFileSize is reported by its position, not read whole.
func TestLoadExtendsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.cfg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.cfg")
	f, _ := os.Create(big)
	f.WriteString("[buildout]\nparts =\n")
	f.Truncate(1 << 34) // 16 GiB, sparse
	f.Close()
	for target, want := range map[string]string{
		"/dev/zero": "buildout.cfg:2:1: extends \"/dev/zero\": /dev/zero is not a regular file",
		fifo:        "buildout.cfg:2:1: extends \"" + fifo + "\": " + fifo + " is not a regular file",
		big:         "big.cfg:3:",
	} {
		cfg := filepath.Join(dir, "buildout.cfg")
		os.WriteFile(cfg, []byte("[buildout]\nextends = "+target+"\nparts =\n"), 0o644)
		done := make(chan error, 1)
		go func() {
			_, err := Load(cfg, LoadOptions{})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("extends = %s: %v, want %q", target, err, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("extends = %s: Load did not return", target)
		}
	}
}
