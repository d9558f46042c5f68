package partition

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// A wrapper's hash-files: the part's signature follows the files' content
// (so the service restarts when its configuration is rendered anew), reads
// only regular files inside the part's directory, and follows no link.
func TestContentSignature(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "etc", "memo.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, []byte("title = A\n"), 0o644)
	opts := map[string]cty.Value{"hash-files": cty.StringVal(conf), "other": cty.StringVal("x")}
	names := []string{"hash-files"}
	a := contentSignature("base", dir, contentPathsOf(opts, names))
	if a == "base" || a != contentSignature("base", dir, contentPathsOf(opts, names)) {
		t.Fatalf("signature %q not derived or not stable", a)
	}
	os.WriteFile(conf, []byte("title = B\n"), 0o644)
	b := contentSignature("base", dir, contentPathsOf(opts, names))
	if b == a {
		t.Fatal("the signature ignores the file's content")
	}
	if contentSignature("base", dir, contentPathsOf(map[string]cty.Value{"hash-files": cty.TupleVal([]cty.Value{cty.StringVal(conf)})}, names)) != b {
		t.Fatal("a list of paths differs from the same path as a string")
	}
	if contentSignature("base", dir, contentPathsOf(map[string]cty.Value{"other": cty.StringVal(conf)}, names)) != "base" {
		t.Fatal("an option that is not a content option changed the signature")
	}

	// A link planted in place of the file is not followed: its target's
	// content does not count, the link reads as unreadable.
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret\n"), 0o600)
	os.Remove(conf)
	if err := os.Symlink(outside, conf); err != nil {
		t.Fatal(err)
	}
	l1 := contentSignature("base", dir, contentPathsOf(opts, names))
	os.WriteFile(outside, []byte("other secret\n"), 0o600)
	if contentSignature("base", dir, contentPathsOf(opts, names)) != l1 {
		t.Fatal("the link was followed")
	}
	// A path outside the directory is not read either.
	out := map[string]cty.Value{"hash-files": cty.StringVal(outside)}
	o1 := contentSignature("base", dir, contentPathsOf(out, names))
	os.WriteFile(outside, []byte("third\n"), 0o600)
	if contentSignature("base", dir, contentPathsOf(out, names)) != o1 {
		t.Fatal("a file outside the directory was read")
	}
}
