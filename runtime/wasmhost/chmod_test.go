package wasmhost

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// Issue 18 #9: chmod needs no grant, so it must not make the partition,
// its state or anything else world-writable.
func TestChmodCannotOpenThePartition(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	part, outside := t.TempDir(), t.TempDir()
	os.Chmod(part, 0o750)
	os.MkdirAll(filepath.Join(part, ".slapnode"), 0o750)
	os.WriteFile(filepath.Join(part, ".slapnode", "parts.journal"), nil, 0o640)
	os.WriteFile(filepath.Join(part, "f"), []byte("x"), 0o600)
	os.Symlink(".", filepath.Join(part, "self"))
	os.Symlink("f", filepath.Join(part, "flink"))
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("x"), 0o600)
	if os.Geteuid() == 0 {
		os.Link(victim, filepath.Join(part, "hard"))
	}
	cred := &syscall.Credential{Uid: 65534, Gid: 65534}
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: part}}, Credential: cred})
	defer s.Close(t.Context())
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"the partition":     {part, "mount's directory itself"},
		"through a link":    {filepath.Join(part, "self"), "symbolic link"},
		"a link to a file":  {filepath.Join(part, "flink"), "symbolic link"},
		"a link on the way": {filepath.Join(part, "self", "f"), "symbolic link"},
		"the journal":       {filepath.Join(part, ".slapnode", "parts.journal"), "state"},
		"a hard link":       {filepath.Join(part, "hard"), "hard link"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "a hard link" && os.Geteuid() != 0 {
				t.Skip("a file of another owner needs root")
			}
			resp := hostCall(t, s, m, "chmod", map[string]any{"path": tc.path, "mode": 0o777})
			msg, _ := resp["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want %q", msg, tc.want)
			}
		})
	}
	for p, want := range map[string]os.FileMode{part: 0o750, filepath.Join(part, ".slapnode", "parts.journal"): 0o640,
		filepath.Join(part, "f"): 0o600, victim: 0o600} {
		if st, _ := os.Stat(p); st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	// Group and other write bits are dropped.
	if resp := hostCall(t, s, m, "chmod", map[string]any{"path": filepath.Join(part, "f"), "mode": 0o777}); resp["error"] != nil {
		t.Fatal(resp)
	}
	if st, _ := os.Stat(filepath.Join(part, "f")); st.Mode().Perm() != 0o755 {
		t.Fatalf("0777 gave %v, want 0755", st.Mode().Perm())
	}
}

// TestChmodOnTheMountHandle: slapnode.chmod resolves its path beneath the
// directory the session mounted, through the handle the guest's file
// operations use, not by opening the mount's path again on every call
// (three system calls each time, and another directory if the path was
// replaced meanwhile): the file it changes is the one the guest wrote.
func TestChmodOnTheMountHandle(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	base := t.TempDir()
	dir := filepath.Join(base, "m")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600))
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: dir}}})
	defer s.Close(t.Context())
	if resp := hostCall(t, s, m, "chmod", map[string]any{"path": filepath.Join(dir, "f"), "mode": 0o640}); resp["error"] != nil {
		t.Fatal(resp)
	}
	// The mounted directory moves; another takes its path.
	must(t, os.Rename(dir, filepath.Join(base, "moved")))
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600))
	if resp := hostCall(t, s, m, "chmod", map[string]any{"path": filepath.Join(dir, "f"), "mode": 0o755}); resp["error"] != nil {
		t.Fatal(resp)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(base, "moved", "f"): 0o755, filepath.Join(dir, "f"): 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %v", p, st.Mode().Perm(), err, want)
		}
	}
}
