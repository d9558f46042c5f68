package buildout

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/testcorpus"
)

// corpusDir is shared/corpus/slapos beside the repository (or a skip).
func corpusDir(t testing.TB) string {
	t.Helper()
	return testcorpus.Dir(t, "slapos")
}

type manifestRow struct{ Path, Class, Closure string }

func readManifest(t testing.TB, corpus string) []manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []manifestRow
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 3 {
			t.Fatalf("MANIFEST.tsv: bad row %q", sc.Text())
		}
		rows = append(rows, manifestRow{p[0], p[1], p[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func isBuildoutClass(c string) bool { return c == "buildout" || c == "buildout+inline-jinja" }

// Every file classified as buildout parses with zero errors, and its
// conditions evaluate.
func TestCorpusParses(t *testing.T) {
	corpus := corpusDir(t)
	n := 0
	byClass := map[string][2]int{} // class -> parsed, total
	for _, r := range readManifest(t, corpus) {
		src, err := os.ReadFile(filepath.Join(corpus, r.Path))
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(r.Path, src)
		c := byClass[r.Class]
		c[1]++
		if err == nil {
			c[0]++
		}
		byClass[r.Class] = c
		if !isBuildoutClass(r.Class) {
			continue
		}
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, _, err := f.Sections(DefaultCondEnv()); err != nil {
			t.Errorf("%v", err)
		}
		n++
	}
	t.Logf("parsed by class (parsed/total): %v", byClass)
	if n < 250 {
		t.Fatalf("only %d buildout files parsed; the manifest lists 261", n)
	}
}

type golden struct {
	File     string `json:"file"`
	Error    string `json:"error"`
	Sections map[string]struct {
		Options map[string]string `json:"options"`
		Error   string            `json:"error"`
	} `json:"sections"`
}

// The resolved options equal what zc.buildout computes, for every file
// whose extends closure is in the corpus (goldens: hcl/buildout/buildout-goldens.py).
func TestGoldens(t *testing.T) {
	corpus := corpusDir(t)
	files, err := filepath.Glob("testdata/goldens/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens in testdata/goldens (run make goldens): %v", err)
	}
	checked := 0
	for _, gf := range files {
		b, err := os.ReadFile(gf)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", gf, err)
		}
		cfg, err := Load(filepath.Join(corpus, g.File), LoadOptions{Directory: "/srv/buildout", Executable: "/usr/bin/python3"})
		if g.Error != "" {
			if err == nil {
				t.Errorf("%s: zc.buildout fails (%s) but Load succeeds", g.File, g.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", g.File, err)
			continue
		}
		res := cfg.Resolve()
		var names []string
		for n := range res {
			names = append(names, n)
		}
		sort.Strings(names)
		var want []string
		for n := range g.Sections {
			want = append(want, n)
		}
		sort.Strings(want)
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s: sections\n got %v\nwant %v", g.File, names, want)
			continue
		}
		for _, n := range names {
			gs, rs := g.Sections[n], res[n]
			if (gs.Error != "") != (rs.Err != nil) {
				t.Errorf("%s [%s]: zc.buildout error %q, slapnode error %v", g.File, n, gs.Error, rs.Err)
				continue
			}
			if rs.Err != nil {
				continue
			}
			for k, want := range gs.Options {
				got, ok := rs.Options[k]
				got = strings.ReplaceAll(got, corpus, "@CORPUS@")
				if !ok || got != want {
					t.Errorf("%s [%s] %s:\n got %q\nwant %q", g.File, n, k, got, want)
				}
			}
			for k := range rs.Options {
				if _, ok := gs.Options[k]; !ok {
					t.Errorf("%s [%s]: extra option %s", g.File, n, k)
				}
			}
			checked++
		}
	}
	t.Logf("%d goldens, %d resolved sections compared", len(files), checked)
}
