package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/partition/promise"
)

// promiseNode makes a node root with one started instance whose partition
// has a passing and a failing promise, and a legacy etc/promise executable.
func promiseNode(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	reg := `{"instances": {"web": {"name": "web", "partition": "slappart0", "software": "/nowhere/software.hcl",
		"software_type": "default", "state": "started", "updated": "2026-01-01T00:00:00Z"}}}`
	if err := os.WriteFile(filepath.Join(root, "instances.json"), []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(root, "instance", "slappart0")
	os.MkdirAll(filepath.Join(part, "etc", "promise"), 0o755)
	os.WriteFile(filepath.Join(part, "etc", "promise", "legacy"), []byte("#!/bin/sh\necho legacy fine\n"), 0o755)
	opts := func(cmd string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"command": []string{"/bin/sh", "-c", cmd}})
		return b
	}
	specs := []promise.Spec{
		{Name: "good", Check: "promises:check_command", Module: promise.ModuleRef{Name: "promises", Source: "builtin:cookbook"}, Options: opts("echo all good"), Test: true, Anomaly: true},
		{Name: "bad", Check: "promises:check_command", Module: promise.ModuleRef{Name: "promises", Source: "builtin:cookbook"}, Options: opts("echo it broke; exit 1"), Test: true, Anomaly: true},
	}
	if err := promise.SaveSpecs(partition.Partition{ID: "slappart0", Path: part, StateDir: partition.StateDir(root, "slappart0")}, specs); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestPromiseRunCommand(t *testing.T) {
	root := promiseNode(t)
	code, out, errs := runCLI(t, "", "promise", "run", "--root", root)
	rows := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			rows[f[1]] = f
		}
	}
	if code != exitPromiseFailed || rows["bad"] == nil || rows["bad"][0] != "slappart0" || rows["bad"][2] != "failed" || !strings.Contains(out, "it broke") ||
		rows["good"] == nil || rows["good"][2] != "ok" || rows["legacy"] == nil || rows["legacy"][2] != "ok" ||
		!strings.Contains(out, "3 promises, 1 failed") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "instance", "slappart0", ".slapgrid", "promise", "result", "bad.status.json")); err != nil {
		t.Errorf("no result file: %v", err)
	}
	code, out, errs = runCLI(t, "", "promise", "run", "web", "--only", "good", "--only", "legacy", "--json", "--root", root)
	var doc struct{ Promises []promise.Result }
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Promises) != 2 || !doc.Promises[0].OK || doc.Promises[0].Name != "good" || doc.Promises[1].Message != "legacy fine" {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	code, _, errs = runCLI(t, "", "promise", "run", "--only", "nope", "--root", root)
	if code != exitFailure || !strings.Contains(errs, `no promise named "nope" in slappart0`) {
		t.Fatalf("unknown promise: code %d, stderr %s", code, errs)
	}
	code, _, errs = runCLI(t, "", "promise", "run", "slappart7", "--root", root)
	if code != exitFailure || !strings.Contains(errs, `no partition or instance named "slappart7"`) {
		t.Fatalf("unknown partition: code %d, stderr %s", code, errs)
	}
}

func TestPromiseDaemon(t *testing.T) {
	root := promiseNode(t)
	bangs := make(chan string, 10)
	metrics := &promise.Metrics{Services: &lazyServices{root: root}}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	d, err := startPromiseDaemon(context.Background(), root, func(part, name, msg string) { bangs <- part + " " + name + ": " + msg }, metrics, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	select {
	case b := <-bangs:
		if b != "slappart0 bad: Promise bad is failing" {
			t.Fatalf("bang %q", b)
		}
	case <-time.After(2 * time.Minute): // a guard against a hang, not a timing check
		t.Fatal("no bang for a failing anomaly")
	}
	w := httptest.NewRecorder()
	metrics.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	for _, line := range []string{
		`slapnode_promise_ok{partition="slappart0",promise="bad",type="Anomaly Result"} 0`,
		`slapnode_promise_ok{partition="slappart0",promise="good",type="Anomaly Result"} 1`,
		"slapnode_supervisor_up 0", // no daemon serves this root
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %s:\n%s", line, body)
		}
	}
}
