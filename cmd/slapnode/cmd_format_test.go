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

// TestFormatSaysAddressChanges: when node format moves partitions to
// other addresses it prints each change (issue 19: it renumbered them
// silently).
func TestFormatSaysAddressChanges(t *testing.T) {
	reg := t.TempDir()
	t.Setenv(format.LoopbackEnv, reg)
	root := filepath.Join(t.TempDir(), "node")
	if code, out, errs := runCLI(t, "", "node", "format", "--rootless", "--root", root); code != exitOK {
		t.Fatalf("format: %d %s %s", code, out, errs)
	}
	b := format.RecordedLoopback(root)
	// This root's claim is lost and another root takes its block.
	os.RemoveAll(reg)
	if got, _ := format.LoopbackBlock(t.TempDir(), b, false); got != b {
		t.Fatalf("the other root did not get block %d", b)
	}
	code, out, errs := runCLI(t, "", "node", "format", "--rootless", "--root", root)
	nb := format.RecordedLoopback(root)
	want := "  + partition slappart0: IPv4 address " + format.LoopbackAddr(b, 0) + " → " + format.LoopbackAddr(nb, 0) + " (apply its instance again)"
	if code != exitOK || nb == b || !strings.Contains(out, want) {
		t.Errorf("format after the block was taken: %d\n%s\n%s\nwant %q", code, out, errs, want)
	}
}
