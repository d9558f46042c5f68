package recipetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func call(t *testing.T, h *Host, fn string, req any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(req)
	out, err := h.Call(fn, b)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExecEnvRule: the test host refuses what slapnode's host refuses, so
// that a recipe's tests fail where the node would.
func TestExecEnvRule(t *testing.T) {
	e := New(t)
	h := e.Host
	for env, want := range map[string]string{
		"LD_PRELOAD": "LD_PRELOAD is not granted",
		"PATH":       "PATH is set by the host",
		"FOO":        "FOO is not granted: add it to allow_env",
		"HOME":       "is not inside a directory granted",
		"1BAD":       "not a valid name",
	} {
		value := "/tmp/x"
		m := call(t, h, "exec", map[string]any{"argv": []string{"true"}, "env": map[string]string{env: value}})
		if s, _ := m["error"].(string); !strings.Contains(s, want) {
			t.Errorf("%s: %v, want %q", env, m, want)
		}
	}
	for env, value := range map[string]string{"CFLAGS": "-O2", "GIT_TERMINAL_PROMPT": "0", "HOME": e.Dir(), "LC_ALL": "C"} {
		m := call(t, h, "exec", map[string]any{"argv": []string{"true"}, "env": map[string]string{env: value}})
		if m["error"] != nil || m["exit_code"] != 0.0 {
			t.Errorf("%s=%s: %v", env, value, m)
		}
	}
	h.AllowEnv = []string{"FOO", "LD_*", "LD_PRELOAD"}
	m := call(t, h, "exec", map[string]any{"argv": []string{"sh", "-c", "echo $FOO"}, "env": map[string]string{"FOO": "bar"}})
	if m["output"] != "bar\n" {
		t.Errorf("granted FOO: %v", m)
	}
	m = call(t, h, "exec", map[string]any{"argv": []string{"true"}, "env": map[string]string{"LD_LIBRARY_PATH": "/x"}})
	if s, _ := m["error"].(string); !strings.Contains(s, "LD_LIBRARY_PATH is not granted") {
		t.Errorf("a pattern granted a hook: %v", m)
	}
	m = call(t, h, "exec", map[string]any{"argv": []string{"true"}, "dir": "/"})
	if s, _ := m["error"].(string); !strings.Contains(s, "not inside a directory granted") {
		t.Errorf("dir outside the mounts: %v", m)
	}
}

// TestChmodRule: the test host's chmod is the host's: no group/other
// write bits, not on the mount, not through a link, not on another
// owner's hard link, not outside the writable mounts.
func TestChmodRule(t *testing.T) {
	e := New(t)
	h := e.Host
	f := e.Path("run.sh")
	e.WriteFile(f, "#!/bin/sh\n")
	if m := call(t, h, "chmod", map[string]any{"path": f, "mode": 0o777}); m["error"] != nil {
		t.Fatal(m)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o755 {
		t.Errorf("0777 gave %v, want 0755", st.Mode().Perm())
	}
	os.Symlink("run.sh", e.Path("link"))
	os.Mkdir(e.Path("d"), 0o755)
	os.Symlink(".", e.Path("d", "self"))
	for path, want := range map[string]string{
		e.Dir():                  "keeps the mode the node gave it",
		e.Path("link"):           "symbolic link",
		e.Path("d", "self", "x"): "symbolic link",
		e.Context.Software.Path:  "outside the directories",
		e.Path(".slapnode", "x"): "the node's state",
		"relative":               "absolute path",
	} {
		m := call(t, h, "chmod", map[string]any{"path": path, "mode": 0o755})
		if s, _ := m["error"].(string); !strings.Contains(s, want) {
			t.Errorf("chmod %s: %v, want %q", path, m, want)
		}
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(t.TempDir(), "other")
		os.WriteFile(other, nil, 0o644)
		os.Chown(other, 65534, 65534)
		if err := os.Link(other, e.Path("hard")); err == nil {
			m := call(t, h, "chmod", map[string]any{"path": e.Path("hard"), "mode": 0o600})
			if s, _ := m["error"].(string); !strings.Contains(s, "hard link") {
				t.Errorf("chmod of another owner's hard link: %v", m)
			}
		}
	}
}
