package profile

import (
	"os"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/benchprofile"
)

// splitSources are the repository's profiles, the benchmarks' generated
// ones, and the nesting scan's tricky inputs.
func splitSources(t testing.TB) map[string][]byte {
	srcs := map[string][]byte{
		"1000-parts.hcl":     []byte(bigProfile()),
		"1000-converted.hcl": []byte(benchprofile.Converted(1000)),
	}
	for _, f := range realProfiles(t) {
		if !strings.HasSuffix(f, ".hcl") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs[f] = src
	}
	for i, s := range nestingCases {
		srcs["case"+string(rune('A'+i%26))+strings.Repeat("_", i/26)+".hcl"] = []byte(s + "\nb = 1\nc = [2]\n")
	}
	return srcs
}

// TestSplitParseSameTree: the pieces Load parses alone give the syntax
// tree of the whole file, ranges included, cut between every top-level
// item or every few KB.
func TestSplitParseSameTree(t *testing.T) {
	used := 0
	for name, src := range splitSources(t) {
		for _, every := range []int{1, 100, splitBytes} {
			split, diff := DiffSplitParse(src, name, every)
			if diff != "" {
				t.Errorf("%s cut every %d bytes: %s", name, every, diff)
			}
			if split {
				used++
			}
		}
	}
	if used < 20 {
		t.Errorf("only %d files were parsed in pieces", used)
	}
}

// TestSplitParseFallsBack: input that does not parse cleanly in pieces
// is parsed whole, and Load reports the whole file's diagnostics.
func TestSplitParseFallsBack(t *testing.T) {
	for name, src := range map[string]string{
		"redefined": "a = 1\n" + strings.Repeat("part \"x\" {\n}\n", 200) + "a = 2\n",
		"broken":    strings.Repeat("part \"x\" {\n}\n", 200) + "part \"y\" {\n  a = \n}\n",
		"unclosed":  strings.Repeat("part \"x\" {\n}\n", 200) + "part \"y\" {\n",
	} {
		if split, diff := DiffSplitParse([]byte(src), name, 1); split || diff != "" {
			t.Errorf("%s: split %v %s", name, split, diff)
		}
	}
}

// FuzzSplitParse: whatever the input, pieces that parse cleanly give
// the whole file's tree.
func FuzzSplitParse(f *testing.F) {
	for _, src := range splitSources(f) {
		if len(src) < 4096 {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, diff := DiffSplitParse(src, "f.hcl", 1); diff != "" {
			t.Fatal(diff)
		}
	})
}
