package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogFifoIsRefused: a FIFO the partition user put in its service's log
// place made the daemon's open for writing block until someone read it:
// the service never started, and stopping the partition hung. It is
// refused like a link, at once.
func TestLogFifoIsRefused(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "var", "log")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(logDir, "web.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTestSup(t, Options{})
	if _, err := s.Apply("p1", []ServiceSpec{shSpec(dir, "web", "exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "p1", "web", StateFatal)
	if !strings.Contains(st.LastExit, "regular file") {
		t.Errorf("FATAL reason %q should say the log is not a regular file", st.LastExit)
	}
	done := make(chan error, 1)
	go func() { done <- s.StopPartition(t.Context(), "p1") }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stopping the partition hung")
	}
}
