package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/format"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/node/master"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition"
)

// TestExitCodes: each exit code means one thing whatever the command — a
// usage error is not a failed promise — and README documents them all.
func TestExitCodes(t *testing.T) {
	codes := map[int]string{}
	for name, c := range map[string]int{"ok": exitOK, "failure": exitFailure, "changes": exitChanges,
		"offline": exitOffline, "promise": exitPromiseFailed, "usage": exitUsage} {
		if other, dup := codes[c]; dup {
			t.Errorf("exit code %d means both %s and %s", c, name, other)
		}
		codes[c] = name
	}
	if exitPromiseFailed != 4 || exitUsage != 64 || exitOffline != 3 || exitChanges != 2 {
		t.Errorf("exit codes changed: scripts rely on them (README)")
	}
	for _, args := range [][]string{
		{"status", "--nope"}, {"apply"}, {"promise", "run", "a", "b"}, {"aply"}, {"node", "rn"}, {},
	} {
		if code, _, errs := runCLI(t, "", args...); code != 64 {
			t.Errorf("%v: exit %d, want 64 (usage)\n%s", args, code, errs)
		}
	}
	// A failing promise exits 4.
	root := promiseNode(t)
	if code, _, errs := runCLI(t, "", "promise", "run", "--root", root); code != 4 {
		t.Errorf("failed promise: exit %d, want 4\n%s", code, errs)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for c := range codes {
		if !regexp.MustCompile(`(?m)^\| ` + strconv.Itoa(c) + ` \|`).Match(readme) {
			t.Errorf("README's exit code table has no row for %d", c)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"aply"}, "did you mean apply?"},
		{[]string{"stauts"}, "did you mean status?"},
		{[]string{"status", "-x"}, "not defined: -x (see"},
		{[]string{"node", "fromat"}, "did you mean node format?"},
		{[]string{"help", "promis"}, "did you mean promise?"},
		{[]string{"status", "--jsn"}, "did you mean --json?"},
		{[]string{"apply", "x.hcl", "--parm", "a=b"}, "did you mean --param?"},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	if _, _, errs := runCLI(t, "", "zzzzzz"); strings.Contains(errs, "did you mean") {
		t.Errorf("a suggestion for nothing close: %s", errs)
	}
}

// TestGroupsListTheirCommands: `slapnode node` lists node's subcommands.
func TestGroupsListTheirCommands(t *testing.T) {
	code, out, _ := runCLI(t, "", "node")
	if code != exitUsage || !strings.Contains(out, "node run") || !strings.Contains(out, "node format") || !strings.Contains(out, "node stop") {
		t.Errorf("slapnode node: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"node", "--help"}, {"help", "node"}, {"help", "cache"}} {
		if code, out, _ := runCLI(t, "", args...); code != exitOK || !strings.Contains(out, "Usage: slapnode "+args[len(args)-1]) && !strings.Contains(out, "Usage: slapnode node") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if _, out, _ := runCLI(t, "", "help", "cache"); !strings.Contains(out, "cache gc") {
		t.Errorf("help cache:\n%s", out)
	}
}

func TestVersionAndQuietFlags(t *testing.T) {
	code, out, _ := runCLI(t, "", "--version")
	if code != exitOK || !strings.HasPrefix(out, "slapnode ") || !strings.Contains(out, "recipe ABI") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "", "-q", "version", "--json"); code != exitOK || !strings.Contains(out, `"recipe_abi": 1`) {
		t.Errorf("-q version --json: exit %d %q", code, out)
	}
	// -q silences notes and progress, never results.
	var errb bytes.Buffer
	env := &cliEnv{stdout: &bytes.Buffer{}, stderr: &errb, quiet: true, prog: newProgress(&errb, true)}
	env.note("something")
	env.prog.now = func() time.Time { return time.Now().Add(time.Hour) }
	env.step("compiling")()
	if env.out() != nil || errb.Len() != 0 {
		t.Errorf("-q printed %q", errb.String())
	}
}

// TestProgressShowsLongSteps: a step over a second is named with its
// elapsed time on a terminal (redrawn in place, erased at its end), and
// named once elsewhere; a short step prints nothing.
func TestProgressShowsLongSteps(t *testing.T) {
	var now time.Time
	clock := func() time.Time { return now }
	for _, tty := range []bool{true, false} {
		var buf bytes.Buffer
		p := &progress{w: &buf, tty: tty, after: time.Second, now: clock}
		end := p.begin("compiling module cookbook")
		now = now.Add(500 * time.Millisecond)
		p.tick()
		if buf.Len() != 0 {
			t.Errorf("tty=%v: a step shorter than a second printed %q", tty, buf.String())
		}
		for range 9 {
			now = now.Add(500 * time.Millisecond)
			p.tick()
		}
		// Lines printed meanwhile erase the live line first.
		p.writer(&buf).Write([]byte("  + server (cookbook:build)\n"))
		now = now.Add(time.Second)
		p.tick()
		end()
		got := buf.String()
		if tty {
			if !strings.Contains(got, "compiling module cookbook… [4s]") || !strings.Contains(got, "\r\033[K  + server") || !strings.HasSuffix(got, "[6s]\r\033[K") {
				t.Errorf("terminal: %q", got)
			}
		} else if got != "compiling module cookbook…\n  + server (cookbook:build)\n" {
			t.Errorf("not a terminal: %q", got)
		}
	}
	// A wait is named at once.
	var buf bytes.Buffer
	p := &progress{w: &buf, now: clock}
	p.beginNow("waiting for web")()
	if buf.String() != "waiting for web…\n" {
		t.Errorf("wait: %q", buf.String())
	}
}

// TestRequestWaitSaysItOnce: request --wait says what it waits for once,
// not once per poll.
func TestRequestWaitSaysItOnce(t *testing.T) {
	url, node := testMaster(t)
	sw := writeSoftware(t, "xml")
	saved := requestPoll
	requestPoll = 5 * time.Millisecond
	defer func() { requestPoll = saved }()
	go func() {
		time.Sleep(300 * time.Millisecond)
		node.SetConnectionParameters(context.Background(), master.DefaultComputer, "slappart0", "", map[string]any{"url": "http://10.0.0.0:8080/"})
	}()
	code, out, errs := runCLI(t, "", "request", "web", sw, "--wait", "--master", url)
	if code != exitOK || !strings.Contains(out, "url = http://10.0.0.0:8080/") {
		t.Fatalf("request --wait: %d %s %s", code, out, errs)
	}
	if n := strings.Count(errs, "waiting for web to publish its connection parameters"); n != 1 {
		t.Errorf("the wait said %d times:\n%s", n, errs)
	}
}

// serveDaemon runs a node daemon for root in this process until the test
// ends.
func serveDaemon(t *testing.T, root string) *daemon.Client {
	t.Helper()
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
	t.Cleanup(func() {
		runCLI(t, "", "node", "stop", "--root", root)
		<-served
	})
	c, err := daemon.Dial(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestInstanceNames: status, logs, start, stop and restart take the name
// of an instance wherever they take a partition id, as promise run does.
func TestInstanceNames(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	reg := `{"instances": {"shop": {"name": "shop", "partition": "slappart3", "software": "/nowhere/software.hcl",
		"software_type": "default", "state": "started", "updated": "2026-01-01T00:00:00Z"}}}`
	if err := os.WriteFile(filepath.Join(root, "instances.json"), []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := serveDaemon(t, root)
	web := supervisor.ServiceSpec{Name: "web", Command: []string{"/bin/sh", "-c", "echo hello from the shop; exec sleep 1000"}, Dir: dir, Watch: true, StopGrace: 5 * time.Second}
	if _, err := c.Apply(context.Background(), "slappart3", []supervisor.ServiceSpec{web}); err != nil {
		t.Fatal(err)
	}
	nodeWaitUntil(t, "the shop logging", func() bool {
		_, out, _ := runCLI(t, "", "logs", "shop", "--root", root)
		return strings.Contains(out, "hello from the shop")
	})
	if code, out, errs := runCLI(t, "", "status", "shop", "--root", root); code != exitOK || !strings.Contains(out, "slappart3") || !strings.Contains(out, "web") {
		t.Errorf("status shop: %d %s %s", code, out, errs)
	}
	for _, op := range []string{"stop", "start", "restart"} {
		if code, out, errs := runCLI(t, "", op, "shop", "web", "--root", root); code != exitOK || !strings.Contains(out, "slappart3/web") {
			t.Errorf("%s shop web: %d %s %s", op, code, out, errs)
		}
	}
	code, _, errs := runCLI(t, "", "status", "sohp", "--root", root)
	if code != exitFailure || !strings.Contains(errs, `did you mean shop?`) {
		t.Errorf("status of a misspelt instance: %d %s", code, errs)
	}
}

// TestOutputShowsConnectionParameters: output NAME shows an instance's
// connection parameters again without applying, for instances applied
// locally and for those a master placed (by their title on the master).
func TestOutputShowsConnectionParameters(t *testing.T) {
	root := t.TempDir()
	reg := `{"instances": {"helloweb": {"name": "helloweb", "partition": "slappart0", "software": "/s/software.hcl",
		"software_type": "default", "state": "started", "connection": {"url": "http://127.9.0.1:8480/"}, "updated": "2026-01-01T00:00:00Z"}}}`
	os.WriteFile(filepath.Join(root, "instances.json"), []byte(reg), 0o600)
	conv := partition.StateDir(root, "slappart1")
	os.MkdirAll(conv, 0o755)
	os.WriteFile(filepath.Join(conv, "converged.json"), []byte(`{"timestamp": "1", "state": "started", "software": "https://lab.example/kvm/software.cfg", "software_type": "default", "title": "my-vm"}`), 0o640)
	os.WriteFile(filepath.Join(conv, "connection.json"), []byte(`{"_": "{\"ipv6\": \"2001:db8::1\", \"port\": 22}"}`), 0o640)

	code, out, errs := runCLI(t, "", "output", "helloweb", "--root", root)
	if code != exitOK || out != "connection parameters of helloweb (slappart0):\n  url = http://127.9.0.1:8480/\n" {
		t.Errorf("output helloweb: %d %q %s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "output", "my-vm", "--root", root)
	if code != exitOK || !strings.Contains(out, "ipv6 = 2001:db8::1") || !strings.Contains(out, "port = 22") {
		t.Errorf("output my-vm: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "", "output", "--json", "--root", root)
	var doc jsonOutput
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitOK || len(doc.Instances) != 2 || doc.Instances[1].PlacedBy != "master" {
		t.Errorf("output --json: %d %v %s", code, err, out)
	}
	code, _, errs = runCLI(t, "", "output", "hellowbe", "--root", root)
	if code != exitFailure || !strings.Contains(errs, "did you mean helloweb?") {
		t.Errorf("output of a misspelt name: %d %s", code, errs)
	}
	// The converged partition is also found by its id, and status maps it.
	if p, err := local.Lookup(root, "slappart1"); err != nil || p.Name != "my-vm" || !p.Master {
		t.Errorf("lookup slappart1: %+v %v", p, err)
	}
}

// TestRootlessNoteOnce: the note about an unformatted node says what is
// not isolated, once per node root; after format --rootless it is not said.
func TestRootlessNoteOnce(t *testing.T) {
	root := t.TempDir()
	var errb bytes.Buffer
	env := &cliEnv{stdout: &bytes.Buffer{}, stderr: &errb}
	n := &local.Node{Root: root, Rootless: true}
	rootlessNote(env, n)
	first := errb.String()
	for _, want := range []string{"no user of their own", "no cgroup limits", "no network of their own"} {
		if !strings.Contains(first, want) {
			t.Errorf("the note does not say %q: %s", want, first)
		}
	}
	rootlessNote(env, n)
	if errb.String() != first {
		t.Errorf("said twice:\n%s", errb.String())
	}
	formatted := t.TempDir()
	if code, out, errs := runCLI(t, "", "node", "format", "--rootless", "--root", formatted); code != exitOK {
		t.Fatalf("format --rootless: %d %s %s", code, out, errs)
	}
	errb.Reset()
	rootlessNote(env, &local.Node{Root: formatted, Rootless: true})
	if errb.Len() != 0 {
		t.Errorf("said after format --rootless: %s", errb.String())
	}

	// Through the command line: the first apply on a new node root says
	// it, the next ones do not.
	t.Setenv(format.LoopbackEnv, t.TempDir())
	fresh, dir := t.TempDir(), t.TempDir()
	serveDaemon(t, fresh)
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"s\" {\n  version = \"1\"\n}\n\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte("service \"sleep\" {\n  command = [\"/bin/sleep\", \"1000\"]\n}\n"), 0o644)
	for i, want := range []int{1, 0, 0} {
		code, _, errs := runCLI(t, "", "apply", filepath.Join(dir, "software.hcl"), "--root", fresh, "--settle", "0")
		if n := strings.Count(errs, "said once per node"); code != exitOK || n != want {
			t.Errorf("apply %d: exit %d, the note said %d times, want %d:\n%s", i+1, code, n, want, errs)
		}
	}
}
