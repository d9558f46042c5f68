package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkCallC-2        	     200	    229644 ns/op	   2.26 MB/s	     95045 cpu-ns/op	    2260 B/op	      35 allocs/op
BenchmarkCallC-2        	     200	    100000 ns/op	   2.26 MB/s	     91000 cpu-ns/op	    2260 B/op	      35 allocs/op
BenchmarkCallC-2        	     200	    150000 ns/op	   2.26 MB/s	     93000 cpu-ns/op	    2260 B/op	      35 allocs/op
BenchmarkApply/parts=100/first-2         	       3	1459561839 ns/op
--- FAIL: BenchmarkRun200/slapos-style
PASS
`)
	rs := parseBench(out)
	if len(rs) != 2 || rs[0].Name != "CallC" || rs[1].Name != "Apply/parts=100/first" {
		t.Fatalf("parsed %+v", rs)
	}
	c := rs[0].Metrics["cpu-ns/op"]
	if rs[0].Runs != 3 || c.Median != 93000 || c.Lo != 91000 || c.Hi != 95045 {
		t.Fatalf("CallC cpu-ns/op: %+v (runs %d)", c, rs[0].Runs)
	}
	if got := units(rs); strings.Join(got, ",") != "ns/op,cpu-ns/op,MB/s,B/op,allocs/op" {
		t.Fatalf("units order %v", got)
	}
}

// The hand-written sections survive any number of regenerations, in
// order, and the generated part is replaced, not duplicated.
func TestPageKeepsOtherSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	orig := "# Benchmarks\n\n## .cfg conversion\n\nfigures A\n\n## Supervisor\n\nfigures B\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &results{Command: "make bench", Repeat: 5}
	for i := 0; i < 3; i++ {
		if err := writePage(path, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	page := string(b)
	for _, want := range []string{"## .cfg conversion\n\nfigures A\n\n## Supervisor\n\nfigures B\n", beginMarker, endMarker} {
		if strings.Count(page, want) != 1 {
			t.Fatalf("page has %d copies of %q:\n%s", strings.Count(page, want), want, page)
		}
	}
	if !strings.HasPrefix(page, pageTitle+"\n") || strings.Index(page, endMarker) > strings.Index(page, "figures A") {
		t.Fatalf("layout:\n%s", page)
	}
	// A section someone adds after the markers is kept too.
	os.WriteFile(path, []byte(page+"\n## Binary cache\n\nfigures C\n"), 0o644)
	if err := writePage(path, r, nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !strings.Contains(string(b), "figures B\n\n## Binary cache\n\nfigures C\n") {
		t.Fatalf("added section lost:\n%s", b)
	}
}

func TestRatiosPairByRepetition(t *testing.T) {
	s := []sample{
		{N: 10, Rep: 1, Engine: engBuildout, Run: runFirst, M: measure{Wall: 10, CPU: 8, RSSMB: 40}},
		{N: 10, Rep: 1, Engine: engSlapnode, Run: runFirst, M: measure{Wall: 1, CPU: 2, RSSMB: 20}},
		{N: 10, Rep: 2, Engine: engBuildout, Run: runFirst, M: measure{Wall: 12, CPU: 8, RSSMB: 40}},
		{N: 10, Rep: 2, Engine: engSlapnode, Run: runFirst, M: measure{Wall: 4, CPU: 2, RSSMB: 20}},
		{N: 100, Rep: 1, Engine: engSlapnode, Run: runFirst, M: measure{Wall: 100}},
	}
	w, c, r := ratios(s, 10, engBuildout, runFirst, engSlapnode, runFirst)
	if len(w) != 2 || w[0] != 10 || w[1] != 3 || c[0] != 4 || r[1] != 2 {
		t.Fatalf("ratios %v %v %v", w, c, r)
	}
	st, ok := summarize(s, engBuildout, runFirst, 10)
	if !ok || st.Wall != 11 || st.WallLo != 10 || st.WallHi != 12 || st.RSS != 40 {
		t.Fatalf("summary %+v", st)
	}
}

func TestBenchArgs(t *testing.T) {
	if got := benchArgs([]string{"-repo", "..", "-quick", "-repeat=1"}); got != "-quick -repeat=1" {
		t.Fatalf("benchArgs = %q", got)
	}
	if got := benchArgs([]string{"-repo=.."}); got != "" {
		t.Fatalf("benchArgs = %q", got)
	}
}

// The cold target row is the first apply of a fresh node just after
// installing slapnode, its ratio computed pair by pair against the same
// repetition's zc.buildout first run; results without that run (older
// results.json) render without the row.
func TestTargetsColdInstalledRow(t *testing.T) {
	s := []sample{
		{N: 1000, Rep: 1, Engine: engBuildout, Run: runFirst, M: measure{Wall: 10}},
		{N: 1000, Rep: 1, Engine: engSlapnode, Run: runFirst, M: measure{Wall: 0.5}},
		{N: 1000, Rep: 1, Engine: engSlapnode, Run: runFirstInstalled, M: measure{Wall: 1}},
		{N: 1000, Rep: 2, Engine: engBuildout, Run: runFirst, M: measure{Wall: 12}},
		{N: 1000, Rep: 2, Engine: engSlapnode, Run: runFirst, M: measure{Wall: 0.5}},
		{N: 1000, Rep: 2, Engine: engSlapnode, Run: runFirstInstalled, M: measure{Wall: 4}},
		{N: 1000, Engine: engSlapnode, Run: runFirstCold, M: measure{Wall: 5}},
	}
	r := &results{SideBySide: &sideBySide{Sizes: []int{1000}, Samples: s}}
	var b strings.Builder
	writeTargets(&b, r)
	page := b.String()
	row := ""
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, "just after installing slapnode") {
			row = l
		}
	}
	// Pairs: 10/1 and 12/4: median 6.5×, not 12/5 or 11/2.5.
	if !strings.Contains(row, "6.5×") || !strings.Contains(row, "**missed**") {
		t.Fatalf("cold row %q in:\n%s", row, page)
	}
	if !strings.Contains(page, "Cold first apply (just installed)") {
		t.Errorf("no explanation of the missed cold target:\n%s", page)
	}
	var old strings.Builder
	r.SideBySide.Samples = s[:2]
	writeTargets(&old, r)
	if strings.Contains(old.String(), "just after installing") {
		t.Errorf("a cold row without its run:\n%s", old.String())
	}
}

// The harness tells a machine cache entry read from the install-time cache
// (a link) from one compiled on the machine (a file), and finds the
// install-time cache where slapnode does.
func TestInstallCacheChecks(t *testing.T) {
	base := t.TempDir()
	slapnode := filepath.Join(base, "bin", "slapnode")
	os.MkdirAll(filepath.Dir(slapnode), 0o755)
	os.WriteFile(slapnode, []byte("#!/bin/sh\n"), 0o755)
	if err := checkInstallCache(slapnode); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("no install cache: %v", err)
	}
	entry := filepath.Join(base, "lib", "slapnode", "wazero", "wazero-v1-amd64-linux", strings.Repeat("ab", 32))
	os.MkdirAll(filepath.Dir(entry), 0o755)
	os.WriteFile(entry, []byte("code"), 0o644)
	if err := checkInstallCache(slapnode); err != nil {
		t.Fatal(err)
	}
	bare, err := bareCopy(slapnode, filepath.Join(base, "bare"))
	if err != nil || checkInstallCache(bare) == nil {
		t.Fatalf("bare copy %s: %v", bare, err)
	}
	machine := filepath.Join(base, "machine", "wazero-v1-amd64-linux")
	os.MkdirAll(machine, 0o700)
	os.Symlink(entry, filepath.Join(machine, filepath.Base(entry)))
	os.WriteFile(filepath.Join(machine, strings.Repeat("cd", 32)), []byte("code"), 0o600)
	if got := strings.Join(machineCacheKinds(filepath.Dir(machine)), ","); got != "link,file" {
		t.Fatalf("kinds %q", got)
	}
}
