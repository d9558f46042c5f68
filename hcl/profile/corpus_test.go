package profile_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/hcl/buildout"
	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/internal/testcorpus"
)

// eachConvertedCorpusFile converts every buildout file of the SlapOS
// corpus's manifest to HCL and calls fn with its corpus path and text;
// the files slapnode convert does not convert are skipped.
func eachConvertedCorpusFile(t *testing.T, fn func(name string, hcl []byte)) {
	t.Helper()
	corpus := testcorpus.Dir(t, "slapos")
	f, err := os.Open(filepath.Join(corpus, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		row := strings.Split(sc.Text(), "\t")
		if len(row) != 3 || row[1] != "buildout" && row[1] != "buildout+inline-jinja" {
			continue
		}
		src, err := os.ReadFile(filepath.Join(corpus, row[0]))
		if err != nil {
			t.Fatal(err)
		}
		r, err := buildout.ConvertFile(row[0], src, buildout.ConvertOptions{})
		if err != nil || r.HCL == nil {
			continue
		}
		fn(row[0], r.HCL)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestSplitParseCorpus: every buildout file of the SlapOS corpus,
// converted to HCL, parses in pieces to the tree of the whole file.
func TestSplitParseCorpus(t *testing.T) {
	converted, split := 0, 0
	eachConvertedCorpusFile(t, func(name string, hcl []byte) {
		converted++
		for _, every := range []int{1, 2048} {
			s, diff := profile.DiffSplitParse(hcl, buildout.HCLName(name), every)
			if diff != "" {
				t.Errorf("%s cut every %d bytes: %s", name, every, diff)
			}
			if s {
				split++
			}
		}
	})
	if converted < 100 || split < converted {
		t.Errorf("%d files converted, %d parsed in pieces", converted, split)
	}
	t.Logf("%d converted files, %d parsed in pieces", converted, split)
}

// corpusOpts describes a few cookbook recipes with closed options; the
// others are unknown recipes of a known module.
var corpusOpts = profile.CheckOptions{
	Recipe: func(mod, name string) (*profile.OptionSpec, bool) {
		return &profile.OptionSpec{Known: map[string][]string{
			"url": {"string"}, "md5sum": {"string"}, "configure-options": {"array"}, "environment": {"object"},
			"location": {"string"}, "mode": {"string", "integer"}, "shared": {"boolean"}, "path": nil,
		}}, mod == "cookbook"
	},
	Names: func(mod string, promise bool) ([]string, bool) {
		return []string{"build", "cmmi", "egg-custom", "mkdirectory", "template", "wrapper"}, mod == "cookbook" && !promise
	},
}

// TestCheckCorpus: Check reports what the Check of commit 1e2e54a did
// on the SlapOS corpus converted to HCL (each file loaded with what it
// extends), as converted (buildout sections take any option) and with
// every block taken as hand-written.
func TestCheckCorpus(t *testing.T) {
	dir := t.TempDir()
	var files []string
	eachConvertedCorpusFile(t, func(name string, hcl []byte) {
		out := filepath.Join(dir, buildout.HCLName(name))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, hcl, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, out)
	})
	diags := 0
	for _, file := range files {
		p, _ := profile.Load(file, profile.Software)
		if p == nil {
			continue
		}
		for _, converted := range []bool{true, false} {
			for _, b := range p.Blocks {
				b.Buildout = converted
			}
			if d := profile.DiffCheck(p, corpusOpts); d != "" {
				t.Errorf("%s (converted %v):\n%s", file, converted, d)
			}
			diags += len(p.Check(corpusOpts))
		}
	}
	if len(files) < 100 || diags < 100 {
		t.Errorf("%d files, %d diagnostics: the corpus does not exercise Check", len(files), diags)
	}
	t.Logf("%d files, %d diagnostics", len(files), diags)
}
