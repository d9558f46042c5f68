package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestApplyInstallsWhatWasChecked: the apply that follows CheckProfiles
// (ApplyOptions.Checked, as slapnode apply does) installs the release that
// was checked, parsed once, even if its file changed in between; an apply
// that was not preceded by a check reads the profile again.
func TestApplyInstallsWhatWasChecked(t *testing.T) {
	n := openNode(t)
	ctx := context.Background()
	prof := filepath.Join(t.TempDir(), "software.hcl")
	write := func(s string) {
		if err := os.WriteFile(prof, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`software "checked" {
  version = "1"
}
parts = ["dir"]
part "dir" {
  recipe = "cookbook:mkdirectory"
  path   = "${software.path}/checked"
}
`)
	if err := n.CheckProfiles(ctx, prof); err != nil {
		t.Fatal(err)
	}
	write("software {{{ not HCL\n")
	res, err := n.Apply(ctx, prof, ApplyOptions{Checked: true})
	if err != nil {
		t.Fatalf("apply after the check: %v", err)
	}
	if _, err := os.Stat(filepath.Join(res.Software.Path, "checked")); err != nil {
		t.Fatalf("the checked part was not installed: %v", err)
	}
	// The checked release is handed to one apply only.
	if _, err := n.Apply(ctx, prof, ApplyOptions{Checked: true, Recheck: true}); err == nil {
		t.Fatal("a second apply used the checked release again instead of reading the changed profile")
	}
}
