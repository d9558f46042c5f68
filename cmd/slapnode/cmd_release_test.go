package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReleaseCheckCommand(t *testing.T) {
	root := t.TempDir()
	out, errs, code := selfTestCLI(t, "release", "check", "../../examples/helloweb/software.hcl", "--root", root)
	if code != exitFailure {
		t.Fatalf("helloweb (unpinned cc): exit %d, want %d\n%s%s", code, exitFailure, out, errs)
	}
	for _, want := range []string{"software.hcl:14:17: exec:", `host command "cc"`, "fix: pin it", `part "release-pins"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	dir := t.TempDir()
	src := `software "frozen" { version = "1" }
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["${software.path}/bin/tool"]
}
part "src" {
  recipe = "cookbook:download"
  url    = "https://example.org/src-1.0.tar.gz"
}
`
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(src), 0o644)
	out, _, code = selfTestCLI(t, "release", "check", filepath.Join(dir, "software.hcl"), "--root", root, "--json")
	var doc struct {
		Problems []struct {
			Rule, File, Fix string
			Line, Column    int
		}
	}
	err := json.Unmarshal([]byte(out), &doc)
	probs := doc.Problems
	if err != nil || code != exitFailure || len(probs) != 1 {
		t.Fatalf("exit %d, %v, problems %+v", code, err, probs)
	}
	if probs[0].Rule != "checksum" || probs[0].Line != 8 || probs[0].Column != 3 {
		t.Errorf("problem %+v", probs[0])
	}
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(strings.Replace(src, `tar.gz"`, `tar.gz"
  sha256 = "`+strings.Repeat("ab", 32)+`"`, 1)), 0o644)
	out, errs, code = selfTestCLI(t, "release", "check", filepath.Join(dir, "software.hcl"), "--root", root)
	if code != exitOK || !strings.Contains(out, "is a frozen release") {
		t.Errorf("pinned profile: exit %d\n%s%s", code, out, errs)
	}
}
