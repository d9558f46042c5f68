package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/local"
)

func TestCacheCommands(t *testing.T) {
	requireCookbook(t)
	keys := t.TempDir()
	out, errs, code := selfTestCLI(t, "cache", "keygen", "--out", filepath.Join(keys, "builder"))
	if code != exitOK || !strings.Contains(out, "builder.pub") {
		t.Fatalf("keygen: exit %d %s%s", code, out, errs)
	}
	if _, _, code := selfTestCLI(t, "cache", "keygen", "--out", filepath.Join(keys, "builder")); code == exitOK {
		t.Error("keygen overwrote a key pair")
	}
	store := t.TempDir()
	builderRoot, nodeRoot := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(builderRoot, "cache.hcl"), []byte(`binary_cache {
  url         = "`+store+`"
  signing_key = "`+filepath.Join(keys, "builder.key")+`"
}
`), 0o644)
	os.WriteFile(filepath.Join(nodeRoot, "cache.hcl"), []byte(`binary_cache {
  url          = "`+store+`"
  trusted_keys = ["`+filepath.Join(keys, "builder.pub")+`"]
}
`), 0o644)
	profile := "../../examples/helloweb/software.hcl"

	if _, errs, code := selfTestCLI(t, "cache", "push", profile, "--root", builderRoot); code != exitFailure || !strings.Contains(errs, "apply") {
		t.Errorf("push before install: exit %d %s", code, errs)
	}
	ctx := context.Background()
	n, err := local.Open(ctx, builderRoot, nil)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := n.Engine.LoadSoftware(profile)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Engine.InstallSoftware(ctx, sw, false, false); err != nil {
		t.Fatal(err)
	}
	n.Close(ctx)
	// The install pushed the build already (the root has a signing key):
	// an explicit push finds it there.
	out, errs, code = selfTestCLI(t, "cache", "push", profile, "--root", builderRoot)
	if code != exitOK || !strings.Contains(out, "already in the binary cache") {
		t.Fatalf("push: exit %d %s%s", code, out, errs)
	}
	out, errs, code = selfTestCLI(t, "cache", "ls", "--release", profile, "--root", nodeRoot)
	if code != exitOK || !strings.Contains(out, "usable") || !strings.Contains(out, "1 entr") {
		t.Errorf("ls --release: exit %d %s%s", code, out, errs)
	}
	// A node that trusts nobody lists the entry as skipped, with why.
	os.WriteFile(filepath.Join(nodeRoot, "cache.hcl"), []byte(`binary_cache {
  url = "`+store+`"
}
`), 0o644)
	out, _, _ = selfTestCLI(t, "cache", "ls", "--release", profile, "--root", nodeRoot)
	if !strings.Contains(out, "skipped: signed by a key that is not trusted") {
		t.Errorf("ls with no trusted key:\n%s", out)
	}

	out, errs, code = selfTestCLI(t, "cache", "ls", "--root", builderRoot)
	if code != exitOK || !strings.Contains(out, "file(s)") {
		t.Errorf("ls: exit %d %s%s", code, out, errs)
	}
	out, errs, code = selfTestCLI(t, "cache", "gc", "--root", builderRoot, "--verify", "--max-size", "1GiB", "--dry-run")
	if code != exitOK || !strings.Contains(out, "would remove 0 file(s)") {
		t.Errorf("gc: exit %d %s%s", code, out, errs)
	}
}

// TestCacheCompileRefuses: cache compile takes no argument, and refuses to
// write machine code into a directory others can write to (they could
// swap an entry for their own code).
func TestCacheCompileRefuses(t *testing.T) {
	requireCookbook(t)
	if code, _, errs := runCLI(t, "", "cache", "compile", "somewhere"); code != exitUsage || !strings.Contains(errs, "--dir") {
		t.Errorf("cache compile somewhere: exit %d %s", code, errs)
	}
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if code, _, errs := runCLI(t, "", "cache", "compile", "--dir", open); code != exitFailure || !strings.Contains(errs, "writable by others") {
		t.Errorf("cache compile into a world-writable directory: exit %d %s", code, errs)
	}
	if entries, _ := filepath.Glob(filepath.Join(open, "*", "*")); len(entries) != 0 {
		t.Errorf("compiled into it: %v", entries)
	}
}
