package wasmhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildEvilSO compiles, with the host's C compiler, a shared object whose
// constructor writes marker: the payload of issue 18 #5
// (LD_PRELOAD=<a file the guest wrote> makes `true` run it).
func buildEvilSO(t *testing.T, dir, marker string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cc not found: the LD_PRELOAD payload cannot be built")
		}
		t.Skip("cc not found: the LD_PRELOAD payload cannot be built (apt-get install gcc)")
	}
	src := filepath.Join(dir, "evil.c")
	must(t, os.WriteFile(src, []byte(`#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
	int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) { dprintf(fd, "ran as uid %d\n", (int)getuid()); close(fd); }
}
`), 0o644))
	so := filepath.Join(dir, "evil.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", so, `-DMARKER="`+marker+`"`, src).CombinedOutput(); err != nil {
		t.Fatalf("build evil.so: %v\n%s", err, out)
	}
	return so
}

// TestExecEnvHostile is issue 18 #5: a module granted only harmless
// commands cannot make them run its code through the environment, and a
// command given as a path must be a granted one.
func TestExecEnvHostile(t *testing.T) {
	h, _ := newHost(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	so := buildEvilSO(t, dir, marker)
	net := []string{"tcp://127.0.0.1:1"} // the reactor imports download
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true", "env"}, Net: net})
	// A pattern that matches everything still grants no hook.
	star := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true", "env"}, Net: net, Env: []string{"*"}})
	s := newSession(t, h, SessionConfig{Mounts: []Mount{{HostPath: dir}}})
	pwned := func() bool { _, err := os.Stat(marker); return err == nil }

	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LD_PRELOAD": so}, "LD_PRELOAD is not granted"},
		{map[string]string{"LD_LIBRARY_PATH": dir}, "LD_LIBRARY_PATH is not granted"},
		{map[string]string{"LD_AUDIT": so}, "LD_AUDIT is not granted"},
		{map[string]string{"GCONV_PATH": dir}, "GCONV_PATH is not granted"},
		{map[string]string{"GLIBC_TUNABLES": "glibc.malloc.mxfast=0"}, "GLIBC_TUNABLES is not granted"},
		{map[string]string{"LOCPATH": dir}, "LOCPATH is not granted"},
		{map[string]string{"NLSPATH": dir + "/%N"}, "NLSPATH is not granted"},
		{map[string]string{"HOSTALIASES": dir + "/h"}, "HOSTALIASES is not granted"},
		{map[string]string{"RESOLV_HOST_CONF": dir + "/h"}, "RESOLV_HOST_CONF is not granted"},
		{map[string]string{"MALLOC_CHECK_": "3"}, "MALLOC_CHECK_ is not granted"},
		{map[string]string{"BASH_ENV": so}, "BASH_ENV is not granted"},
		{map[string]string{"ENV": so}, "ENV is not granted"},
		{map[string]string{"IFS": "/"}, "IFS is not granted"},
		{map[string]string{"PYTHONSTARTUP": so}, "PYTHONSTARTUP is not granted"},
		{map[string]string{"PERL5OPT": "-Mevil"}, "PERL5OPT is not granted"},
		{map[string]string{"NODE_OPTIONS": "--require " + so}, "NODE_OPTIONS is not granted"},
		{map[string]string{"GCC_EXEC_PREFIX": dir + "/"}, "GCC_EXEC_PREFIX is not granted"},
		{map[string]string{"PATH": dir}, "PATH is set by the host"},
		{map[string]string{"BASH_FUNC_true%%": "() { id; }"}, "not a valid name"},
		{map[string]string{"1X": "y"}, "not a valid name"},
		{map[string]string{"A=B": "y"}, "not a valid name"},
		{map[string]string{"FOO": "bar"}, `FOO is not granted to module "ctest": add it to allow_env`},
		{map[string]string{"HOME": "/root"}, `HOME="/root" is not inside a directory granted`},
		{map[string]string{"TMPDIR": "relative"}, `TMPDIR="relative" is not inside a directory granted`},
		{map[string]string{"CFLAGS": "a\x00b"}, "NUL byte"},
	} {
		for _, mod := range []*Module{m, star} {
			if mod == star && strings.Contains(tc.want, "allow_env") {
				continue // granted by *
			}
			resp := hostCall(t, s, mod, "exec", map[string]any{"argv": []string{"true"}, "env": tc.env})
			if e, _ := resp["error"].(string); resp["exit_code"] != -1.0 || !strings.Contains(e, tc.want) {
				t.Errorf("env %v (allow_env %v): %v, want %q", tc.env, mod.Grants.Env, resp, tc.want)
			}
			if pwned() {
				t.Fatalf("env %v ran the guest's code", tc.env)
			}
		}
	}

	// What a command sees: the host's PATH, HOME and LANG, then only what
	// was allowed; HOME and LANG replaced, not duplicated.
	resp := hostCall(t, s, star, "exec", map[string]any{"argv": []string{"env"},
		"env": map[string]string{"CC": "gcc", "LC_ALL": "C", "LANG": "fr_FR.UTF-8", "HOME": dir, "FOO": "bar"}})
	got := strings.Split(strings.TrimSpace(resp["output"].(string)), "\n")
	slices.Sort(got)
	want := []string{"CC=gcc", "FOO=bar", "HOME=" + dir, "LANG=fr_FR.UTF-8", "LC_ALL=C", "PATH=/usr/local/bin:/usr/bin:/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("environment of the command:\n%q\nwant\n%q", got, want)
	}

	// argv[0] given as a path: only where a granted name resolves.
	truePath, err := h.lookPath("true")
	must(t, err)
	if resp := hostCall(t, s, m, "exec", map[string]any{"argv": []string{truePath}}); resp["exit_code"] != 0.0 {
		t.Errorf("%s (where the granted true resolves): %v", truePath, resp)
	}
	fake := filepath.Join(dir, "true")
	sh, _ := exec.LookPath("sh")
	b, _ := os.ReadFile(sh)
	must(t, os.WriteFile(fake, b, 0o755))
	for _, argv0 := range []string{fake, "./true", "../../../bin/true", dir + "/../" + filepath.Base(dir) + "/true", "/bin/sh"} {
		resp := hostCall(t, s, m, "exec", map[string]any{"argv": []string{argv0, "-c", "id"}, "dir": dir})
		if e, _ := resp["error"].(string); resp["exit_code"] != -1.0 || !strings.Contains(e, "granted") {
			t.Errorf("argv[0] %q: %v", argv0, resp)
		}
	}

	// The control: the payload works, so the refusals above mean
	// something. Naming a hook exactly in allow_env is the profile
	// author's choice, and grants as much as an interpreter.
	chosen := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: net, Env: []string{"LD_PRELOAD"}})
	resp = hostCall(t, s, chosen, "exec", map[string]any{"argv": []string{"true"}, "env": map[string]string{"LD_PRELOAD": so}})
	if resp["exit_code"] != 0.0 || !pwned() {
		t.Fatalf("control: an exact LD_PRELOAD grant did not run the payload (%v): the test cannot detect the attack", resp)
	}
}

func TestAllowEnvGrants(t *testing.T) {
	h, _ := newHost(t)
	net := []string{"tcp://127.0.0.1:1"}
	for _, tc := range []struct {
		env  []string
		want string // "" = accepted
	}{
		{[]string{"FOO", "BAR_*", "*", "LD_PRELOAD", "PYTHONPATH"}, ""},
		{[]string{"LD_*"}, `pattern "LD_*" matches only variables that let a command load code`},
		{[]string{"PYTHON*"}, `e.g. "PYTHONPATH"`},
		{[]string{"PATH"}, "cannot grant PATH"},
		{[]string{""}, "is empty"},
		{[]string{"A B"}, "must be a variable name"},
		{[]string{"*X"}, "must be a variable name"},
		{[]string{"1X"}, "must be a variable name"},
	} {
		_, err := h.Load(context.Background(), "ctest", module(t, "reactor"), Grants{Exec: []string{"true"}, Net: net, Env: tc.env})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("allow_env %q refused: %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("allow_env %q: %v, want %q", tc.env, err, tc.want)
		}
	}
}

// TestHostileExecModule runs the hostile-module suite's exec attacker
// (testdata/hostile_exec.c) as a profile would: granted only true.
func TestHostileExecModule(t *testing.T) {
	h, _ := newHost(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	so := buildEvilSO(t, dir, marker)
	m := load(t, h, "hostile_exec", "hostile_exec", Grants{Exec: []string{"true"}})
	s := newSession(t, h, SessionConfig{Mounts: []Mount{{HostPath: dir}}})
	out, err := s.Call(context.Background(), m, "recipe_install",
		input("exec", map[string]any{"argv": []string{"true"}, "env": map[string]string{"LD_PRELOAD": so}}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "LD_PRELOAD is not granted") {
		t.Errorf("output: %s", out)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the module's code ran on the host: %s", b)
	}
}

// Switches of hook families pass with a boolean value only.
func TestSwitchEnv(t *testing.T) {
	s := &Session{}
	m := &Module{Name: "m"}
	if why := s.checkEnv(m, "GIT_TERMINAL_PROMPT", "0"); why != "" {
		t.Errorf("GIT_TERMINAL_PROMPT=0 refused: %s", why)
	}
	for _, kv := range [][2]string{{"GIT_TERMINAL_PROMPT", "/tmp/evil"}, {"GIT_SSH_COMMAND", "0"}, {"PYTHONUNBUFFERED", "x; rm"}} {
		if why := s.checkEnv(m, kv[0], kv[1]); why == "" {
			t.Errorf("%s=%s allowed without a grant", kv[0], kv[1])
		}
	}
}
