package promise

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/partition/service"
)

// spec builds a promise of the built-in module.
func spec(name, check string, opts any) Spec {
	b, err := json.Marshal(opts)
	if err != nil {
		panic(err)
	}
	s := Spec{Name: name, Check: check, Module: ModuleRef{Name: "cookbook", Source: "builtin:cookbook"}, Options: b, Test: true, Anomaly: true}
	s.defaults()
	return s
}

// runSpecs runs specs once, forced, in test mode, and indexes the results.
func runSpecs(t *testing.T, r *Runner, p PartitionRef, specs ...Spec) map[string]Result {
	t.Helper()
	res, err := r.RunPartition(context.Background(), p, RunOptions{Force: true, Specs: specs})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for _, x := range res {
		out[x.Name] = x
	}
	return out
}

func want(t *testing.T, res map[string]Result, name string, ok bool, msg string) {
	t.Helper()
	r, found := res[name]
	if !found {
		t.Fatalf("no result for %s", name)
	}
	if r.OK != ok || !strings.Contains(r.Message, msg) {
		t.Errorf("%s = ok %v %q, want ok %v and a message containing %q", name, r.OK, r.Message, ok, msg)
	}
}

func TestPortListening(t *testing.T) {
	needWasm(t, false)
	r := &Runner{Host: host(t)}
	p := newPartition(t, "slappart0")
	l4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	port4 := l4.Addr().(*net.TCPAddr).Port
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	specs := []Spec{
		spec("v4", "cookbook:check_port_listening", map[string]any{"host": "127.0.0.1", "port": port4}),
		spec("v4-closed", "cookbook:check_port_listening", map[string]any{"host": "127.0.0.1", "port": closedPort}),
	}
	l6, err := net.Listen("tcp", "[::1]:0")
	if err == nil {
		defer l6.Close()
		specs = append(specs, spec("v6", "promises:check_port_listening", map[string]any{"host": "::1", "port": l6.Addr().(*net.TCPAddr).Port}))
	} else {
		t.Logf("no IPv6 loopback on this machine: %v", err)
	}
	res := runSpecs(t, r, p, specs...)
	want(t, res, "v4", true, "accepts connections")
	want(t, res, "v4-closed", false, "does not accept connections")
	if l6 != nil {
		want(t, res, "v6", true, "accepts connections")
	}
}

func TestURLAvailable(t *testing.T) {
	needWasm(t, false)
	r := &Runner{Host: host(t)}
	p := newPartition(t, "slappart0")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/missing" {
			http.NotFound(w, req)
			return
		}
		w.Write([]byte("hello slapnode"))
	}))
	defer srv.Close()
	tls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { w.Write([]byte("secure")) }))
	tls.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	tls.StartTLS()
	defer tls.Close()
	res := runSpecs(t, r, p,
		spec("ok", "cookbook:check_url_available", map[string]any{"url": srv.URL, "content": "slapnode"}),
		spec("content", "cookbook:check_url_available", map[string]any{"url": srv.URL, "content": "absent"}),
		spec("status", "cookbook:check_url_available", map[string]any{"url": srv.URL + "/missing"}),
		spec("status-404", "cookbook:check_url_available", map[string]any{"url": srv.URL + "/missing", "status": 404}),
		spec("tls-verified", "cookbook:check_url_available", map[string]any{"url": tls.URL}),
		spec("tls-insecure", "cookbook:check_url_available", map[string]any{"url": tls.URL, "verify": false, "content": "secure"}),
	)
	want(t, res, "ok", true, "answered 200")
	want(t, res, "content", false, `does not contain "absent"`)
	want(t, res, "status", false, "answered 404, expected 200")
	want(t, res, "status-404", true, "answered 404")
	want(t, res, "tls-verified", false, "certificate")
	want(t, res, "tls-insecure", true, "answered 200")
}

func TestFileState(t *testing.T) {
	needWasm(t, false)
	r := &Runner{Host: host(t)}
	p := newPartition(t, "slappart0")
	os.WriteFile(filepath.Join(p.Path, "full"), []byte("status: ok\n"), 0o644)
	os.WriteFile(filepath.Join(p.Path, "empty"), nil, 0o644)
	res := runSpecs(t, r, p,
		spec("exists", "cookbook:check_file_state", map[string]any{"path": "full"}),
		spec("missing", "cookbook:check_file_state", map[string]any{"path": "nope"}),
		spec("empty", "cookbook:check_file_state", map[string]any{"path": filepath.Join(p.Path, "empty"), "state": "empty"}),
		spec("not-empty", "cookbook:check_file_state", map[string]any{"path": "empty", "state": "not-empty"}),
		spec("contains", "cookbook:check_file_state", map[string]any{"path": "full", "state": "contains", "content": "ok"}),
		spec("contains-not", "cookbook:check_file_state", map[string]any{"path": "full", "state": "contains", "content": "KO"}),
	)
	want(t, res, "exists", true, "exists")
	want(t, res, "missing", false, "does not exist")
	want(t, res, "empty", true, "is empty")
	want(t, res, "not-empty", false, "is empty")
	want(t, res, "contains", true, `contains "ok"`)
	want(t, res, "contains-not", false, `does not contain "KO"`)
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommand(t *testing.T) {
	r := &Runner{}
	p := newPartition(t, "slappart0")
	script(t, p.Path, "bin/good", `echo "in $(pwd) as HOME=$HOME"`)
	script(t, p.Path, "bin/bad", `echo "database is down" >&2; exit 3`)
	res := runSpecs(t, r, p,
		spec("good", "promises:check_command", map[string]any{"command": "bin/good"}),
		spec("bad", "promises:check_command", map[string]any{"command": []string{filepath.Join(p.Path, "bin/bad")}}),
		spec("absent", "cookbook:check_command", map[string]any{"command": "bin/absent"}),
		spec("system", "promises:check_command", map[string]any{"command": []string{"sh", "-c", "echo $PATH"}}),
	)
	want(t, res, "system", true, "/usr/local/bin:/usr/bin:/bin")
	esc := runSpecs(t, r, p, spec("../escape", "promises:check_command", map[string]any{"command": "/bin/true"}))
	want(t, esc, "../escape", false, "invalid promise name")
	if _, err := os.Stat(filepath.Join(p.Path, ".slapgrid", "promise", "escape.status.json")); !os.IsNotExist(err) {
		t.Errorf("a promise named ../escape wrote outside the result directory: %v", err)
	}
	want(t, res, "good", true, "in "+p.Path+" as HOME="+p.Path)
	want(t, res, "bad", false, "database is down")
	want(t, res, "absent", false, "cannot run")
}

// TestServiceRunning reads states as the supervisor reports them; the
// supervisor's own test (node/supervisor) runs the check against real
// processes.
func TestServiceRunning(t *testing.T) {
	p := newPartition(t, "slappart0")
	r := &Runner{Services: fakeServices{{Partition: "slappart0", Name: "sleeper", State: service.StateRunning, Watch: true}}}
	res := runSpecs(t, r, p, spec("up", "promises:check_service_running", map[string]any{"service": "sleeper"}))
	want(t, res, "up", true, "is RUNNING")
	r = &Runner{Services: fakeServices{{Partition: "slappart0", Name: "sleeper", State: service.StateStopped, Watch: true}}}
	got := runSpecs(t, r, p,
		spec("up", "promises:check_service_running", map[string]any{"service": "sleeper"}),
		spec("unknown", "promises:check_service_running", map[string]any{"service": "nope"}))
	want(t, got, "up", false, "sleeper of slappart0 is STOPPED")
	want(t, got, "unknown", false, "not known to the supervisor")
	got = runSpecs(t, &Runner{}, p, spec("nodaemon", "promises:check_service_running", map[string]any{"service": "sleeper"}))
	want(t, got, "nodaemon", false, "daemon is not running")
}

func TestFreeDiskSpace(t *testing.T) {
	p := newPartition(t, "slappart0")
	res := runSpecs(t, &Runner{}, p,
		spec("some", "promises:check_free_disk_space", map[string]any{"min_free": 1}),
		spec("huge", "promises:check_free_disk_space", map[string]any{"min_free": "1000000TiB"}),
		spec("pct", "promises:check_free_disk_space", map[string]any{"min_free": 0, "min_free_percent": 100.5}),
		spec("badunit", "promises:check_free_disk_space", map[string]any{"min_free": "3 parsecs"}),
	)
	want(t, res, "some", true, "free on the file system of "+p.Path)
	want(t, res, "huge", false, "below the 976.6 PiB required")
	want(t, res, "pct", false, "below the 100.5% required")
	want(t, res, "badunit", false, "unknown unit")
	for s, n := range map[string]uint64{"500MiB": 500 << 20, "2G": 2 << 30, "1KB": 1000, "12": 12} {
		if v, err := parseSize(json.RawMessage(`"` + s + `"`)); err != nil || v != n {
			t.Errorf("parseSize(%s) = %d %v, want %d", s, v, err, n)
		}
	}
}
