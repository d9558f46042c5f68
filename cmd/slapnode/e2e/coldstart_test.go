package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// installed copies the binary under test to base/bin/slapnode and prepares
// its install-time compilation cache as `make build` and `make install` do
// (base/lib/slapnode/wazero, read by that binary from ../lib/slapnode/wazero).
func installed(t *testing.T, base string) (bin, installCache string) {
	t.Helper()
	bin = filepath.Join(base, "bin", "slapnode")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(slapnode)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	installCache = filepath.Join(base, "lib", "slapnode", "wazero")
	r := runCmd(t, exec.Command(bin, "cache", "compile", "--dir", installCache))
	if r.code != 0 || !strings.Contains(r.stdout, "compiled cookbook") {
		t.Fatalf("cache compile (%d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	return bin, installCache
}

// machineCache lists the entries of a machine compilation cache: each is
// "link" (to the install-time cache: read, not compiled) or "file" (compiled
// by this machine).
func machineCache(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	var kinds []string
	for _, f := range files {
		fi, err := os.Lstat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			kinds = append(kinds, "link")
		} else {
			kinds = append(kinds, "file")
		}
	}
	return kinds
}

const coldProfile = `software "coldstart" {
  version = "0.0.0"
}
parts = ["work", "conf"]
part "work" {
  recipe = "cookbook:mkdirectory"
  path   = "${software.path}/work"
}
part "conf" {
  recipe = "cookbook:template"
  output = "${part.work.path}/app.conf"
  inline = "name = coldstart\n"
}
`

// TestInstalledCookbook: slapnode installed with its compiled cookbook
// (make build / make install) applies a node's first profile on a machine
// whose compilation cache is empty without compiling the cookbook — as
// root, and as an unprivileged user with a fresh HOME — and an install-time
// cache someone else owns is ignored with one note (the cookbook is then
// compiled as without it).
func TestInstalledCookbook(t *testing.T) {
	requireBuiltins(t)
	base := t.TempDir()
	os.Chmod(filepath.Dir(base), 0o755) // the unprivileged user runs base/bin/slapnode
	bin, installCache := installed(t, base)
	profile := filepath.Join(base, "software.hcl")
	if err := os.WriteFile(profile, []byte(coldProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func(t *testing.T, cred *syscall.Credential, env []string) (result, string) {
		t.Helper()
		root := t.TempDir()
		home := t.TempDir()
		if cred != nil {
			os.Chmod(filepath.Dir(root), 0o755)
			os.Chmod(filepath.Dir(home), 0o755)
			for _, d := range []string{root, home} {
				if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
					t.Fatal(err)
				}
			}
		}
		cmd := exec.Command(bin, "apply", profile, "--root", root)
		cmd.Dir = base
		cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8"}, env...)
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		t.Cleanup(func() {
			stop := exec.Command(bin, "node", "stop", "--root", root)
			stop.Env = cmd.Env
			stop.SysProcAttr = cmd.SysProcAttr
			stop.Run()
		})
		r := runCmd(t, cmd)
		if r.code != 0 {
			t.Fatalf("apply exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		return r, home
	}

	t.Run("empty machine cache", func(t *testing.T) {
		machine := filepath.Join(t.TempDir(), "wazero")
		r, _ := apply(t, nil, []string{"SLAPNODE_WASM_CACHE=" + machine})
		if strings.Contains(r.stderr, "compiling module cookbook") || strings.Contains(r.stdout+r.stderr, "note: install-time") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		if got := machineCache(t, machine); len(got) != 1 || got[0] != "link" {
			t.Fatalf("machine cache: %v; want one link to the install-time entry (the cookbook was compiled)", got)
		}
	})

	t.Run("unprivileged, fresh HOME", func(t *testing.T) {
		var cred *syscall.Credential
		if os.Geteuid() == 0 {
			cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		}
		r, home := apply(t, cred, nil)
		if strings.Contains(r.stderr, "compiling module cookbook") || strings.Contains(r.stdout+r.stderr, "note: install-time") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		// Its machine cache is ~/.cache/slapnode/wazero.
		if got := machineCache(t, filepath.Join(home, ".cache", "slapnode", "wazero")); len(got) != 1 || got[0] != "link" {
			t.Fatalf("machine cache: %v; want one link to the install-time entry", got)
		}
	})

	t.Run("install cache owned by someone else", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give the install-time cache to another user")
		}
		if err := os.Chown(installCache, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chown(installCache, 0, 0) })
		machine := filepath.Join(t.TempDir(), "wazero")
		r, _ := apply(t, nil, []string{"SLAPNODE_WASM_CACHE=" + machine})
		// Notes about the node's setup come with the apply's output.
		if n := strings.Count(r.stdout+r.stderr, "note: install-time compilation cache "+installCache+" ignored: owned by uid 65534"); n != 1 {
			t.Errorf("the untrusted install cache noted %d times:\n%s%s", n, r.stdout, r.stderr)
		}
		if got := machineCache(t, machine); len(got) != 1 || got[0] != "file" {
			t.Fatalf("machine cache: %v; want the cookbook compiled there", got)
		}
	})
}
