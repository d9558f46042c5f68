package main

import (
	"html"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestArchitecturePicture: docs/architecture.svg is drawn from the current
// docs/architecture.dot (every line of every label is in the picture), and
// the packages and paths the picture names exist (issue 19: there was no
// architecture picture; one that drifts from the code is no better).
func TestArchitecturePicture(t *testing.T) {
	dot, err := os.ReadFile("../../docs/architecture.dot")
	if err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile("../../docs/architecture.svg")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range regexp.MustCompile(`<text[^>]*>([^<]*)</text>`).FindAllSubmatch(svg, -1) {
		texts = append(texts, squash(html.UnescapeString(string(m[1]))))
	}
	inSVG := strings.Join(texts, "\n")
	labels := regexp.MustCompile(`label="((?:[^"\\]|\\.)*)"`).FindAllSubmatch(dot, -1)
	if len(labels) < 10 {
		t.Fatalf("only %d labels in architecture.dot", len(labels))
	}
	pkg := regexp.MustCompile(`(?:^|[\s(,])((?:cmd|node|partition|hcl|runtime|schema|internal|recipes-wasm)/[A-Za-z0-9_./-]*[A-Za-z0-9_])`)
	for _, l := range labels {
		for _, line := range strings.Split(string(l[1]), `\n`) {
			line = squash(strings.ReplaceAll(line, `\"`, `"`))
			if line == "" {
				continue
			}
			if !strings.Contains(inSVG, line) {
				t.Errorf("architecture.svg lacks %q: redraw it with 'make docs'", line)
			}
			for _, p := range pkg.FindAllStringSubmatch(line, -1) {
				if _, err := os.Stat("../../" + p[1]); err != nil {
					t.Errorf("the picture names %s, which does not exist", p[1])
				}
			}
		}
	}
}

// squash collapses runs of spaces (Graphviz writes a double space as a
// space and a no-break space).
func squash(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\u00a0", " ")), " ")
}
