package partition

import (
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests plant, in a partition directory, what its user could plant
// there (issue 18), then apply again: files outside the partition must come
// out intact. They run as any user: the engine's process and the planter
// being the same user changes nothing to what the engine follows.

const hostileInstance = `
part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}
part "page" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/index.html"
  content = "v${parameter.v}"
}
`

// hostileSetup installs a software release whose instance writes
// P/etc/index.html, and instantiates it once in P.
func hostileSetup(t *testing.T) (e *Engine, sw *Software, part Partition, victims string) {
	t.Helper()
	e = newEngine(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"hostile\" { version = \"1\" }\ninstance \"default\" { profile = \"instance.hcl\" }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(hostileInstance), 0o644)
	sw, err := e.LoadSoftware(filepath.Join(dir, "software.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(context.Background(), sw, false, false); err != nil {
		t.Fatal(err)
	}
	part = Partition{ID: "slappart0", Path: filepath.Join(e.Root, "instance", "slappart0")}
	hostileApply(t, e, sw, part, "1")
	victims = filepath.Join(t.TempDir(), "victims")
	os.MkdirAll(filepath.Join(victims, "dir"), 0o755)
	os.MkdirAll(filepath.Join(victims, "tree"), 0o755)
	for _, f := range []string{"file", "dir/index.html", "tree/data"} {
		if err := os.WriteFile(filepath.Join(victims, f), []byte("victim"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e, sw, part, victims
}

func hostileApply(t *testing.T, e *Engine, sw *Software, part Partition, v string) error {
	t.Helper()
	_, err := e.Instantiate(context.Background(), &InstanceRequest{Software: sw, Partition: part, Params: map[string]any{"v": v}}, false)
	return err
}

func hostileIntact(t *testing.T, victims string) {
	t.Helper()
	for _, f := range []string{"file", "dir/index.html", "tree/data"} {
		if b, err := os.ReadFile(filepath.Join(victims, f)); err != nil || string(b) != "victim" {
			t.Errorf("victim %s: %q %v", f, b, err)
		}
	}
}

// Finding #1: the partition user swaps .slapnode for a directory of its own
// whose parts.journal links to a file root owns. The engine must not read,
// truncate nor append to it.
func TestHostileJournalLink(t *testing.T) {
	e, sw, part, victims := hostileSetup(t)
	sl := filepath.Join(part.Path, ".slapnode")
	os.Rename(sl, sl+".orig")
	os.MkdirAll(sl, 0o755)
	if err := os.Symlink(filepath.Join(victims, "file"), filepath.Join(sl, "parts.journal")); err != nil {
		t.Fatal(err)
	}
	err := hostileApply(t, e, sw, part, "2")
	hostileIntact(t, victims)
	if err != nil && !strings.Contains(err.Error(), "link") {
		t.Fatalf("apply failed without saying why: %v", err)
	}
}

// Finding #2: P/etc becomes a link to a directory outside; reinstalling the
// part that wrote P/etc/index.html must not delete the one out there.
func TestHostileUninstallThroughLink(t *testing.T) {
	e, sw, part, victims := hostileSetup(t)
	etc := filepath.Join(part.Path, "etc")
	os.Rename(etc, etc+".orig")
	if err := os.Symlink(filepath.Join(victims, "dir"), etc); err != nil {
		t.Fatal(err)
	}
	err := hostileApply(t, e, sw, part, "2")
	hostileIntact(t, victims)
	if err == nil {
		// The recipe cannot write through the link either (its file
		// system is confined to the partition): the apply must say so.
		t.Fatal("apply wrote through a link out of the partition")
	}
}

// Finding #3: a journal record, with a valid checksum, whose installed path
// goes through a link out of the partition. Uninstalling the part (it is
// not in the profile) must not delete what the link leads to.
func TestHostileForgedJournalRecord(t *testing.T) {
	e, sw, part, victims := hostileSetup(t)
	if err := os.Symlink(victims, filepath.Join(part.Path, "l")); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"op":"set","part":"ghost","rec":{"recipe":"cookbook:write-file","module_digest":"x","signature":"x","options":{},"installed":[%q],"seq":99}}`,
		filepath.Join(part.Path, "l", "tree"))
	line := fmt.Sprintf("%08x %s\n", crc32.ChecksumIEEE([]byte(body)), body)
	sl := filepath.Join(part.Path, ".slapnode")
	os.Rename(sl, sl+".orig")
	os.MkdirAll(sl, 0o755)
	old, _ := os.ReadFile(filepath.Join(sl+".orig", "parts.journal"))
	if err := os.WriteFile(filepath.Join(sl, "parts.journal"), append(old, line...), 0o644); err != nil {
		t.Fatal(err)
	}
	hostileApply(t, e, sw, part, "1")
	hostileIntact(t, victims)
	if _, err := os.Stat(filepath.Join(victims, "tree")); err != nil {
		t.Fatalf("the directory a forged record named is gone: %v", err)
	}
}

// Finding #12: temporary files of atomic writes killed before their rename
// (older versions' names, and this one's with a writer that is gone) are
// removed by the next apply.
func TestHostileStaleTempFilesCleaned(t *testing.T) {
	e, sw, part, _ := hostileSetup(t)
	old := time.Now().Add(-time.Hour)
	dead := deadPid(t)
	stale := []string{
		filepath.Join(sw.Path, "..completed.tmp123456"),
		filepath.Join(sw.Path, fmt.Sprintf("..completed.slapnode-tmp-%d-0a0b0c0d", dead)),
		filepath.Join(e.Root, "cache", "modules", ".0123abcd.json.tmp42"),
		filepath.Join(e.Root, fmt.Sprintf(".instances.json.slapnode-tmp-%d-0a0b0c0d", dead)),
	}
	for _, p := range stale {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	// A new engine: what a node does after the kill.
	e2 := &Engine{Root: e.Root, NodeID: "test", Host: e.Host}
	sw2, err := e2.LoadSoftware(sw.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.InstallSoftware(context.Background(), sw2, false, false); err != nil {
		t.Fatal(err)
	}
	if err := hostileApply(t, e2, sw2, part, "2"); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("stale temporary file left: %s", p)
		}
	}
}

// deadPid is the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
