package partition

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplateLargerThanAHostRequest: a rendered file larger than a host
// function's request (1 MiB) is written whole, and a small one through
// slapnode.write_file, both with their mode; a missing directory is made.
func TestTemplateLargerThanAHostRequest(t *testing.T) {
	e := newEngine(t)
	p := writeProfile(t, t.TempDir(), `
software "big" {
  version = "1"
}
part "big" {
  recipe = "cookbook:template"
  output = "${software.path}/etc/big.txt"
  inline = "{% for i in range(300000) %}0123456789{% endfor %}"
  mode   = "0640"
}
part "small" {
  recipe = "cookbook:template"
  output = "${software.path}/var/small.txt"
  inline = "small"
  mode   = "0600"
}
`)
	s := install(t, e, p)
	for _, f := range []struct {
		name string
		want string
		mode os.FileMode
	}{
		{"etc/big.txt", strings.Repeat("0123456789", 300000), 0o640},
		{"var/small.txt", "small", 0o600},
	} {
		path := filepath.Join(s.Path, f.name)
		b, err := os.ReadFile(path)
		if err != nil || string(b) != f.want {
			t.Fatalf("%s: %d bytes (%v), want %d", f.name, len(b), err, len(f.want))
		}
		// The software tree is opened to the partitions once built:
		// group and other read bits may be added, never write.
		if st, _ := os.Stat(path); st.Mode().Perm()&0o700 != f.mode&0o700 || st.Mode().Perm()&0o022 != 0 {
			t.Fatalf("%s: mode %v, want the owner's bits of %v and no group or other write", f.name, st.Mode(), f.mode)
		}
		if _, err := os.Lstat(path + ".slapnode-tmp"); err == nil {
			t.Fatalf("%s: the temporary file is left", f.name)
		}
	}
}
