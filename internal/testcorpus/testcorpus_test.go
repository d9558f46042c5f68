package testcorpus

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindWalksUp(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "repo", "a", "b")
	if err := os.MkdirAll(filepath.Join(root, "shared", "corpus", "slapos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(deep)
	if d, ok := Find("slapos"); !ok || d != filepath.Join(root, "shared", "corpus", "slapos") {
		t.Errorf("Find(slapos) = %q %v", d, ok)
	}
	// A corpus elsewhere on the machine (above the temporary directory)
	// may be found; never one inside the tree that lacks it.
	if d, ok := Find("schema"); ok && strings.HasPrefix(d, root) {
		t.Errorf("found %s, which is not there", d)
	}
}

// TestAbsentUnderCI runs a test that needs an absent corpus in a child
// process: skipped normally, failed under CI=true.
func TestAbsentUnderCI(t *testing.T) {
	if os.Getenv("TESTCORPUS_CHILD") != "" {
		t.Chdir(t.TempDir())
		Dir(t, "no-such-corpus")
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestAbsentUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTCORPUS_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		s := string(out)
		switch {
		case ci == "" && (err != nil || !strings.Contains(s, "--- SKIP") || !strings.Contains(s, "shared/corpus/no-such-corpus")):
			t.Errorf("without CI: %v\n%s", err, s)
		case ci == "true" && (err == nil || !strings.Contains(s, "--- FAIL") || !strings.Contains(s, "CI=true")):
			t.Errorf("under CI=true: %v\n%s", err, s)
		}
	}
}
