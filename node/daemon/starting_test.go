package daemon

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
)

// TestStartingServesOnceReady: the methods of a daemon started in the
// background reach the real daemon process once it answers.
func TestStartingServesOnceReady(t *testing.T) {
	t.Setenv("SLAPNODE_DAEMON_TEST_HELPER", "1")
	root, dir := t.TempDir(), t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := Start(root, exe)
	defer s.Close()
	t.Cleanup(func() {
		if c, err := Dial(root); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			if err := c.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	})
	ctx := context.Background()
	if _, err := s.Apply(ctx, "p1", []supervisor.ServiceSpec{sleeper(dir, "web")}); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatal("Ready is false after a method answered")
	}
	st, err := s.Status(ctx)
	if err != nil || len(st) != 1 || st[0].Name != "web" {
		t.Fatalf("Status: %+v %v", st, err)
	}
	if err := s.RecordBuild(ctx, "https://example.invalid/software.cfg", time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
}

// TestStartingReportsAFailedStart: when the daemon cannot start (here the
// executable exits at once, as a broken binary would), Wait and every
// method return why, with the log's tail.
func TestStartingReportsAFailedStart(t *testing.T) {
	root := t.TempDir()
	s := Start(root, "/bin/false")
	_, err := s.Wait()
	if err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("Wait: %v, want the daemon's failed start", err)
	}
	if _, err2 := s.Apply(context.Background(), "p1", nil); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("Apply after a failed start: %v", err2)
	}
	if err2 := s.StopPartition(context.Background(), "p1"); err2 == nil {
		t.Fatal("StopPartition after a failed start succeeded")
	}
	s.Close() // nothing to close, must not block or panic
}
