package wasmhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMkdirHost(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	rw, ro, outside := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(rw, "linkdir")))
	must(t, os.WriteFile(filepath.Join(rw, "file"), nil, 0o644))
	must(t, os.Mkdir(filepath.Join(ro, "there"), 0o755))
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: rw}, {HostPath: ro, ReadOnly: true}}})
	defer s.Close(t.Context())

	resp := hostCall(t, s, m, "mkdir", map[string]any{"path": filepath.Join(rw, "var", "log", "app"), "mode": 0o770})
	if resp["error"] != nil || resp["created"] != float64(3) {
		t.Fatalf("mkdir: %v", resp)
	}
	for d, want := range map[string]os.FileMode{"var": 0o755, "var/log": 0o755, "var/log/app": 0o750} {
		if st, err := os.Lstat(filepath.Join(rw, d)); err != nil || !st.IsDir() || st.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want a %#o directory (group and other write dropped)", d, st.Mode(), err, want)
		}
	}
	// Again: nothing made, the mode of what exists left as it is.
	resp = hostCall(t, s, m, "mkdir", map[string]any{"path": filepath.Join(rw, "var", "log", "app"), "mode": 0o700})
	if resp["error"] != nil || resp["created"] != float64(0) {
		t.Fatalf("mkdir of an existing directory: %v", resp)
	}
	if st, _ := os.Lstat(filepath.Join(rw, "var/log/app")); st.Mode().Perm() != 0o750 {
		t.Fatalf("an existing directory changed to %v", st.Mode())
	}
	for name, tc := range map[string]struct {
		path     string
		mode     int
		want     string
		fallback bool
	}{
		"through a link": {filepath.Join(rw, "linkdir", "x"), 0o755, "mkdir", false},
		"under a file":   {filepath.Join(rw, "file", "x"), 0o755, "not a directory", false},
		"setuid":         {filepath.Join(rw, "s"), 0o4755, "only permission bits", false},
		"read-only":      {filepath.Join(ro, "there"), 0o755, "read-only", true},
		"outside":        {filepath.Join(outside, "x"), 0o755, "outside the directories", true},
		"the mount":      {rw, 0o755, "the mount's directory itself", true},
		"node state":     {filepath.Join(rw, ".slapnode", "x"), 0o755, "node's state", true},
	} {
		t.Run(name, func(t *testing.T) {
			resp := hostCall(t, s, m, "mkdir", map[string]any{"path": tc.path, "mode": tc.mode})
			msg, _ := resp["error"].(string)
			if !strings.Contains(msg, tc.want) || (resp["fallback"] == true) != tc.fallback {
				t.Fatalf("%v, want error %q and fallback %v", resp, tc.want, tc.fallback)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("made outside the mounts: %v", entries)
	}
	if _, err := os.Lstat(filepath.Join(rw, ".slapnode")); err == nil {
		t.Fatal("made .slapnode")
	}
}
