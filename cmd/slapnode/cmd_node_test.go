package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/supervisor"
)

func nodeCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func nodeWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServiceCommands(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	if _, _, code := nodeCLI(t, "status", "--root", root); code != exitFailure {
		t.Errorf("status without daemon: exit %d", code)
	}
	if out, _, code := nodeCLI(t, "node", "stop", "--root", root); code != 0 || !strings.Contains(out, "nothing to stop") {
		t.Errorf("node stop without daemon: %d %q", code, out)
	}
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		served <- daemon.Serve(context.Background(), root, daemon.Config{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-served:
		t.Fatal(err)
	}
	c, err := daemon.Dial(root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	web := supervisor.ServiceSpec{Name: "web", Command: []string{"/bin/sh", "-c", "echo hello from web; exec sleep 1000"}, Dir: dir, Watch: true, StopGrace: 5 * time.Second}
	if _, err := c.Apply(context.Background(), "p1", []supervisor.ServiceSpec{web}); err != nil {
		t.Fatal(err)
	}
	nodeWaitUntil(t, "web running and logging", func() bool {
		out, _, _ := nodeCLI(t, "logs", "p1", "web", "--root", root)
		return strings.Contains(out, "hello from web")
	})
	out, errs, code := nodeCLI(t, "status", "--root", root)
	if code != 0 || !strings.Contains(out, "PARTITION") || !strings.Contains(out, "p1") || !strings.Contains(out, "web") || !strings.Contains(out, "RUNNING") {
		t.Errorf("status: %d %q %q", code, out, errs)
	}
	out, _, _ = nodeCLI(t, "status", "p1", "--json", "--root", root)
	var st struct {
		Services []struct{ Pid int }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Services) != 1 || st.Services[0].Pid == 0 {
		t.Errorf("status --json: %v %q", err, out)
	}
	if out, _, code := nodeCLI(t, "stop", "p1", "web", "--root", root); code != 0 || out != "stopped p1/web\n" {
		t.Errorf("stop: %d %q", code, out)
	}
	if out, _, _ := nodeCLI(t, "status", "--root", root); !strings.Contains(out, "STOPPED") {
		t.Errorf("status after stop: %q", out)
	}
	if _, _, code := nodeCLI(t, "start", "p1", "--root", root); code != 0 {
		t.Errorf("start: %d", code)
	}
	if _, _, code := nodeCLI(t, "restart", "p1", "web", "--root", root); code != 0 {
		t.Errorf("restart: %d", code)
	}
	if _, errs, code := nodeCLI(t, "stop", "nope", "--root", root); code != exitFailure || !strings.Contains(errs, "not found") || !strings.Contains(errs, "slapnode status") {
		t.Errorf("stop of unknown partition: %d %q", code, errs)
	}
	if _, _, code := nodeCLI(t, "stop", "--root", root); code != exitUsage {
		t.Errorf("stop without partition: exit %d, want a usage error", code)
	}
	pid := 0
	nodeWaitUntil(t, "web running after restart", func() bool {
		if st, _ := c.Status(context.Background()); len(st) == 1 && st[0].State == supervisor.StateRunning {
			pid = st[0].Pid
		}
		return pid != 0
	})
	if out, errs, code := nodeCLI(t, "node", "stop", "--root", root); code != 0 || !strings.Contains(out, "stopped") {
		t.Errorf("node stop: %d %q %q", code, out, errs)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("daemon: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon still running after node stop")
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z") {
		t.Errorf("service pid %d survived node stop", pid)
	}
	// Logs stay readable without the daemon, from the recorded state.
	if out, _, code := nodeCLI(t, "logs", "p1", "--root", root); code != 0 || !strings.Contains(out, "hello from web") {
		t.Errorf("logs without daemon: %d %q", code, out)
	}
}

// nodeSyncBuffer is written by showLogs while the test reads it.
type nodeSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *nodeSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *nodeSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestShowLogsFollowsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "web.log")
	if err := os.WriteFile(log, []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out nodeSyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- showLogs(ctx, &out, []string{log}, 2, true, 10*time.Millisecond) }()
	nodeWaitUntil(t, "the last 2 lines", func() bool { return out.String() == "two\nthree\n" })
	appendTo := func(s string) {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	appendTo("four\n")
	nodeWaitUntil(t, "the appended line", func() bool { return strings.HasSuffix(out.String(), "four\n") })
	// Rotate as the supervisor does: rename, then a new file.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo("five\n")
	nodeWaitUntil(t, "the line after rotation", func() bool { return strings.HasSuffix(out.String(), "four\nfive\n") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := string(lastLines([]byte("a\nb\nc"), 2)); got != "b\nc" {
		t.Errorf("lastLines without final newline: %q", got)
	}
}
