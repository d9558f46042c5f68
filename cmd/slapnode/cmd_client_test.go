package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/master"
	"github.com/slapnode/slapnode/node/slap"
)

// testMaster runs a master with a formatted computer "slapnode" of 2
// partitions and returns its URL and a SLAP client (playing the node).
func testMaster(t *testing.T) (string, *slap.Client) {
	t.Helper()
	m, err := master.Open(filepath.Join(t.TempDir(), "m.db"), master.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	c, _ := slap.NewClient(srv.URL)
	cfg := &slap.ComputerConfiguration{Reference: master.DefaultComputer}
	for _, p := range []string{"slappart0", "slappart1"} {
		cfg.Partitions = append(cfg.Partitions, slap.PartitionConfiguration{Reference: p, Addresses: []slap.Address{{Addr: "10.0.0." + p[len(p)-1:], Netmask: "255.0.0.0"}}})
	}
	if err := c.LoadComputerConfiguration(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return srv.URL, c
}

// writeSoftware writes a buildout software.cfg with its descriptor and
// schema next to it: port must be an integer.
func writeSoftware(t *testing.T, serialisation string) string {
	dir := t.TempDir()
	files := map[string]string{
		"software.cfg":      "[buildout]\nparts =\n",
		"software.cfg.json": `{"name": "Web", "serialisation": "` + serialisation + `", "software-type": {"default": {"title": "Default", "request": "input.json", "index": 0}}}`,
		"input.json":        `{"type": "object", "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}, "additionalProperties": false}`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "software.cfg")
}

func TestClientCommands(t *testing.T) {
	url, node := testMaster(t)
	ctx := context.Background()
	sw := writeSoftware(t, "xml")
	m := "--master=" + url

	code, out, errs := runCLI(t, "", "supply", sw, "slapnode", m)
	if code != exitOK || !strings.Contains(out, "supplied "+sw+" to slapnode (available)") {
		t.Fatalf("supply: %d %s %s", code, out, errs)
	}
	// Invalid parameters are not sent.
	code, _, errs = runCLI(t, "", "request", "web", sw, "--param", "port=http", m)
	if code != exitFailure || !strings.Contains(errs, "not sent: 1 invalid parameter") || !strings.Contains(errs, "/port") {
		t.Fatalf("invalid request: %d %s", code, errs)
	}
	code, out, errs = runCLI(t, "", "request", "web", sw, "--param", "port=8080", "--param", "name=w", m)
	if code != exitOK || !strings.Contains(out, "web: started on slapnode/slappart0 (default)") || !strings.Contains(out, "no connection parameters yet") {
		t.Fatalf("request: %d %s %s", code, out, errs)
	}
	info, err := node.FullComputerInformation(ctx, master.DefaultComputer)
	if err != nil {
		t.Fatal(err)
	}
	if p := info.Partitions[0].InstanceParameters(); p["port"] != "8080" || p["name"] != "w" {
		t.Errorf("the node sees %v", p)
	}
	// The node publishes; request --wait returns at once with them.
	node.SetConnectionParameters(ctx, master.DefaultComputer, "slappart0", "", map[string]any{"url": "http://10.0.0.0:8080/"})
	code, out, _ = runCLI(t, "", "request", "web", sw, "--param", "port=8080", "--param", "name=w", "--wait", m)
	if code != exitOK || !strings.Contains(out, "url = http://10.0.0.0:8080/") {
		t.Errorf("request --wait: %d %s", code, out)
	}
	node.Started(ctx, master.DefaultComputer, "slappart0")

	code, out, errs = runCLI(t, "", "list", m)
	if code != exitOK || !strings.Contains(out, "NAME") || !strings.Contains(out, "web") || !strings.Contains(out, "started") || !strings.Contains(out, sw) {
		t.Errorf("list: %d %s %s", code, out, errs)
	}
	var listed struct{ Instances []master.Instance }
	code, out, _ = runCLI(t, "", "list", "--json", m)
	if code != exitOK || json.Unmarshal([]byte(out), &listed) != nil || len(listed.Instances) != 1 || listed.Instances[0].ReportedState != "started" {
		t.Errorf("list --json: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", "info", "web", m)
	if code != exitOK || !strings.Contains(out, "partition") || !strings.Contains(out, "slappart0") || !strings.Contains(out, "port = 8080") || !strings.Contains(out, "url = http://10.0.0.0:8080/") {
		t.Errorf("info: %d %s", code, out)
	}
	code, _, errs = runCLI(t, "", "info", "nothing", m)
	if code != exitFailure || !strings.Contains(errs, "no instance named") {
		t.Errorf("info of unknown: %d %s", code, errs)
	}
	// Destroying asks first: without a terminal, -auto-approve is needed.
	code, _, errs = runCLI(t, "", "destroy", "web", m)
	if code != exitFailure || !strings.Contains(errs, "refusing to destroy instance web without confirmation") || !strings.Contains(errs, "-auto-approve") {
		t.Errorf("destroy without a terminal: %d %s", code, errs)
	}
	if info, _ := node.FullComputerInformation(ctx, master.DefaultComputer); info.Partitions[0].RequestedState == "destroyed" {
		t.Error("the refused destroy was sent")
	}
	code, out, _ = runCLI(t, "", "destroy", "web", "-auto-approve", m)
	if code != exitOK || !strings.Contains(out, "requested destroyed") {
		t.Errorf("destroy: %d %s", code, out)
	}
	info, _ = node.FullComputerInformation(ctx, master.DefaultComputer)
	if info.Partitions[0].RequestedState != "destroyed" {
		t.Errorf("after destroy: %s", info.Partitions[0].RequestedState)
	}
	// remove SOFTWARE NODE is slapos remove: the release is asked removed.
	code, out, errs = runCLI(t, "", "remove", sw, "slapnode", m)
	if code != exitOK || !strings.Contains(out, "(destroyed)") {
		t.Errorf("remove SOFTWARE NODE: %d %s%s", code, out, errs)
	}
	info, _ = node.FullComputerInformation(ctx, master.DefaultComputer)
	if len(info.SoftwareReleases) != 1 || info.SoftwareReleases[0].RequestedState != "destroyed" {
		t.Errorf("after remove SOFTWARE NODE: %+v", info.SoftwareReleases)
	}
	// remove NAME still destroys an instance, and says it is deprecated.
	runCLI(t, "", "request", "web", sw, "--param", "port=8080", "--param", "name=w", m)
	code, out, errs = runCLI(t, "", "remove", "web", "-auto-approve", m)
	if code != exitOK || !strings.Contains(out, "requested destroyed") || !strings.Contains(errs, "deprecated") || !strings.Contains(errs, "slapnode destroy web") {
		t.Errorf("remove NAME: %d %s%s", code, out, errs)
	}
	// The partitions are full: a 404 with slapproxy's message, exit 1.
	runCLI(t, "", "request", "b", sw, m)
	code, _, errs = runCLI(t, "", "request", "c", sw, m)
	if code != exitFailure || !strings.Contains(errs, "No free computer partition found for: c") {
		t.Errorf("full: %d %s", code, errs)
	}
}

// json-in-xml software gets its parameters as one "_" JSON parameter.
func TestRequestJSONInXML(t *testing.T) {
	url, node := testMaster(t)
	sw := writeSoftware(t, "json-in-xml")
	code, _, errs := runCLI(t, "", "request", "web", sw, "--param", "port:=8080", "--json", "--master", url)
	if code != exitOK {
		t.Fatalf("%d %s", code, errs)
	}
	info, _ := node.FullComputerInformation(context.Background(), master.DefaultComputer)
	if got := info.Partitions[0].InstanceParameters()["_"]; got != "{\n  \"port\": 8080\n}" {
		t.Errorf("sent %q", got)
	}
}

func TestClientCommandErrors(t *testing.T) {
	code, _, errs := runCLI(t, "", "list", "--master", "http://127.0.0.1:1")
	if code != exitOffline || !strings.Contains(errs, "unreachable") {
		t.Errorf("unreachable: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "", "request", "x")
	if code != exitUsage || !strings.Contains(errs, "give NAME and SOFTWARE") {
		t.Errorf("usage: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "", "request", "x", "https://e.invalid/s.cfg", "--state", "running")
	if code != exitUsage {
		t.Errorf("bad state: %d %s", code, errs)
	}
}

func TestMasterCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	code, _, errs := runCLI(t, "", "master", "--listen", "0.0.0.0:0", "--db", db)
	if code != exitUsage || !strings.Contains(errs, "needs TLS and authentication") {
		t.Errorf("public listener without TLS: %d %s", code, errs)
	}
	code, out, errs := runCLI(t, "", "master", "token", "--computer", "COMP-1", "--db", db)
	if code != exitOK || len(strings.TrimSpace(out)) != 48 {
		t.Fatalf("token: %d %q %s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "master", "token", "--computer", "COMP-1", "--revoke", "--db", db)
	if code != exitOK || !strings.Contains(out, "revoked 1") {
		t.Errorf("revoke: %d %s", code, out)
	}
	code, _, _ = runCLI(t, "", "master", "token", "--partition", "p", "--db", db)
	if code != exitUsage {
		t.Errorf("token without scope: %d", code)
	}
}
