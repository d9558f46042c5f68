package wasmhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChmod(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	rw, ro, outside := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{rw, ro, outside} {
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(filepath.Join(outside, "f"), filepath.Join(rw, "escape"))
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: rw}, {HostPath: ro, ReadOnly: true}}})
	defer s.Close(t.Context())

	resp := hostCall(t, s, m, "chmod", map[string]any{"path": filepath.Join(rw, "f"), "mode": 0o755})
	if resp["error"] != nil {
		t.Fatalf("chmod in a writable mount: %v", resp)
	}
	if st, _ := os.Stat(filepath.Join(rw, "f")); st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", st.Mode())
	}
	for name, tc := range map[string]struct {
		path string
		mode int
		want string
	}{
		"read-only":   {filepath.Join(ro, "f"), 0o755, "read-only"},
		"outside":     {filepath.Join(outside, "f"), 0o777, "outside the directories"},
		"dotdot":      {filepath.Join(rw, "..", filepath.Base(outside), "f"), 0o777, "outside the directories"},
		"symlink out": {filepath.Join(rw, "escape"), 0o777, "chmod"},
		"setuid":      {filepath.Join(rw, "f"), 0o4755, "only permission bits"},
		"relative":    {"f", 0o755, "absolute path"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := hostCall(t, s, m, "chmod", map[string]any{"path": tc.path, "mode": tc.mode})
			msg, _ := resp["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want %q", msg, tc.want)
			}
		})
	}
	for _, d := range []string{ro, outside} {
		if st, _ := os.Stat(filepath.Join(d, "f")); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s changed to %v", d, st.Mode())
		}
	}
}
