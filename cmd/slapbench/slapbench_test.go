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
