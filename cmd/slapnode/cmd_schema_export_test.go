package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/schema"
)

// copyTree copies the helloweb example's profile and schemas.
func helloCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, _ := filepath.Abs("../../examples/helloweb")
	if out, err := exec.Command("cp", "-r", src+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return filepath.Join(dir, "software.hcl")
}

// TestSchemaExport: the descriptor written next to an HCL profile is a
// software.cfg.json SlapOS's client finds at the release URL + ".json",
// whose schemas resolve relative to the release and validate as the
// profile's own do; --check says when it is stale.
func TestSchemaExport(t *testing.T) {
	profile := helloCopy(t)
	code, out, errs := runCLI(t, "", "schema", "export", profile)
	if code != exitOK || !strings.Contains(out, "software.hcl.json") {
		t.Fatalf("export: %d %s%s", code, out, errs)
	}
	d, err := schema.LoadDescriptor(profile + ".json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Lookup("default", false)
	if err != nil {
		t.Fatal(err)
	}
	if d.SerialisationOf(st) != schema.SerialisationJSONInXML || st.Request != "schema/instance-input.json" {
		t.Errorf("default type: %+v", st)
	}
	if _, err := os.Stat(d.Resolve(st.Request)); err != nil {
		t.Errorf("request schema does not resolve next to the release: %v", err)
	}
	if sh, err := d.Lookup("default", true); err != nil || sh.Request != "schema/shared-input.json" {
		t.Errorf("shared type: %+v %v", sh, err)
	}
	v, err := d.Validator("default", false, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(map[string]any{"port": "not a port"}); err == nil {
		t.Error("the exported schema accepted a bad port")
	}
	if code, _, _ := runCLI(t, "", "schema", "export", profile, "--check"); code != exitOK {
		t.Errorf("--check of a fresh export: %d", code)
	}
	os.WriteFile(profile+".json", []byte("{}"), 0o644)
	if code, _, errs := runCLI(t, "", "schema", "export", profile, "--check"); code != exitFailure || !strings.Contains(errs, "out of date") {
		t.Errorf("--check of a stale file: %d %s", code, errs)
	}
	if code, _, _ := runCLI(t, "", "schema", "export", "software.cfg"); code != exitUsage {
		t.Errorf("export of a buildout profile: %d, want usage error", code)
	}
}
