package main

import (
	"strings"
	"testing"
)

func TestValidateHCLProfile(t *testing.T) {
	code, out, errOut := runCLI(t, "", "validate", "--software", "../../examples/helloweb/software.hcl", "--param", "port:=12", "--param", "bogus=1")
	if code != 1 || !strings.Contains(errOut, "/port: must be >= 1024 but is 12") || !strings.Contains(errOut, "bogus") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "validate", "--software", "../../examples/helloweb/software.hcl", "--param", "port=9000")
	if code != 0 || !strings.Contains(out, "defaults applied: /greeting") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", "schema", "show", "../../examples/helloweb/software.hcl")
	if code != 0 || !strings.Contains(out, "port  integer  default 8480") {
		t.Fatalf("schema show exit %d:\n%s", code, out)
	}
}
