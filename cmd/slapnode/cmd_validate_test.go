package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/testcorpus"
)

// schemaCorpus is shared/corpus/schema/software beside the repository (or a
// skip).
func schemaCorpus(t *testing.T) string {
	t.Helper()
	return filepath.Join(testcorpus.Dir(t, "schema"), "software")
}

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateCommand(t *testing.T) {
	corpus := schemaCorpus(t)
	vps := filepath.Join(corpus, "rapidspace-vps")

	code, out, errs := runCLI(t, "", "validate", "--software", vps, "--type", "vps-nvme0n1", "--param", "enable-novnc-server=no")
	if code != exitOK || !strings.Contains(out, `parameters valid for software type "vps-nvme0n1" of VPS (json-in-xml)`) ||
		!strings.Contains(out, "defaults applied: /boot-image-url-select") || !strings.Contains(out, "converted from strings: /enable-novnc-server") {
		t.Errorf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}

	code, _, errs = runCLI(t, "", "validate", "--software", vps, "--param", "ram-size:=1", "--param", "enable-novnc-server:=3")
	want := "slapnode validate: 2 invalid parameters for software type \"default\" of VPS:\n/enable-novnc-server: must be a boolean but is 3\n/ram-size: is not a parameter of this schema\n"
	if code != exitFailure || errs != want {
		t.Errorf("code %d stderr\n%s\nwant\n%s", code, errs, want)
	}

	// json-in-xml instance XML from stdin, complete parameters as JSON.
	xml := `<?xml version='1.0' encoding='utf-8'?><instance><parameter id="_">{"key-length": 4096}</parameter></instance>`
	code, out, errs = runCLI(t, xml, "validate", "--software", filepath.Join(corpus, "caucase", "software.cfg.json"), "--json", "-")
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	var doc struct {
		Valid           bool
		Parameters      map[string]any
		DefaultsApplied []string `json:"defaults_applied"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	params := doc.Parameters
	if !doc.Valid || params["key-length"] != float64(4096) || params["base-port"] != float64(8009) || len(doc.DefaultsApplied) == 0 {
		t.Errorf("params %v", doc)
	}
	if errs != "" {
		t.Errorf("with --json the report is in the document, stderr is quiet: %q", errs)
	}

	// Plain XML: strings converted to the schema's types.
	dir := t.TempDir()
	schemaPath := filepath.Join(dir, "in.json")
	if err := os.WriteFile(schemaPath, []byte(`{"type": "object", "properties": {"port": {"type": "integer", "maximum": 100}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	paramsPath := filepath.Join(dir, "p.xml")
	if err := os.WriteFile(paramsPath, []byte(`<instance><parameter id="port">200</parameter></instance>`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "", "validate", "--schema", schemaPath, paramsPath)
	if code != exitFailure || !strings.Contains(errs, "/port: must be <= 100 but is 200 (converted from a string)") {
		t.Errorf("code %d: %s", code, errs)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"validate"},
		{"validate", "--schema", schemaPath, "--software", vps},
		{"validate", "--schema", schemaPath, "a", "b"},
		{"validate", "--schema", schemaPath, "--param", "novalue"},
		{"validate", "--schema", schemaPath, "--serialisation", "yaml"},
	} {
		if code, _, errs := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%q: code %d (%s)", args, code, errs)
		}
	}
	code, _, errs = runCLI(t, "", "validate", "--software", vps, "--type", "nosuch")
	if code != exitFailure || !strings.Contains(errs, "known types: default, vps-nvme0n1") {
		t.Errorf("code %d: %s", code, errs)
	}
}

func TestSchemaShowCommand(t *testing.T) {
	corpus := schemaCorpus(t)
	code, out, errs := runCLI(t, "", "schema", "show", filepath.Join(corpus, "mail-server-relay"))
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	for _, want := range []string{"Mail Server", `software type "cluster" (shared)`, `software type "relay"`, "mail-server-port  integer  default 10025"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = runCLI(t, "", "schema", "show", filepath.Join(corpus, "rapidspace-vps"), "--type", "default", "--json")
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	var doc struct {
		SoftwareTypes []struct {
			Type       string `json:"software_type"`
			Parameters []struct {
				Pointer string `json:"pointer"`
				Default any    `json:"default"`
			} `json:"parameters"`
		} `json:"software_types"`
	}
	err := json.Unmarshal([]byte(out), &doc)
	got := doc.SoftwareTypes
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != 1 || got[0].Type != "default" || len(got[0].Parameters) != 3 || got[0].Parameters[2].Default != true {
		t.Errorf("got %+v", got)
	}
	if code, _, _ := runCLI(t, "", "schema", "show"); code != exitUsage {
		t.Errorf("missing PATH: code %d", code)
	}
	if code, _, errs := runCLI(t, "", "schema", "show", filepath.Join(corpus, "kvm", "nothing.txt")); code != exitFailure {
		t.Errorf("bad path: code %d %s", code, errs)
	}
}
