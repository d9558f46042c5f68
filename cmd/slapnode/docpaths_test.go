package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocPaths fails when a document names a repository path that does not
// exist: every `code span` or markdown link whose first component is a
// top-level entry of the repository (docs/…, node/…, examples/…) must be
// there, relative to the repository root or to the document itself.
// Build outputs (*.wasm) are left out: make writes them.
func TestDocPaths(t *testing.T) {
	root := "../.."
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	top := map[string]bool{}
	for _, e := range entries {
		top[e.Name()] = true
	}
	var docs []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			docs = append(docs, p)
		}
		return nil
	})
	if len(docs) < 10 {
		t.Fatalf("found only %d documents", len(docs))
	}
	span := regexp.MustCompile("`([^`\\s]+)`|\\]\\(([^)\\s#]+)")
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range span.FindAllSubmatchIndex(b, -1) {
			var p string
			link := m[4] >= 0
			if link {
				p = string(b[m[4]:m[5]])
			} else {
				p = string(b[m[2]:m[3]])
			}
			p = strings.TrimRight(p, ".,;:")
			if strings.Contains(p, "://") || strings.ContainsAny(p, "*{}<>…|=$%") || strings.HasSuffix(p, ".wasm") || !strings.Contains(p, "/") {
				continue
			}
			cands := []string{filepath.Join(filepath.Dir(doc), p)}
			if !link {
				if !top[strings.Split(strings.TrimPrefix(p, "./"), "/")[0]] {
					continue
				}
				cands = append(cands, filepath.Join(root, p))
			}
			found := false
			for _, c := range cands {
				if _, err := os.Stat(c); err == nil {
					found = true
				}
			}
			if !found {
				line := strings.Count(string(b[:m[0]]), "\n") + 1
				rel, _ := filepath.Rel(root, doc)
				t.Errorf("%s:%d names %s, which does not exist", rel, line, p)
			}
		}
	}
}
