package wasmhost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeFileRequest is a slapnode.write_file request: its JSON header line,
// then the bytes.
func writeFileRequest(path string, mode int, data string) string {
	return fmt.Sprintf(`{"path":%q,"mode":%d,"size":%d}`, path, mode, len(data)) + "\n" + data
}

func TestWriteFile(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	rw, ro, outside := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "f"), []byte("outside"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(rw, "linkdir")))
	must(t, os.Symlink(filepath.Join(outside, "f"), filepath.Join(rw, "linkfile")))
	must(t, os.Mkdir(filepath.Join(rw, "etc"), 0o755))
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: rw}, {HostPath: ro, ReadOnly: true}}})
	defer s.Close(t.Context())

	// A new file, then the same file replaced: the whole content, the mode
	// (group and other write dropped), no temporary file left.
	for _, content := range []string{"[section]\nkey = value\n", "short"} {
		resp := hostCall(t, s, m, "write_file", writeFileRequest(filepath.Join(rw, "etc", "app.cfg"), 0o666, content))
		if resp["error"] != nil {
			t.Fatalf("write_file: %v", resp)
		}
		b, err := os.ReadFile(filepath.Join(rw, "etc", "app.cfg"))
		if err != nil || string(b) != content {
			t.Fatalf("file holds %q (%v), want %q", b, err, content)
		}
		if st, _ := os.Stat(filepath.Join(rw, "etc", "app.cfg")); st.Mode().Perm() != 0o644 {
			t.Fatalf("mode %v, want 0644 (0666 without group and other write)", st.Mode())
		}
		if _, err := os.Lstat(filepath.Join(rw, "etc", "app.cfg.slapnode-tmp")); err == nil {
			t.Fatal("the temporary file is left")
		}
	}
	// A link planted where the file goes is replaced, never followed.
	resp := hostCall(t, s, m, "write_file", writeFileRequest(filepath.Join(rw, "linkfile"), 0o600, "mine"))
	if resp["error"] != nil {
		t.Fatalf("write_file over a link: %v", resp)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "f")); string(b) != "outside" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if st, _ := os.Lstat(filepath.Join(rw, "linkfile")); !st.Mode().IsRegular() {
		t.Fatalf("linkfile is %v, want the regular file written over the link", st.Mode())
	}
	// A missing directory is said as such, for the guest to create it.
	resp = hostCall(t, s, m, "write_file", writeFileRequest(filepath.Join(rw, "new", "f"), 0o644, "x"))
	if resp["missing_dir"] != true || !strings.Contains(fmt.Sprint(resp["error"]), "does not exist") {
		t.Fatalf("missing directory: %v", resp)
	}
	for name, tc := range map[string]struct {
		req  string
		want string
	}{
		"read-only":        {writeFileRequest(filepath.Join(ro, "f"), 0o644, "x"), "read-only"},
		"outside":          {writeFileRequest(filepath.Join(outside, "g"), 0o644, "x"), "outside the directories"},
		"dotdot":           {writeFileRequest(filepath.Join(rw, "..", filepath.Base(outside), "g"), 0o644, "x"), "outside the directories"},
		"through a link":   {writeFileRequest(filepath.Join(rw, "linkdir", "g"), 0o644, "x"), "write_file"},
		"the mount itself": {writeFileRequest(rw, 0o644, "x"), "the mount's directory itself"},
		"node state":       {writeFileRequest(filepath.Join(rw, ".slapnode", "x"), 0o644, "x"), "node's state"},
		"setuid":           {writeFileRequest(filepath.Join(rw, "s"), 0o4755, "x"), "only permission bits"},
		"relative":         {writeFileRequest("f", 0o644, "x"), "absolute path"},
		"size mismatch":    {`{"path":"` + filepath.Join(rw, "z") + `","mode":420,"size":5}` + "\nabc", "carries 3 bytes"},
		"no header line":   {`{"path":"` + filepath.Join(rw, "z") + `"}`, "no newline"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := hostCall(t, s, m, "write_file", tc.req)
			msg, _ := resp["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want %q", msg, tc.want)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(outside, "g")); err == nil {
		t.Fatal("a file was written outside the mounts")
	}
	if entries, _ := os.ReadDir(ro); len(entries) != 0 {
		t.Fatalf("the read-only mount was written: %v", entries)
	}
}

// TestWriteFileHostileTemp: what a partition user plants at the temporary
// name — a FIFO, a hard link to a file of another owner — never blocks the
// call nor reaches the other file.
func TestWriteFileHostileTemp(t *testing.T) {
	h, _ := newHost(t)
	m := load(t, h, "ctest", "reactor", Grants{Exec: []string{"true"}, Net: []string{"tcp://127.0.0.1:1"}})
	rw, outside := t.TempDir(), t.TempDir()
	s := h.NewSession(SessionConfig{Mounts: []Mount{{HostPath: rw}}})
	defer s.Close(t.Context())
	must(t, syscall.Mkfifo(filepath.Join(rw, "fifo.cfg.slapnode-tmp"), 0o666))
	resp := hostCall(t, s, m, "write_file", writeFileRequest(filepath.Join(rw, "fifo.cfg"), 0o644, "x"))
	if msg, _ := resp["error"].(string); msg == "" {
		t.Fatalf("write_file through a FIFO at the temporary name: %v", resp)
	}
	if os.Geteuid() != 0 {
		t.Skip("the hard-link case needs a file of another owner: run as root")
	}
	victim := filepath.Join(outside, "shadow")
	must(t, os.WriteFile(victim, []byte("secret"), 0o600))
	must(t, os.Chown(victim, 12345, 12345))
	must(t, os.Link(victim, filepath.Join(rw, "app.cfg.slapnode-tmp")))
	resp = hostCall(t, s, m, "write_file", writeFileRequest(filepath.Join(rw, "app.cfg"), 0o644, "overwritten"))
	if msg, _ := resp["error"].(string); msg == "" {
		t.Fatalf("write_file through a hard link to another owner's file: %v", resp)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret" {
		t.Fatalf("the other owner's file was written: %q", b)
	}
	if st, _ := os.Stat(victim); st.Mode().Perm() != 0o600 {
		t.Fatalf("the other owner's file changed mode: %v", st.Mode())
	}
}
