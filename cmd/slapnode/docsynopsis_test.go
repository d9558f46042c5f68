package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocSynopses fails when a document shows a slapnode command line
// (in a code block) naming a command that does not exist, or a flag that
// the command's help does not list: docs that went stale as the CLI moved
// (issue 19: parameters.md §6 was).
func TestDocSynopses(t *testing.T) {
	docs, _ := filepath.Glob("../../docs/*.md")
	docs = append(docs, "../../README.md")
	flagRE := regexp.MustCompile(`(?:^|[\s\[(|])(--?[a-z][a-z0-9-]*)`)
	global := map[string]bool{"-q": true, "--quiet": true, "-v": true, "--verbose": true, "--version": true, "--help": true, "-h": true}
	checked := 0
	shown := map[string]bool{}
	for _, doc := range docs {
		f, err := os.Open(doc)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		inBlock, n := false, 0
		for sc.Scan() {
			n++
			line := sc.Text()
			if strings.HasPrefix(line, "```") {
				inBlock = !inBlock
				continue
			}
			if !inBlock {
				continue
			}
			l := strings.TrimSpace(line)
			l = strings.TrimPrefix(l, "$ ")
			l = strings.TrimPrefix(l, "sudo ")
			for _, p := range []string{"./bin/slapnode ", "bin/slapnode "} {
				if strings.HasPrefix(l, p) {
					l = "slapnode " + l[len(p):]
				}
			}
			if !strings.HasPrefix(l, "slapnode ") {
				continue
			}
			if i := strings.Index(l, "#"); i >= 0 {
				l = l[:i]
			}
			if i := strings.IndexAny(l, "|>"); i >= 0 && !strings.Contains(l[:i], "[") {
				l = l[:i]
			}
			words := strings.Fields(l)[1:]
			if len(words) > 0 && strings.HasSuffix(words[0], ":") {
				continue // an error message the command printed
			}
			name := ""
			for k := len(words); k > 0; k-- {
				if c := commands[strings.Join(words[:k], " ")]; c != nil {
					name = c.name
					break
				}
			}
			if name == "" {
				if len(words) > 0 && !strings.HasPrefix(words[0], "-") {
					t.Errorf("%s:%d: %q: no such command", doc, n, strings.TrimSpace(line))
				}
				continue
			}
			checked++
			shown[name] = true
			usage := commands[name].usage
			for _, m := range flagRE.FindAllStringSubmatch(l, -1) {
				fl := m[1]
				bare := strings.TrimLeft(fl, "-")
				if global[fl] || strings.Contains(usage, "-"+bare) {
					continue
				}
				t.Errorf("%s:%d: %s: 'slapnode help %s' lists no %s", doc, n, strings.TrimSpace(line), name, fl)
			}
		}
		f.Close()
	}
	for name := range commands {
		if !shown[name] {
			t.Errorf("no document shows a 'slapnode %s' command line", name)
		}
	}
	if checked < 20 {
		t.Errorf("only %d command lines found in the docs", checked)
	}
}
