package buildout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every column-0 comment of every converted corpus file is in its HCL, and
// the comments right above a section header are right above that part.
func TestCommentsCarriedOver(t *testing.T) {
	corpus := corpusDir(t)
	total, above := 0, 0
	for _, r := range readManifest(t, corpus) {
		if !isBuildoutClass(r.Class) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(corpus, r.Path))
		if err != nil {
			t.Fatal(err)
		}
		res, err := ConvertFile(r.Path, src, ConvertOptions{})
		if err != nil || res.HCL == nil {
			continue
		}
		f, _ := Parse(r.Path, src)
		out := strings.Split(string(res.HCL), "\n")
		have := map[string]int{}
		for _, l := range out {
			if t := strings.TrimSpace(l); strings.HasPrefix(t, "#") {
				have[strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(t, "#"), " "), " ")]++
			}
		}
		for _, c := range f.Comments {
			total++
			text := strings.TrimRight(commentText(c), " ")
			// A dropped conditional section keeps its comments indented
			// inside the comment that holds its text.
			if have[text] > 0 {
				have[text]--
				continue
			}
			if strings.Contains(string(res.HCL), "# "+text) {
				continue
			}
			t.Errorf("%s: comment %q lost", r.Path, c)
		}
		// The comments right above a header (blank lines allowed) are
		// followed, in the HCL, by that part.
		lines := splitLines(src)
		for _, b := range f.Blocks {
			if b.Condition != "" || b.Name == "buildout" {
				continue
			}
			l := b.Pos.Line - 1
			for l >= 1 && strings.TrimSpace(lines[l-1]) == "" {
				l--
			}
			if l < 1 || f.Comments[l] == "" {
				continue
			}
			text := "# " + strings.TrimRight(commentText(f.Comments[l]), " ")
			found := false
			for i, ol := range out {
				if strings.TrimRight(strings.TrimSpace(ol), " ") != strings.TrimRight(text, " ") {
					continue
				}
				for _, next := range out[i+1:] {
					n := strings.TrimSpace(next)
					if n == "" || strings.HasPrefix(n, "#") {
						continue
					}
					if n == `part "`+MangleName(b.Name)+`" {` {
						found = true
					}
					break
				}
				if found {
					break
				}
			}
			above++
			if !found {
				t.Errorf("%s:%d: the comment above [%s] is not above its part", r.Path, l, b.Name)
			}
		}
	}
	t.Logf("%d comment lines carried over, %d of them above a section checked in place", total, above)
}
