package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/format"
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

// TestFormatWithSlapOSCfg: node format --cfg reads what SlapOS's slapos
// node format reads from slapos.cfg (issue 20): the partition count and
// names, instance_root and software_root; the daemon then finds its
// partitions there. A bad value is named with file:line:col.
func TestFormatWithSlapOSCfg(t *testing.T) {
	t.Setenv(format.LoopbackEnv, t.TempDir())
	dir := t.TempDir()
	root := filepath.Join(dir, "node")
	cfg := filepath.Join(dir, "slapos.cfg")
	os.WriteFile(cfg, []byte("[slapos]\ncomputer_id = COMP-3\nmaster_url = http://127.0.0.1:1/\n"+
		"instance_root = "+filepath.Join(dir, "srv")+"\nsoftware_root = "+filepath.Join(dir, "opt")+"\n"+
		"[slapformat]\ninterface_name = lo\npartition_amount = 3\npartition_base_name = part\nlog_file = /nowhere/format.log\n"), 0o644)
	code, out, errs := runCLI(t, "", "node", "format", "--rootless", "--root", root, "--cfg", cfg)
	if code != exitOK || !strings.Contains(errs, "node COMP-3, 3 partitions in "+filepath.Join(dir, "srv")) {
		t.Fatalf("format --cfg: %d\n%s\n%s", code, out, errs)
	}
	st, err := format.LoadState(root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range st.Partitions() {
		ids = append(ids, p.ID+"="+p.Path)
	}
	want := []string{"part0=" + filepath.Join(dir, "srv", "part0"), "part1=" + filepath.Join(dir, "srv", "part1"), "part2=" + filepath.Join(dir, "srv", "part2")}
	if strings.Join(ids, " ") != strings.Join(want, " ") || st.SoftwareRoot != filepath.Join(dir, "opt") || st.NodeID != "COMP-3" {
		t.Errorf("formatted %v, software root %s, node %s", ids, st.SoftwareRoot, st.NodeID)
	}
	if fi, err := os.Stat(filepath.Join(dir, "srv", "part2")); err != nil || !fi.IsDir() {
		t.Errorf("partition directory: %v", err)
	}
	// Again: nothing to do.
	if code, out, _ := runCLI(t, "", "node", "format", "--rootless", "--root", root, "--cfg", cfg); code != exitOK || !strings.Contains(out, "nothing to do") {
		t.Errorf("second format --cfg: %d %s", code, out)
	}
	os.WriteFile(cfg, []byte("[slapos]\ncomputer_id = COMP-3\nmaster_url = http://127.0.0.1:1/\n[slapformat]\ncreate_tap = maybe\n"), 0o644)
	if code, _, errs := runCLI(t, "", "node", "format", "--rootless", "--root", root, "--cfg", cfg); code != exitUsage || !strings.Contains(errs, "slapos.cfg:5:1: [slapformat] create_tap") {
		t.Errorf("bad slapos.cfg: %d %s", code, errs)
	}
}
