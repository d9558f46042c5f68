package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormatDryRunLeavesNoFile: 'node format --dry-run' on a node root that
// does not exist yet prints its plan and creates nothing — not the root,
// not a lock file (docs/node.md §2).
func TestFormatDryRunLeavesNoFile(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "node")
	code, out, errs := runCLI(t, "", "node", "format", "--dry-run", "--rootless", "--root", root)
	if code != exitOK || !strings.Contains(out, "would: create directory "+filepath.Join(root, "instance", "slappart0")) {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("the dry run created %v", entries)
	}
}
